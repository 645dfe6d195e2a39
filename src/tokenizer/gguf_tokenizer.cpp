#include "tokenizer/gguf_tokenizer.h"

#include <algorithm>
#include <numeric>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "lcllm/error.h"

namespace lcllm {

namespace {

using ojson = nlohmann::json;  // std::map objects: a 262k-entry vocabulary inserts in O(log n)

// llama.cpp's llama_token_type values in tokenizer.ggml.token_type.
constexpr int64_t kTypeControl = 3, kTypeUserDefined = 4, kTypeByte = 6;

[[noreturn]] void fail(ErrorKind kind, const GgufFile& f, const std::string& what) {
  throw Error(kind, "GGUF file '" + f.path() + "': tokenizer: " + what);
}

const std::vector<std::string>& string_array(const GgufFile& f, const char* key) {
  const GgufValue& v = f.require(key);
  if (v.type != GgufType::GGUF_TYPE_ARRAY || v.elem != GgufType::GGUF_TYPE_STRING) {
    fail(ErrorKind::ERROR_KIND_INVALID_FILE, f, std::string(key) + " must be an array of strings");
  }
  return v.strings;
}

std::optional<int64_t> opt_id(const GgufFile& f, const char* key, size_t n_tokens) {
  if (!f.find(key)) return std::nullopt;
  const int64_t id = f.require_int(key);
  if (id < 0 || size_t(id) >= n_tokens) {
    fail(ErrorKind::ERROR_KIND_INVALID_FILE, f, std::string(key) + " = " + std::to_string(id) + " is not a token id");
  }
  return id;
}

bool opt_bool(const GgufFile& f, const char* key, bool fallback) {
  const GgufValue* v = f.find(key);
  if (!v) return fallback;
  if (v->type != GgufType::GGUF_TYPE_BOOL) fail(ErrorKind::ERROR_KIND_INVALID_FILE, f, std::string(key) + " must be a bool");
  return v->i != 0;
}

// Merges of a SentencePiece BPE vocabulary from its scores, as transformers' SentencePieceExtractor builds them:
// for each piece (in id order), every split into two vocabulary pieces, sorted by the halves' ids; then all merges
// by the piece's score, highest first (a stable sort keeps the id order among equal scores).
std::vector<std::pair<std::string, std::string>> merges_from_scores(const std::vector<std::string>& tokens,
                                                                    const std::vector<double>& scores,
                                                                    const std::vector<uint8_t>& mergeable) {
  std::unordered_map<std::string_view, int64_t> id_of;
  id_of.reserve(tokens.size() * 2);
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (mergeable[i]) id_of.emplace(tokens[i], int64_t(i));
  }
  struct Merge {
    int64_t left, right;
    double score;
  };
  std::vector<Merge> merges;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!mergeable[i]) continue;
    const std::string_view piece = tokens[i];
    const size_t first = merges.size();
    for (size_t cut = 1; cut < piece.size(); ++cut) {
      if ((static_cast<unsigned char>(piece[cut]) & 0xC0) == 0x80) continue;  // inside a UTF-8 character
      const auto l = id_of.find(piece.substr(0, cut)), r = id_of.find(piece.substr(cut));
      if (l != id_of.end() && r != id_of.end()) merges.push_back({l->second, r->second, scores[i]});
    }
    std::sort(merges.begin() + std::ptrdiff_t(first), merges.end(),
              [](const Merge& a, const Merge& b) { return a.left != b.left ? a.left < b.left : a.right < b.right; });
  }
  std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) { return a.score > b.score; });
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (const Merge& m : merges) out.emplace_back(tokens[size_t(m.left)], tokens[size_t(m.right)]);
  return out;
}

}  // namespace

GgufTokenizerSource gguf_tokenizer_source(const GgufFile& f) {
  const std::string model = f.require_string("tokenizer.ggml.model");
  if (model != "gpt2" && model != "llama") {
    fail(ErrorKind::ERROR_KIND_UNSUPPORTED, f, "model '" + model + "' is not supported (gpt2 and llama are)");
  }
  const std::vector<std::string>& tokens = string_array(f, "tokenizer.ggml.tokens");
  if (tokens.empty()) fail(ErrorKind::ERROR_KIND_INVALID_FILE, f, "tokenizer.ggml.tokens is empty");
  std::vector<int64_t> types(tokens.size(), 1);
  if (const GgufValue* t = f.find("tokenizer.ggml.token_type")) {
    if (t->ints.size() != tokens.size()) fail(ErrorKind::ERROR_KIND_INVALID_FILE, f, "tokenizer.ggml.token_type does not have one entry per token");
    types = t->ints;
  }

  ojson j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  ojson added = ojson::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (types[i] != kTypeControl && types[i] != kTypeUserDefined) continue;
    added.push_back({{"id", i}, {"content", tokens[i]}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", false}, {"special", types[i] == kTypeControl}});
  }
  j["added_tokens"] = added;

  const bool add_space_prefix = opt_bool(f, "tokenizer.ggml.add_space_prefix", model == "llama");
  ojson vocab = ojson::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = i;
  const auto unk = opt_id(f, "tokenizer.ggml.unknown_token_id", tokens.size());
  ojson bpe = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
               {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false}};
  ojson merges = ojson::array();
  if (model == "gpt2") {
    const std::vector<std::string>& m = string_array(f, "tokenizer.ggml.merges");
    for (const std::string& line : m) {
      const size_t sp = line.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size()) {
        fail(ErrorKind::ERROR_KIND_INVALID_FILE, f, "tokenizer.ggml.merges entry '" + line.substr(0, 64) + "' is not 'left right'");
      }
      merges.push_back({line.substr(0, sp), line.substr(sp + 1)});
    }
    j["normalizer"] = nullptr;
    // Byte-level BPE with the GPT-2 split, as transformers builds a tokenizer from a gpt2 GGUF.
    j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", add_space_prefix}, {"trim_offsets", true},
                          {"use_regex", true}};
    j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  } else {
    const GgufValue& s = f.require("tokenizer.ggml.scores");
    if (s.floats.size() != tokens.size()) fail(ErrorKind::ERROR_KIND_INVALID_FILE, f, "tokenizer.ggml.scores does not have one score per token");
    // Control, unknown and byte pieces never take part in merges (SentencePiece keeps them out of its BPE).
    std::vector<uint8_t> mergeable(tokens.size(), 1);
    bool has_bytes = false;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (types[i] == kTypeControl || types[i] == 2 || types[i] == kTypeByte || types[i] == 5) mergeable[i] = 0;
      has_bytes = has_bytes || types[i] == kTypeByte;
    }
    for (const auto& [l, r] : merges_from_scores(tokens, s.floats, mergeable)) merges.push_back({l, r});
    if (unk) bpe["unk_token"] = tokens[size_t(*unk)];
    bpe["fuse_unk"] = true;
    bpe["byte_fallback"] = has_bytes;
    const ojson replace = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}};
    j["normalizer"] = add_space_prefix
                          ? ojson{{"type", "Sequence"},
                                  {"normalizers", {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}}, replace}}}
                          : replace;
    j["pre_tokenizer"] = nullptr;
    ojson decoders = ojson::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                                   {{"type", "ByteFallback"}},
                                   {{"type", "Fuse"}}});
    if (add_space_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    j["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
  }
  bpe["vocab"] = std::move(vocab);
  bpe["merges"] = std::move(merges);

  GgufTokenizerSource out;
  const auto bos = opt_id(f, "tokenizer.ggml.bos_token_id", tokens.size());
  const auto eos = opt_id(f, "tokenizer.ggml.eos_token_id", tokens.size());
  const bool add_bos = opt_bool(f, "tokenizer.ggml.add_bos_token", model == "llama") && bos.has_value();
  const bool add_eos = opt_bool(f, "tokenizer.ggml.add_eos_token", false) && eos.has_value();
  if (add_bos || add_eos) {
    ojson single = ojson::array();
    if (add_bos) single.push_back({{"SpecialToken", {{"id", tokens[size_t(*bos)]}, {"type_id", 0}}}});
    single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
    if (add_eos) single.push_back({{"SpecialToken", {{"id", tokens[size_t(*eos)]}, {"type_id", 0}}}});
    ojson special = ojson::object();
    for (const auto& id : {bos, eos}) {
      if (id) special[tokens[size_t(*id)]] = {{"id", tokens[size_t(*id)]}, {"ids", {*id}}, {"tokens", {tokens[size_t(*id)]}}};
    }
    j["post_processor"] = {{"type", "TemplateProcessing"}, {"single", single}, {"pair", single}, {"special_tokens", special}};
  } else {
    j["post_processor"] = nullptr;
  }
  j["model"] = std::move(bpe);
  out.tokenizer_json = j.dump();
  if (bos) out.config.bos_token = tokens[size_t(*bos)];
  if (eos) out.config.eos_token = tokens[size_t(*eos)];
  out.config.add_bos_token = add_bos;
  out.config.add_eos_token = add_eos;
  if (const GgufValue* t = f.find("tokenizer.chat_template"); t && t->type == GgufType::GGUF_TYPE_STRING) {
    out.config.chat_template = t->s;
  }
  return out;
}

}  // namespace lcllm
