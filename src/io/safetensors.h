// safetensors reader: mmap one file or a sharded checkpoint, validate every header rule, hand out tensor views.
//
// Format (https://huggingface.co/docs/safetensors): u64 little-endian header length N, N bytes of UTF-8 JSON
// object {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data buffer.
// Offsets are relative to the start of the data buffer. Every violation throws lcllm::Error whose message names
// the file, the tensor (when there is one) and the rule broken.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/dtype.h"

namespace lcllm {

// A tensor inside a mapped file. `data` stays valid while the owning SafetensorsFile/Checkpoint lives.
struct TensorView {
  std::string name;
  DType dtype = DType::DTYPE_F32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  size_t nbytes = 0;
  std::string file;  // path of the file holding it, for error messages

  int64_t numel() const;
  float at(size_t i) const { return dtype_load(data, dtype, i); }
};

// Parses and validates a complete safetensors image held in memory. `filename` is used in messages only.
// The views point into `bytes`; the caller keeps the buffer alive. This is what the fuzz target calls.
// Views come back sorted by name; `metadata`, when given, receives the "__metadata__" strings.
std::vector<TensorView> safetensors_parse(const std::byte* bytes, size_t size, const std::string& filename,
                                          std::map<std::string, std::string>* metadata = nullptr);

class SafetensorsFile {
 public:
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);  // mmap + parse; throws lcllm::Error
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find(std::string_view name) const;  // nullptr when absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A model's weights: a single `*.safetensors` file, a directory holding `model.safetensors`, or a directory
// holding `model.safetensors.index.json` (sharded: {"weight_map": {tensor: shard file}}; a path to such an
// `*.index.json` file works too). When a directory holds both, model.safetensors wins, as in transformers.
// Every tensor of every shard must be where the index says, and every index entry must exist.
class Checkpoint {
 public:
  static Checkpoint open(const std::string& path);  // throws lcllm::Error
  // Tensors held in memory rather than files (random weights for `lcllm bench` on a bare config.json). The views'
  // data must stay valid while `owner` lives; the checkpoint keeps `owner`. Names must be unique.
  static Checkpoint in_memory(std::vector<TensorView> views, std::shared_ptr<const void> owner,
                              const std::string& path);

  const TensorView* find(std::string_view name) const;     // nullptr when absent
  const TensorView& require(std::string_view name) const;  // throws ERROR_KIND_NOT_FOUND naming the tensor
  std::vector<const TensorView*> tensors() const;          // all tensors, sorted by name
  size_t total_bytes() const;
  size_t file_count() const { return files_.size(); }
  const std::string& path() const { return path_; }  // as given to open()

 private:
  // Registers every tensor of `file` under its name; the caller has already ruled out duplicates.
  void add_file(std::unique_ptr<SafetensorsFile> file);
  static Checkpoint open_sharded(const std::string& index_path);  // safetensors_index.cpp

  std::string path_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::shared_ptr<const void> memory_owner_;  // in_memory(): what the views point into
  std::vector<TensorView> memory_views_;      // in_memory(): the views by_name_ points at (never resized)
  std::map<std::string, const TensorView*, std::less<>> by_name_;
};

}  // namespace lcllm
