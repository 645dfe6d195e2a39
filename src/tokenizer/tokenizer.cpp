// Tokenizer::load: picks tokenizer.json or tokenizer.model, reads tokenizer_config.json.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "io/json_file.h"
#include "io/text_file.h"
#include "lcllm/error.h"
#include "tokenizer/gguf_tokenizer.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/spm_tokenizer.h"

namespace lcllm {

namespace fs = std::filesystem;

namespace {
std::string read_file(const fs::path& p) {
  return read_text_file(p.string(), "tokenizer file", kMaxTokenizerFileBytes);
}

std::string token_string(const nlohmann::json& v, const std::string& where) {
  if (v.is_null()) return {};
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, where + ": expected a string or {\"content\": ...}");
}
}  // namespace

TokenizerConfig tokenizer_parse_config(std::string_view json_text, const std::string& origin) {
  const nlohmann::json j = json_parse_bounded(json_text, origin);
  if (!j.is_object()) throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, origin + ": expected a JSON object");
  TokenizerConfig c;
  if (auto it = j.find("chat_template"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      c.chat_template = it->get<std::string>();
    } else if (it->is_array()) {  // [{"name": "default", "template": "..."}, ...]
      for (const auto& e : *it) {
        if (!e.is_object() || !e.contains("template") || !e["template"].is_string())
          throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, origin + ": chat_template: expected {name, template} entries");
        if (c.chat_template.empty() || (e.contains("name") && e["name"] == "default"))
          c.chat_template = e["template"].get<std::string>();
      }
    } else {
      throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, origin + ": chat_template: expected a string");
    }
  }
  if (auto it = j.find("bos_token"); it != j.end()) c.bos_token = token_string(*it, origin + ": bos_token");
  if (auto it = j.find("eos_token"); it != j.end()) c.eos_token = token_string(*it, origin + ": eos_token");
  for (const char* key : {"add_bos_token", "add_eos_token"}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_boolean()) throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, origin + ": " + key + ": expected true or false");
    (std::string(key) == "add_bos_token" ? c.add_bos_token : c.add_eos_token) = it->get<bool>();
  }
  return c;
}

void Tokenizer::finish_setup(const TokenizerConfig& config, std::optional<int32_t> default_bos,
                             std::optional<int32_t> default_eos) {
  config_ = config;
  auto resolve = [&](const std::string& name, std::optional<int32_t> dflt,
                     std::initializer_list<const char*> known, const char* what) -> std::optional<int32_t> {
    if (!name.empty()) {
      auto id = token_id(name);
      if (!id)
        throw Error(ErrorKind::ERROR_KIND_INVALID_FILE,
                    std::string("tokenizer_config.json: ") + what + " \"" + name + "\" is not in the vocabulary");
      return id;
    }
    if (dflt) return dflt;
    for (const char* k : known) {
      auto id = token_id(k);
      if (id && is_special(*id)) return id;
    }
    return std::nullopt;
  };
  bos_id_ = resolve(config.bos_token, default_bos, {"<|begin_of_text|>", "<s>", "<bos>"}, "bos_token");
  eos_id_ = resolve(config.eos_token, default_eos, {"<|end_of_text|>", "</s>", "<eos>", "<|endoftext|>"}, "eos_token");
  stop_ids_.clear();
  if (eos_id_) stop_ids_.push_back(*eos_id_);
  for (const char* k : {"<|eot_id|>", "<|eom_id|>", "<end_of_turn>", "<|im_end|>", "<|end_of_text|>",
                        "<|endoftext|>", "</s>", "<eos>"}) {
    auto id = token_id(k);
    if (id && is_special(*id) && std::find(stop_ids_.begin(), stop_ids_.end(), *id) == stop_ids_.end())
      stop_ids_.push_back(*id);
  }
}

std::unique_ptr<Tokenizer> Tokenizer::from_json(std::string_view json_text, const std::string& origin,
                                                const TokenizerConfig& config) {
  return std::make_unique<hf::HfTokenizer>(json_text, origin, config);
}

bool Tokenizer::available(const std::string& model_path) {
  if (gguf_is_file(model_path)) return true;
  std::error_code ec;
  return fs::exists(fs::path(model_path) / "tokenizer.json", ec) || fs::exists(fs::path(model_path) / "tokenizer.model", ec);
}

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& dir_or_file) {
  if (gguf_is_file(dir_or_file)) {  // the tokenizer in a GGUF file's metadata (gguf_tokenizer.h)
    const auto file = GgufFile::open(dir_or_file);
    const GgufTokenizerSource src = gguf_tokenizer_source(*file);
    return std::make_unique<hf::HfTokenizer>(src.tokenizer_json, dir_or_file, src.config);
  }
  std::error_code ec;
  const fs::path p(dir_or_file);
  if (!fs::exists(p, ec))
    throw Error(ErrorKind::ERROR_KIND_NOT_FOUND, dir_or_file + ": no such tokenizer file or directory");
  fs::path file, dir;
  if (fs::is_directory(p, ec)) {
    dir = p;
    if (fs::exists(p / "tokenizer.json", ec)) file = p / "tokenizer.json";
    else if (fs::exists(p / "tokenizer.model", ec)) file = p / "tokenizer.model";
    else
      throw Error(ErrorKind::ERROR_KIND_NOT_FOUND,
                  dir_or_file + ": directory has neither tokenizer.json nor tokenizer.model");
  } else {
    file = p;
    dir = p.parent_path();
  }
  TokenizerConfig config;
  const fs::path cfg = (dir.empty() ? fs::path(".") : dir) / "tokenizer_config.json";
  if (fs::exists(cfg, ec)) config = tokenizer_parse_config(read_file(cfg), cfg.string());

  const std::string bytes = read_file(file);
  std::size_t i = 0;
  while (i < bytes.size() && (bytes[i] == ' ' || bytes[i] == '\n' || bytes[i] == '\r' || bytes[i] == '\t')) ++i;
  const bool is_json = file.extension() == ".json" || (file.extension() != ".model" && i < bytes.size() && bytes[i] == '{');
  try {
    if (is_json) return std::make_unique<hf::HfTokenizer>(bytes, file.string(), config);
    return std::make_unique<SpmTokenizer>(bytes, file.string(), config);
  } catch (const Error& e) {
    // finish_setup reports config problems without the path; name it.
    const std::string msg = e.what();
    if (msg.rfind("tokenizer_config.json:", 0) == 0) throw Error(e.kind(), cfg.string() + msg.substr(21));
    throw;
  }
}

}  // namespace lcllm
