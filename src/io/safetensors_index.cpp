// Sharded checkpoints: model.safetensors.index.json maps every tensor name to the shard file holding it.
//
// The index and the shards are cross-checked both ways, because transformers trusts the index and a stale index
// (a shard rewritten, a tensor renamed) would otherwise load a model with a tensor silently missing or taken
// from the wrong file.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/safetensors.h"
#include "io/safetensors_internal.h"

namespace lcllm {

namespace fs = std::filesystem;

namespace {

using nlohmann::json;

struct IndexReader {
  const std::string& index_path;

  [[noreturn]] void fail(ErrorKind kind, const std::string& rule) const {
    throw Error(kind, "safetensors index " + io_quote(index_path) + ": " + rule);
  }
  [[noreturn]] void fail(const std::string& rule) const { fail(ErrorKind::ERROR_KIND_INVALID_FILE, rule); }

  std::string read_text() const {
    // Real indexes are tens of kB; the cap keeps a wrong path (a multi-GB shard) from being read into memory.
    constexpr uintmax_t kMaxIndexBytes = 100'000'000;
    std::error_code ec;
    const uintmax_t size = fs::file_size(index_path, ec);
    if (ec) fail(ErrorKind::ERROR_KIND_IO, "cannot read the index file: " + ec.message());
    if (size > kMaxIndexBytes) {
      fail("index file is " + std::to_string(size) + " bytes, over the limit of " + std::to_string(kMaxIndexBytes));
    }
    std::ifstream in(index_path, std::ios::binary);
    if (!in) fail(ErrorKind::ERROR_KIND_IO, "cannot open the index file");
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) fail(ErrorKind::ERROR_KIND_IO, "cannot read the index file");
    return text.str();
  }

  // Shard names are relative to the index's directory. Only lexical escapes are refused: the Hugging Face
  // cache stores shards as symlinks into ../../blobs, so resolving links would reject real checkpoints.
  std::string normalize_shard(const std::string& tensor, const std::string& shard) const {
    const std::string rule_prefix = "weight_map entry for tensor " + io_quote(tensor) + ": shard " + io_quote(shard);
    if (shard.find('\0') != std::string::npos) fail(rule_prefix + " contains a NUL byte");
    const fs::path p = fs::path(shard).lexically_normal();
    if (p.empty() || p == ".") fail(rule_prefix + " is not a file name");
    if (p.is_absolute() || p.has_root_path()) fail(rule_prefix + " is an absolute path; shards must sit beside the index");
    if (*p.begin() == "..") fail(rule_prefix + " escapes the checkpoint directory");
    return p.string();
  }

  // tensor -> normalized shard name
  std::map<std::string, std::string> read_weight_map(const json& root) const {
    if (!root.is_object()) fail(std::string("index is a JSON ") + root.type_name() + ", expected an object");
    if (auto meta = root.find("metadata"); meta != root.end() && !meta->is_object() && !meta->is_null()) {
      fail(std::string("'metadata' is a JSON ") + meta->type_name() + ", expected an object");
    }
    auto wm = root.find("weight_map");
    if (wm == root.end()) fail("missing 'weight_map' (the tensor -> shard file map)");
    if (!wm->is_object()) fail(std::string("'weight_map' is a JSON ") + wm->type_name() + ", expected an object");
    if (wm->empty()) fail("'weight_map' is empty");
    std::map<std::string, std::string> out;
    for (const auto& [tensor, shard] : wm->items()) {
      if (!shard.is_string()) {
        fail("weight_map entry for tensor " + io_quote(tensor) + " is a JSON " + shard.type_name() +
             ", expected a shard file name");
      }
      out.emplace(tensor, normalize_shard(tensor, shard.get<std::string>()));
    }
    return out;
  }
};

}  // namespace

Checkpoint Checkpoint::open_sharded(const std::string& index_path) {
  const IndexReader reader{index_path};
  const json root = json_parse_strict(reader.read_text(), "safetensors index " + io_quote(index_path), "key");
  const std::map<std::string, std::string> weight_map = reader.read_weight_map(root);

  // Open each shard once, in name order so errors are reproducible.
  std::map<std::string, std::unique_ptr<SafetensorsFile>> shards;
  const fs::path dir = fs::path(index_path).parent_path();
  for (const auto& [tensor, shard] : weight_map) {
    if (shards.count(shard)) continue;
    const fs::path full = dir / shard;
    std::error_code ec;
    if (!fs::exists(full, ec)) {
      reader.fail(ErrorKind::ERROR_KIND_NOT_FOUND, "shard " + io_quote(shard) + " (holding tensor " +
                                                       io_quote(tensor) + ") does not exist: looked for " +
                                                       io_quote(full.string()));
    }
    shards.emplace(shard, SafetensorsFile::open(full.string()));
  }

  // 1. No tensor may live in two shards: which copy is meant would depend on load order.
  std::map<std::string_view, const std::string*> owner;  // tensor -> shard that holds it
  for (const auto& [shard, file] : shards) {
    for (const TensorView& t : file->tensors()) {
      auto [it, fresh] = owner.emplace(t.name, &shard);
      if (!fresh) {
        reader.fail("tensor " + io_quote(t.name) + " appears in two shards, " + io_quote(*it->second) + " and " +
                    io_quote(shard));
      }
    }
  }
  // 2. Every tensor in a shard is where the index says it is.
  for (const auto& [name, shard] : owner) {
    auto it = weight_map.find(std::string(name));
    if (it == weight_map.end()) {
      reader.fail("tensor " + io_quote(name) + " is in shard " + io_quote(*shard) + " but not in the weight_map");
    }
    if (it->second != *shard) {
      reader.fail("tensor " + io_quote(name) + " is in shard " + io_quote(*shard) + " but the weight_map puts it in " +
                  "a different shard, " + io_quote(it->second));
    }
  }
  // 3. Every index entry exists (after 2, a listed tensor is either in its shard or in none).
  for (const auto& [tensor, shard] : weight_map) {
    if (!owner.count(tensor)) {
      reader.fail("tensor " + io_quote(tensor) + " is listed in the weight_map under shard " + io_quote(shard) +
                  " but is absent from that shard");
    }
  }

  Checkpoint ckpt;
  ckpt.path_ = index_path;
  for (auto& [shard, file] : shards) ckpt.add_file(std::move(file));
  return ckpt;
}

}  // namespace lcllm
