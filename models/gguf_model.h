// A GGUF file as a model (E10 item 3): the Hugging Face config.json its metadata stands for, and its tensors as the
// Hugging Face checkpoint llama.cpp's converter started from — dequantized to fp32 at load and renamed, with what the
// converter did undone:
//   - llama: q_proj/k_proj rows were permuted for llama.cpp's interleaved rope (convert_hf_to_gguf.py `permute`);
//     they are permuted back to the rotate-half order transformers and lcllm use. qwen2/qwen3/gemma use that order
//     already (llama.cpp runs them with NEOX rope) and are left alone.
//   - gemma2/gemma3: every RMSNorm weight was stored as 1 + w (llama.cpp's norm has no "+1"); 1 is subtracted.
// What GGUF leaves out is filled as llama.cpp does (each documented in gguf_model.cpp), so the rest of lcllm sees a
// config.json and a safetensors-like checkpoint and nothing downstream knows the difference.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "io/safetensors.h"

namespace lcllm {

// A model's GGUF files: the one given, or — for a split model (llama.cpp's gguf-split: "NAME-00001-of-00003.gguf",
// metadata split.count/split.no) — every split, in order, found next to the first. Throws ERROR_KIND_NOT_FOUND
// naming a missing split and ERROR_KIND_INVALID_FILE for splits that do not belong together.
std::vector<std::unique_ptr<GgufFile>> gguf_open_model(const std::string& path);

// The config.json (as JSON) for a GGUF model's metadata (the first file's; tensors looked up in all of them);
// ERROR_KIND_UNSUPPORTED for architectures lcllm does not run, ERROR_KIND_INVALID_FILE naming the key for missing
// or invalid metadata.
nlohmann::json gguf_hf_config(const std::vector<std::unique_ptr<GgufFile>>& files);
nlohmann::json gguf_hf_config(const GgufFile& file);

// Every tensor of every file dequantized to fp32 under its Hugging Face name (progress: tensors done, total).
Checkpoint gguf_checkpoint(const std::vector<std::unique_ptr<GgufFile>>& files,
                           const std::function<void(size_t, size_t)>& progress = {});
Checkpoint gguf_checkpoint(const GgufFile& file, const std::function<void(size_t, size_t)>& progress = {});

// Checkpoint::open, or gguf_checkpoint for a GGUF file.
Checkpoint model_checkpoint_open(const std::string& path, const std::function<void(size_t, size_t)>& progress = {});

}  // namespace lcllm
