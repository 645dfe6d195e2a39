// GGUF metadata -> config.json and GGUF tensors -> the Hugging Face checkpoint (see gguf_model.h). Key names follow
// llama.cpp's LLM_KV table ("{arch}.embedding_length", "{arch}.attention.head_count", ...), tensor names its
// LLM_TENSOR_NAMES ("blk.N.attn_q.weight", ...).
#include "models/gguf_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <regex>
#include <set>
#include <string_view>
#include <vector>

#include "io/gguf_types.h"
#include "lcllm/error.h"

namespace lcllm {

namespace {

[[noreturn]] void fail(ErrorKind kind, const GgufFile& f, const std::string& what) {
  throw Error(kind, "GGUF file '" + f.path() + "': " + what);
}

std::string arch_of(const GgufFile& f) { return f.require_string("general.architecture"); }

// Architectures lcllm runs, as GGUF names them, and the config.json model_type each stands for.
const char* model_type_of(const std::string& arch) {
  if (arch == "llama") return "llama";
  if (arch == "qwen2") return "qwen2";
  if (arch == "qwen3") return "qwen3";
  if (arch == "gemma2") return "gemma2";
  if (arch == "gemma3") return "gemma3_text";
  return nullptr;
}

bool is_gemma(const std::string& arch) { return arch == "gemma2" || arch == "gemma3"; }

int64_t opt_int(const GgufFile& f, const std::string& key, int64_t fallback) {
  const GgufValue* v = f.find(key);
  return v ? f.require_int(key) : fallback;
}

double opt_float(const GgufFile& f, const std::string& key, double fallback) {
  const GgufValue* v = f.find(key);
  return v ? f.require_float(key) : fallback;
}

}  // namespace

std::vector<std::unique_ptr<GgufFile>> gguf_open_model(const std::string& path) {
  std::vector<std::unique_ptr<GgufFile>> files;
  files.push_back(GgufFile::open(path));
  const GgufFile& first = *files[0];
  const int64_t count = first.find("split.count") ? first.require_int("split.count") : 1;
  if (count <= 1) return files;
  static const std::regex split_name(R"((.*)-(\d{5})-of-(\d{5})\.gguf)");
  std::smatch m;
  if (count > 9999 || !std::regex_match(path, m, split_name) || std::stoll(m[2].str()) != 1 ||
      std::stoll(m[3].str()) != count) {
    fail(ErrorKind::ERROR_KIND_INVALID_FILE, first,
         "is split " + std::to_string(first.find("split.no") ? first.require_int("split.no") + 1 : 1) + " of " +
             std::to_string(count) + ": pass the first split, named NAME-00001-of-" + std::to_string(count) + ".gguf");
  }
  char suffix[32];
  for (int64_t k = 2; k <= count; ++k) {
    std::snprintf(suffix, sizeof(suffix), "-%05lld-of-%05lld.gguf", static_cast<long long>(k), static_cast<long long>(count));
    files.push_back(GgufFile::open(m[1].str() + suffix));  // NOT_FOUND names the missing split
    const GgufFile& f = *files.back();
    if (!f.find("split.no") || f.require_int("split.no") != k - 1 || f.require_int("split.count") != count) {
      fail(ErrorKind::ERROR_KIND_INVALID_FILE, f, "does not say it is split " + std::to_string(k) + " of " +
                                                      std::to_string(count) + " (split.no / split.count)");
    }
  }
  return files;
}

namespace {

// The files of one model, first one first (its metadata is the model's).
using FileList = std::vector<const GgufFile*>;

FileList file_list(const std::vector<std::unique_ptr<GgufFile>>& files) {
  FileList out;
  for (const auto& f : files) out.push_back(f.get());
  return out;
}

nlohmann::json hf_config_of(const FileList& files);
Checkpoint checkpoint_of(const FileList& files, const std::function<void(size_t, size_t)>& progress);

}  // namespace

nlohmann::json gguf_hf_config(const std::vector<std::unique_ptr<GgufFile>>& files) {
  return hf_config_of(file_list(files));
}
nlohmann::json gguf_hf_config(const GgufFile& file) { return hf_config_of({&file}); }

Checkpoint gguf_checkpoint(const std::vector<std::unique_ptr<GgufFile>>& files,
                           const std::function<void(size_t, size_t)>& progress) {
  return checkpoint_of(file_list(files), progress);
}
Checkpoint gguf_checkpoint(const GgufFile& file, const std::function<void(size_t, size_t)>& progress) {
  return checkpoint_of({&file}, progress);
}

namespace {

nlohmann::json hf_config_of(const FileList& files) {
  const GgufFile& f = *files.at(0);
  auto has_tensor = [&files](const char* name) {
    return std::any_of(files.begin(), files.end(), [&](const GgufFile* file) { return file->tensor(name) != nullptr; });
  };
  const std::string arch = arch_of(f);
  const char* model_type = model_type_of(arch);
  if (!model_type) {
    fail(ErrorKind::ERROR_KIND_UNSUPPORTED, f,
         "architecture '" + arch + "' is not supported (llama, qwen2, qwen3, gemma2 and gemma3 are)");
  }
  const std::string a = arch + ".";
  nlohmann::json j;
  j["model_type"] = model_type;
  const int64_t hidden = f.require_int(a + "embedding_length");
  const int64_t heads = f.require_int(a + "attention.head_count");
  j["hidden_size"] = hidden;
  j["intermediate_size"] = f.require_int(a + "feed_forward_length");
  j["num_hidden_layers"] = f.require_int(a + "block_count");
  j["num_attention_heads"] = heads;
  j["num_key_value_heads"] = opt_int(f, a + "attention.head_count_kv", heads);
  // head_dim: key_length when the file says (Gemma, Qwen 3), else hidden / heads as in llama.cpp.
  const int64_t head_dim = opt_int(f, a + "attention.key_length", heads > 0 ? hidden / heads : 0);
  j["head_dim"] = head_dim;
  j["max_position_embeddings"] = f.require_int(a + "context_length");
  j["rms_norm_eps"] = opt_float(f, a + "attention.layer_norm_rms_epsilon", 1e-6);
  // The vocabulary: the model's own count when present, else the tokenizer's (llama.cpp does the same).
  int64_t vocab = opt_int(f, a + "vocab_size", 0);
  if (vocab == 0) {
    const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
    if (!tokens) fail(ErrorKind::ERROR_KIND_INVALID_FILE, f, "neither " + a + "vocab_size nor tokenizer.ggml.tokens is present");
    vocab = int64_t(tokens->size());
  }
  j["vocab_size"] = vocab;
  // Tied embeddings: no separate output matrix (llama.cpp then reads token_embd for the logits).
  j["tie_word_embeddings"] = !has_tensor("output.weight");
  if (const GgufValue* v = f.find("tokenizer.ggml.bos_token_id")) j["bos_token_id"] = f.require_int("tokenizer.ggml.bos_token_id"), (void)v;
  if (const GgufValue* v = f.find("tokenizer.ggml.eos_token_id")) j["eos_token_id"] = f.require_int("tokenizer.ggml.eos_token_id"), (void)v;
  const double theta = opt_float(f, a + "rope.freq_base", arch == "gemma3" ? 1e6 : 10000.0);
  j["rope_theta"] = theta;
  if (has_tensor("rope_freqs.weight")) {
    // Llama 3.1-style rope scaling is baked into a per-frequency factor tensor; its parameters are gone.
    fail(ErrorKind::ERROR_KIND_UNSUPPORTED, f,
         "rope scaling stored as the rope_freqs tensor (Llama 3.1 style) is not supported yet; use the safetensors "
         "checkpoint");
  }
  if (const GgufValue* type = f.find(a + "rope.scaling.type"); type && type->s != "none") {
    if (type->s != "linear") {
      fail(ErrorKind::ERROR_KIND_UNSUPPORTED, f, "rope scaling '" + type->s + "' is not supported (linear is)");
    }
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", f.require_float(a + "rope.scaling.factor")}};
  }
  if (arch == "llama") {
    j["hidden_act"] = "silu";
    j["attention_bias"] = has_tensor("blk.0.attn_q.bias");
    j["mlp_bias"] = false;
  } else if (arch == "qwen2" || arch == "qwen3") {
    j["hidden_act"] = "silu";
    j["use_sliding_window"] = false;
    if (arch == "qwen2") j["attention_bias"] = true;
  } else {
    j["hidden_activation"] = "gelu_pytorch_tanh";
    j["sliding_window"] = f.require_int(a + "attention.sliding_window");
    // The query scale: 1/sqrt(head_dim) except Gemma 2/3 27B (1/sqrt(hidden / heads)); llama.cpp decides by size.
    const int64_t layers = j["num_hidden_layers"].get<int64_t>();
    j["query_pre_attn_scalar"] = (arch == "gemma2" && layers == 46) || (arch == "gemma3" && layers == 62)
                                     ? hidden / heads
                                     : head_dim;
    if (arch == "gemma2") {
      j["attn_logit_softcapping"] = opt_float(f, a + "attn_logit_softcapping", 50.0);
      j["final_logit_softcapping"] = opt_float(f, a + "final_logit_softcapping", 30.0);
    } else {
      // Gemma 3: five sliding-window layers to one global; the local layers' rope base is 10000 (llama.cpp hard-codes
      // both for gemma3, as transformers' Gemma3TextConfig defaults do).
      j["sliding_window_pattern"] = 6;
      j["rope_local_base_freq"] = 10000.0;
      j["final_logit_softcapping"] = nullptr;
      j["attn_logit_softcapping"] = nullptr;
    }
  }
  return j;
}

// GGUF tensor name -> Hugging Face name (nullopt-like "" for tensors lcllm does not use).
std::string hf_name(const std::string& arch, const std::string& name) {
  if (name == "token_embd.weight") return "model.embed_tokens.weight";
  if (name == "output_norm.weight") return "model.norm.weight";
  if (name == "output.weight") return "lm_head.weight";
  static const std::regex block(R"(blk\.(\d+)\.([a-z_]+)\.(weight|bias))");
  std::smatch m;
  if (!std::regex_match(name, m, block)) return "";
  const std::string layer = "model.layers." + m[1].str() + ".";
  const std::string part = m[2].str(), kind = m[3].str();
  const bool gemma = is_gemma(arch);
  std::string hf;
  if (part == "attn_norm") hf = "input_layernorm";
  else if (part == "attn_q") hf = "self_attn.q_proj";
  else if (part == "attn_k") hf = "self_attn.k_proj";
  else if (part == "attn_v") hf = "self_attn.v_proj";
  else if (part == "attn_output") hf = "self_attn.o_proj";
  else if (part == "attn_q_norm") hf = "self_attn.q_norm";
  else if (part == "attn_k_norm") hf = "self_attn.k_norm";
  else if (part == "ffn_gate") hf = "mlp.gate_proj";
  else if (part == "ffn_up") hf = "mlp.up_proj";
  else if (part == "ffn_down") hf = "mlp.down_proj";
  // Gemma 2/3 sandwich norms: ffn_norm is the pre-feed-forward norm there, post_attention_norm the attention's.
  else if (part == "ffn_norm") hf = gemma ? "pre_feedforward_layernorm" : "post_attention_layernorm";
  else if (part == "post_attention_norm") hf = "post_attention_layernorm";
  else if (part == "post_ffw_norm") hf = "post_feedforward_layernorm";
  else return "";
  return layer + hf + "." + kind;
}

// Undoes convert_hf_to_gguf.py's permute(w, n_head, n_head_kv) on the rows of a [rows, cols] matrix: within each
// head, GGUF row 2i + j holds transformers' row j * (head_dim / 2) + i.
void unpermute_rows(float* w, int64_t rows, int64_t cols, int64_t n_head) {
  const int64_t hd = rows / n_head, half = hd / 2;
  std::vector<float> head(size_t(hd * cols));  // [hd, cols] one head's rows in GGUF order
  for (int64_t h = 0; h < n_head; ++h) {
    float* base = w + h * hd * cols;
    std::memcpy(head.data(), base, head.size() * sizeof(float));
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t jj = 0; jj < 2; ++jj) {
        std::memcpy(base + (jj * half + i) * cols, head.data() + (2 * i + jj) * cols, size_t(cols) * sizeof(float));
      }
    }
  }
}

Checkpoint checkpoint_of(const FileList& files, const std::function<void(size_t, size_t)>& progress) {
  const GgufFile& f = *files.at(0);
  const std::string arch = arch_of(f);
  const nlohmann::json config = hf_config_of(files);
  const int64_t n_head = config["num_attention_heads"].get<int64_t>();
  const int64_t n_head_kv = config["num_key_value_heads"].get<int64_t>();
  std::vector<const GgufTensorInfo*> tensors;  // [every file's tensors], names unique across the files
  std::set<std::string_view> names;
  for (const GgufFile* file : files) {
    for (const GgufTensorInfo& t : file->contents().tensors) {
      if (!names.insert(t.name).second) {
        fail(ErrorKind::ERROR_KIND_INVALID_FILE, *file, "tensor '" + t.name + "' is in two splits");
      }
      tensors.push_back(&t);
    }
  }
  // One arena for every dequantized tensor; the views point into it and the checkpoint keeps it alive.
  size_t total = 0;
  for (const GgufTensorInfo* t : tensors) {
    if (!hf_name(arch, t->name).empty()) total += size_t(t->n_elements());
  }
  auto arena = std::make_shared<std::vector<float>>(total);  // [sum of used tensors' elements] fp32
  std::vector<TensorView> views;
  size_t at = 0, done = 0;
  for (const GgufTensorInfo* tp : tensors) {
    const GgufTensorInfo& t = *tp;
    ++done;
    const std::string name = hf_name(arch, t.name);
    if (name.empty()) continue;
    const GgmlTypeInfo* info = ggml_type_info(t.type);
    if (!info->dequantizable) {
      fail(ErrorKind::ERROR_KIND_UNSUPPORTED, f,
           "tensor '" + t.name + "' is " + info->name + ", which lcllm cannot dequantize (F32, F16, BF16, Q8_0, Q4_0, "
           "Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K are supported)");
    }
    float* dst = arena->data() + at;
    ggml_dequantize(t.type, t.data, dst, t.n_elements());
    TensorView v;
    v.name = name;
    v.dtype = DType::DTYPE_F32;
    v.shape.assign(t.ne.rbegin(), t.ne.rend());  // GGUF ne[0] is the row length: Hugging Face order reverses it
    v.data = reinterpret_cast<const std::byte*>(dst);
    v.nbytes = size_t(t.n_elements()) * sizeof(float);
    v.file = f.path();
    if (arch == "llama" && (name.find("self_attn.q_proj.") != std::string::npos ||
                            name.find("self_attn.k_proj.") != std::string::npos)) {
      const bool q = name.find("q_proj") != std::string::npos;
      const int64_t n_rows = v.shape[0], n_cols = v.shape.size() == 2 ? v.shape[1] : 1;  // biases: one column
      unpermute_rows(dst, n_rows, n_cols, q ? n_head : n_head_kv);
    }
    if (is_gemma(arch) && name.ends_with("norm.weight")) {
      for (int64_t i = 0; i < t.n_elements(); ++i) dst[i] -= 1.0f;
    }
    at += size_t(t.n_elements());
    views.push_back(std::move(v));
    if (progress) progress(done, tensors.size());
  }
  return Checkpoint::in_memory(std::move(views), arena, f.path());
}

}  // namespace

Checkpoint model_checkpoint_open(const std::string& path, const std::function<void(size_t, size_t)>& progress) {
  if (!gguf_is_file(path)) return Checkpoint::open(path);
  return gguf_checkpoint(gguf_open_model(path), progress);
}

}  // namespace lcllm
