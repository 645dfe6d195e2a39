// Checkpoint: resolves what the user pointed at (file or model directory) and looks tensors up by name.
#include <algorithm>
#include <filesystem>

#include "io/safetensors.h"
#include "io/safetensors_internal.h"

namespace lcllm {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSingleName = "model.safetensors";
constexpr const char* kIndexName = "model.safetensors.index.json";

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

[[noreturn]] void throw_not_found(const std::string& path, const std::string& why) {
  throw Error(ErrorKind::ERROR_KIND_NOT_FOUND,
              "checkpoint " + io_quote(path) + ": " + why +
                  " (expected a .safetensors file, or a directory holding " + kSingleName + " or " + kIndexName +
                  ")");
}

}  // namespace

Checkpoint Checkpoint::open(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);  // follows symlinks, as the Hugging Face cache needs
  if (ec || !fs::exists(st)) throw_not_found(path, "path does not exist");

  if (fs::is_directory(st)) {
    const fs::path dir(path);
    if (fs::is_regular_file(dir / kSingleName, ec)) {
      Checkpoint ckpt;
      ckpt.path_ = path;
      ckpt.add_file(SafetensorsFile::open((dir / kSingleName).string()));
      return ckpt;
    }
    if (fs::is_regular_file(dir / kIndexName, ec)) {
      Checkpoint ckpt = open_sharded((dir / kIndexName).string());
      ckpt.path_ = path;
      return ckpt;
    }
    throw_not_found(path, "directory holds neither " + std::string(kSingleName) + " nor " + kIndexName);
  }
  if (fs::is_regular_file(st)) {
    if (ends_with(path, ".index.json")) return open_sharded(path);
    if (ends_with(path, ".safetensors")) {
      Checkpoint ckpt;
      ckpt.path_ = path;
      ckpt.add_file(SafetensorsFile::open(path));
      return ckpt;
    }
    throw_not_found(path, "file is neither a .safetensors file nor a .index.json index");
  }
  throw_not_found(path, "path is neither a regular file nor a directory");
}

void Checkpoint::add_file(std::unique_ptr<SafetensorsFile> file) {
  for (const TensorView& t : file->tensors()) by_name_.emplace(t.name, &t);
  files_.push_back(std::move(file));  // the views live inside *file, so moving the pointer keeps them valid
}

Checkpoint Checkpoint::in_memory(std::vector<TensorView> views, std::shared_ptr<const void> owner,
                                 const std::string& path) {
  Checkpoint ckpt;
  ckpt.path_ = path;
  ckpt.memory_owner_ = std::move(owner);
  ckpt.memory_views_ = std::move(views);
  for (const TensorView& v : ckpt.memory_views_) {
    if (!ckpt.by_name_.emplace(v.name, &v).second) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "in-memory checkpoint '" + path + "': tensor '" + v.name +
                                                              "' appears twice");
    }
  }
  return ckpt;
}

const TensorView* Checkpoint::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const TensorView& Checkpoint::require(std::string_view name) const {
  if (const TensorView* t = find(name)) return *t;
  throw Error(ErrorKind::ERROR_KIND_NOT_FOUND, "tensor " + io_quote(name) + " not found in checkpoint " +
                                                   io_quote(path_) + " (" + std::to_string(by_name_.size()) +
                                                   " tensors in " + std::to_string(files_.size()) + " files)");
}

std::vector<const TensorView*> Checkpoint::tensors() const {
  std::vector<const TensorView*> out;
  out.reserve(by_name_.size());
  for (const auto& [name, view] : by_name_) out.push_back(view);  // std::map: already sorted by name
  return out;
}

size_t Checkpoint::total_bytes() const {
  size_t total = 0;
  for (const auto& [name, view] : by_name_) total += view->nbytes;
  return total;
}

}  // namespace lcllm
