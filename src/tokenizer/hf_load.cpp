// tokenizer.json -> HfTokenizer components, with a clear lcllm::Error for anything malformed or unsupported.
#include <cctype>
#include <limits>

#include <nlohmann/json.hpp>

#include "io/json_file.h"
#include "lcllm/error.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/unicode_util.h"

namespace lcllm::hf {

using json = nlohmann::json;

struct HfLoader {
  const std::string& origin;
  HfTokenizer& tok;
  mutable int depth = 0;  // nesting of Sequence components; bounded so hostile files cannot exhaust the stack

  struct DepthGuard {
    const HfLoader& l;
    DepthGuard(const HfLoader& loader, const std::string& where) : l(loader) {
      if (++l.depth > 32) l.fail(where, "components nested more than 32 deep");
    }
    ~DepthGuard() { --l.depth; }
  };

  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, origin + ": " + where + ": " + what);
  }
  [[noreturn]] void unsupported(const std::string& where, const std::string& what) const {
    throw Error(ErrorKind::ERROR_KIND_UNSUPPORTED, origin + ": " + where + ": " + what + " is not supported");
  }
  const json& field(const json& j, const char* key, const std::string& where) const {
    if (!j.is_object()) fail(where, "expected an object");
    auto it = j.find(key);
    if (it == j.end()) fail(where, std::string("missing field \"") + key + "\"");
    return *it;
  }
  std::string str(const json& j, const char* key, const std::string& where) const {
    const json& v = field(j, key, where);
    if (!v.is_string()) fail(where + "." + key, "expected a string");
    return v.get<std::string>();
  }
  std::string type_of(const json& j, const std::string& where) const { return str(j, "type", where); }
  bool opt_bool(const json& j, const char* key, bool dflt, const std::string& where) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return dflt;
    if (!it->is_boolean()) fail(where + "." + key, "expected true or false");
    return it->get<bool>();
  }
  std::string opt_str(const json& j, const char* key, const std::string& where) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return {};
    if (!it->is_string()) fail(where + "." + key, "expected a string");
    return it->get<std::string>();
  }
  std::shared_ptr<Pattern> pattern(const json& j, const std::string& where) const {
    const json& p = field(j, "pattern", where);
    auto out = std::make_shared<Pattern>();
    if (p.is_object() && p.contains("String") && p["String"].is_string()) {
      out->literal = p["String"].get<std::string>();
    } else if (p.is_object() && p.contains("Regex") && p["Regex"].is_string()) {
      out->regex = std::make_unique<Regex>(p["Regex"].get<std::string>(), origin + ": " + where + ".pattern");
    } else {
      fail(where + ".pattern", "expected {\"String\": ...} or {\"Regex\": ...}");
    }
    return out;
  }
  std::string single_char(const json& j, const char* key, const std::string& dflt, const std::string& where) const {
    std::string s = opt_str(j, key, where);
    if (s.empty()) s = dflt;
    std::size_t i = 0;
    if (!utf8_is_valid(s) || (utf8_next(s, i), i != s.size()))
      fail(where + "." + key, "expected a single character, got \"" + s + "\"");
    return s;
  }

  // ---- model ----
  void load_model(const json& m) {
    const std::string where = "model";
    if (!m.is_object()) fail(where, "expected an object");
    const std::string type = m.contains("type") ? type_of(m, where) : std::string("BPE");
    if (type != "BPE") unsupported(where + ".type", "model type \"" + type + "\" (only BPE)");
    if (m.contains("dropout") && !m["dropout"].is_null() && !(m["dropout"].is_number() && m["dropout"].get<double>() == 0.0))
      unsupported(where + ".dropout", "BPE dropout");
    BpeModel& bpe = tok.model_;
    const json& vocab = field(m, "vocab", where);
    if (!vocab.is_object()) fail(where + ".vocab", "expected an object of token -> id");
    const auto max_id = static_cast<int64_t>(2 * vocab.size() + 1024);
    std::vector<std::string> by_id;
    std::vector<uint8_t> seen;
    std::vector<int32_t> ids;
    ids.reserve(vocab.size());
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      if (!it.value().is_number_integer()) fail(where + ".vocab[\"" + it.key() + "\"]", "id is not an integer");
      const int64_t id = it.value().get<int64_t>();
      if (id < 0 || id >= max_id)
        fail(where + ".vocab[\"" + it.key() + "\"]", "id " + std::to_string(id) + " out of range [0, " +
                                                         std::to_string(max_id) + ")");
      const auto uid = static_cast<std::size_t>(id);
      if (uid >= by_id.size()) { by_id.resize(uid + 1); seen.resize(uid + 1, 0); }
      if (seen[uid]) fail(where + ".vocab", "duplicate id " + std::to_string(id) + " for \"" + by_id[uid] +
                                                "\" and \"" + it.key() + "\"");
      seen[uid] = 1;
      by_id[uid] = it.key();
      ids.push_back(static_cast<int32_t>(id));
    }
    bpe.id_to_token = std::move(by_id);
    bpe.build_vocab_index(ids);

    bpe.byte_fallback = opt_bool(m, "byte_fallback", false, where);
    bpe.fuse_unk = opt_bool(m, "fuse_unk", false, where);
    bpe.ignore_merges = opt_bool(m, "ignore_merges", false, where);
    bpe.continuing_subword_prefix = opt_str(m, "continuing_subword_prefix", where);
    bpe.end_of_word_suffix = opt_str(m, "end_of_word_suffix", where);
    const std::string unk = opt_str(m, "unk_token", where);
    if (!unk.empty()) {
      bpe.unk_id = bpe.vocab_find(unk);
      if (bpe.unk_id < 0) fail(where + ".unk_token", "\"" + unk + "\" is not in the vocabulary");
    }
    for (auto& b : bpe.byte_ids) b = -1;
    if (bpe.byte_fallback) {
      for (int32_t id : ids) {
        const std::string& tokstr = bpe.id_to_token[static_cast<std::size_t>(id)];
        if (tokstr.size() == 6 && tokstr.compare(0, 3, "<0x") == 0 && tokstr[5] == '>') {
          auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
          if (!hex(tokstr[3]) || !hex(tokstr[4]))
            fail(where + ".vocab[\"" + tokstr + "\"]", "malformed byte token (expected <0x00> .. <0xFF>)");
        }
      }
      static const char* kHex = "0123456789ABCDEF";
      for (int b = 0; b < 256; ++b) {
        const std::string name = std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
        bpe.byte_ids[b] = bpe.vocab_find(name);
      }
    }

    const json& merges = field(m, "merges", where);
    if (!merges.is_array()) fail(where + ".merges", "expected an array");
    bpe.merges.reserve(merges.size());
    const std::size_t plen = bpe.continuing_subword_prefix.size();
    std::string merged;
    for (std::size_t i = 0; i < merges.size(); ++i) {
      const json& e = merges[i];
      auto w = [&] { return where + ".merges[" + std::to_string(i) + "]"; };
      std::string_view a, b;
      if (e.is_string()) {
        const std::string& s = e.get_ref<const std::string&>();
        const std::size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          fail(w(), "expected \"left right\" with exactly one space, got \"" + s + "\"");
        a = std::string_view(s).substr(0, sp);
        b = std::string_view(s).substr(sp + 1);
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        a = e[0].get_ref<const std::string&>();
        b = e[1].get_ref<const std::string&>();
      } else {
        fail(w(), "expected \"left right\" or [\"left\", \"right\"]");
      }
      const int32_t ia = bpe.vocab_find(a);
      if (ia < 0) fail(w(), "token \"" + std::string(a) + "\" is not in the vocabulary");
      const int32_t ib = bpe.vocab_find(b);
      if (ib < 0) fail(w(), "token \"" + std::string(b) + "\" is not in the vocabulary");
      if (plen > 0 && b.substr(0, plen) != bpe.continuing_subword_prefix)
        fail(w(), "right token \"" + std::string(b) + "\" lacks the continuing_subword_prefix");
      merged.assign(a);
      merged.append(b.substr(plen));
      const int32_t im = bpe.vocab_find(merged);
      if (im < 0) fail(w(), "merged token \"" + merged + "\" is not in the vocabulary");
      bpe.merges.insert_or_assign(MergeTable::key(ia, ib), static_cast<int32_t>(i), im);  // later duplicate wins (HF)
    }
  }

  // ---- added tokens ----
  void load_added(const json& arr) {
    if (arr.is_null()) return;
    if (!arr.is_array()) fail("added_tokens", "expected an array");
    BpeModel& bpe = tok.model_;
    const auto max_id = static_cast<int64_t>(2 * (bpe.vocab_size() + arr.size()) + 1024);
    for (std::size_t i = 0; i < arr.size(); ++i) {
      const std::string w = "added_tokens[" + std::to_string(i) + "]";
      const json& e = arr[i];
      AddedToken t;
      t.content = str(e, "content", w);
      if (t.content.empty()) fail(w + ".content", "empty token");
      if (!utf8_is_valid(t.content)) fail(w + ".content", "not valid UTF-8");
      const json& idj = field(e, "id", w);
      if (!idj.is_number_integer()) fail(w + ".id", "expected an integer");
      const int64_t id = idj.get<int64_t>();
      if (id < 0 || id >= max_id)
        fail(w + ".id", "id " + std::to_string(id) + " out of range [0, " + std::to_string(max_id) + ")");
      t.id = static_cast<int32_t>(id);
      t.special = opt_bool(e, "special", false, w);
      t.lstrip = opt_bool(e, "lstrip", false, w);
      t.rstrip = opt_bool(e, "rstrip", false, w);
      t.single_word = opt_bool(e, "single_word", false, w);
      t.normalized = opt_bool(e, "normalized", !t.special, w);
      // A token the model already has keeps the model's id (HF); it must not contradict the file.
      const int32_t in_vocab = bpe.vocab_find(t.content);
      if (in_vocab >= 0 && in_vocab != t.id)
        fail(w, "\"" + t.content + "\" has id " + std::to_string(t.id) + " but the model vocabulary says " +
                    std::to_string(in_vocab));
      const auto uid = static_cast<std::size_t>(t.id);
      if (uid >= bpe.id_to_token.size()) bpe.id_to_token.resize(uid + 1);
      std::string& slot = bpe.id_to_token[uid];
      if (!slot.empty() && slot != t.content)
        fail(w, "duplicate id " + std::to_string(t.id) + ": \"" + t.content + "\" and \"" + slot + "\"");
      if (tok.added_by_content_.count(t.content)) continue;  // duplicate entry: the first one counts
      slot = t.content;
      tok.added_by_content_.emplace(t.content, t.id);
      tok.added_.push_back(std::move(t));
    }
    tok.special_.assign(bpe.id_to_token.size(), 0);
    for (std::size_t k = 0; k < tok.added_.size(); ++k) {
      const AddedToken& t = tok.added_[k];
      if (t.special) tok.special_[static_cast<std::size_t>(t.id)] = 1;
      if (t.normalized && !t.special) {
        std::string n = t.content;
        if (tok.normalizer_) tok.normalizer_->apply(n);
        tok.normalized_trie_.insert(n, static_cast<int32_t>(k));
      } else {
        tok.raw_trie_.insert(t.content, static_cast<int32_t>(k));
      }
    }
  }

  // ---- pipeline components ----
  Normalizer normalizer(const json& j, const std::string& where) const {
    const DepthGuard guard(*this, where);
    Normalizer n;
    const std::string type = type_of(j, where);
    if (type == "Sequence") {
      n.kind = NORMALIZER_SEQUENCE;
      const json& list = field(j, "normalizers", where);
      if (!list.is_array()) fail(where + ".normalizers", "expected an array");
      for (std::size_t i = 0; i < list.size(); ++i)
        n.children.push_back(normalizer(list[i], where + ".normalizers[" + std::to_string(i) + "]"));
    } else if (type == "Prepend") {
      n.kind = NORMALIZER_PREPEND;
      n.content = str(j, "prepend", where);
    } else if (type == "Replace") {
      n.kind = NORMALIZER_REPLACE;
      n.pattern = pattern(j, where);
      n.content = str(j, "content", where);
    } else if (type == "NFC") {
      n.kind = NORMALIZER_NFC;
    } else if (type == "Strip") {
      n.kind = NORMALIZER_STRIP;
      n.strip_left = opt_bool(j, "strip_left", false, where);
      n.strip_right = opt_bool(j, "strip_right", false, where);
    } else {
      unsupported(where + ".type", "normalizer \"" + type + "\"");
    }
    return n;
  }

  SplitBehavior behavior(const json& j, const std::string& where) const {
    const std::string b = str(j, "behavior", where);
    if (b == "Removed") return SPLIT_REMOVED;
    if (b == "Isolated") return SPLIT_ISOLATED;
    if (b == "MergedWithPrevious") return SPLIT_MERGED_WITH_PREVIOUS;
    if (b == "MergedWithNext") return SPLIT_MERGED_WITH_NEXT;
    if (b == "Contiguous") return SPLIT_CONTIGUOUS;
    fail(where + ".behavior", "unknown split behavior \"" + b + "\"");
  }

  PreTokenizer pre_tokenizer(const json& j, const std::string& where) const {
    const DepthGuard guard(*this, where);
    PreTokenizer p;
    const std::string type = type_of(j, where);
    if (type == "Sequence") {
      p.kind = PRETOK_SEQUENCE;
      const json& list = field(j, "pretokenizers", where);
      if (!list.is_array()) fail(where + ".pretokenizers", "expected an array");
      for (std::size_t i = 0; i < list.size(); ++i)
        p.children.push_back(pre_tokenizer(list[i], where + ".pretokenizers[" + std::to_string(i) + "]"));
    } else if (type == "Split") {
      p.kind = PRETOK_SPLIT;
      p.pattern = pattern(j, where);
      p.behavior = behavior(j, where);
      p.invert = opt_bool(j, "invert", false, where);
    } else if (type == "ByteLevel") {
      p.kind = PRETOK_BYTE_LEVEL;
      p.add_prefix_space = opt_bool(j, "add_prefix_space", true, where);
      p.use_regex = opt_bool(j, "use_regex", true, where);
      if (p.use_regex)
        p.byte_level_regex = std::make_shared<Regex>(
            R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", origin + ": " + where);
    } else if (type == "Metaspace") {
      p.kind = PRETOK_METASPACE;
      p.replacement = single_char(j, "replacement", "\xE2\x96\x81", where);
      const std::string scheme = opt_str(j, "prepend_scheme", where);
      if (scheme.empty()) p.prepend_scheme = opt_bool(j, "add_prefix_space", true, where) ? PREPEND_ALWAYS : PREPEND_NEVER;
      else if (scheme == "always") p.prepend_scheme = PREPEND_ALWAYS;
      else if (scheme == "first") p.prepend_scheme = PREPEND_FIRST;
      else if (scheme == "never") p.prepend_scheme = PREPEND_NEVER;
      else fail(where + ".prepend_scheme", "unknown scheme \"" + scheme + "\"");
      p.split = opt_bool(j, "split", true, where);
    } else if (type == "Digits") {
      p.kind = PRETOK_DIGITS;
      p.individual_digits = opt_bool(j, "individual_digits", false, where);
    } else {
      unsupported(where + ".type", "pre-tokenizer \"" + type + "\"");
    }
    return p;
  }

  Decoder decoder(const json& j, const std::string& where) const {
    const DepthGuard guard(*this, where);
    Decoder d;
    const std::string type = type_of(j, where);
    if (type == "Sequence") {
      d.kind = DECODER_SEQUENCE;
      const json& list = field(j, "decoders", where);
      if (!list.is_array()) fail(where + ".decoders", "expected an array");
      for (std::size_t i = 0; i < list.size(); ++i)
        d.children.push_back(decoder(list[i], where + ".decoders[" + std::to_string(i) + "]"));
    } else if (type == "Replace") {
      d.kind = DECODER_REPLACE;
      d.pattern = pattern(j, where);
      d.content = str(j, "content", where);
    } else if (type == "ByteFallback") {
      d.kind = DECODER_BYTE_FALLBACK;
    } else if (type == "Fuse") {
      d.kind = DECODER_FUSE;
    } else if (type == "Strip") {
      d.kind = DECODER_STRIP;
      d.content = single_char(j, "content", " ", where);
      auto count = [&](const char* key) {
        auto it = j.find(key);
        if (it == j.end()) return 0;
        if (!it->is_number_unsigned() || it->get<uint64_t>() > 1000000) fail(where + "." + key, "expected a small count");
        return static_cast<int>(it->get<uint64_t>());
      };
      d.strip_start = count("start");
      d.strip_stop = count("stop");
    } else if (type == "Metaspace") {
      d.kind = DECODER_METASPACE;
      d.content = single_char(j, "replacement", "\xE2\x96\x81", where);
      const std::string scheme = opt_str(j, "prepend_scheme", where);
      d.metaspace_prefix = scheme.empty() ? opt_bool(j, "add_prefix_space", true, where) : scheme != "never";
    } else if (type == "ByteLevel") {
      d.kind = DECODER_BYTE_LEVEL;
    } else {
      unsupported(where + ".type", "decoder \"" + type + "\"");
    }
    return d;
  }

  std::vector<int32_t> special_ids(const json& j, const std::string& where) const {
    std::vector<int32_t> ids;
    if (!j.is_array()) fail(where, "expected an array of ids");
    for (const auto& v : j) {
      if (!v.is_number_integer()) fail(where, "expected integer ids");
      const int64_t id = v.get<int64_t>();
      if (id < 0 || id >= static_cast<int64_t>(tok.model_.id_to_token.size()))
        fail(where, "id " + std::to_string(id) + " out of range [0, " + std::to_string(tok.model_.id_to_token.size()) + ")");
      ids.push_back(static_cast<int32_t>(id));
    }
    return ids;
  }

  PostProcessor post_processor(const json& j, const std::string& where) const {
    const DepthGuard guard(*this, where);
    PostProcessor p;
    const std::string type = type_of(j, where);
    if (type == "Sequence") {
      p.kind = POST_SEQUENCE;
      const json& list = field(j, "processors", where);
      if (!list.is_array()) fail(where + ".processors", "expected an array");
      for (std::size_t i = 0; i < list.size(); ++i)
        p.children.push_back(post_processor(list[i], where + ".processors[" + std::to_string(i) + "]"));
    } else if (type == "ByteLevel") {
      p.kind = POST_BYTE_LEVEL;
    } else if (type == "TemplateProcessing") {
      p.kind = POST_TEMPLATE;
      const json& single = field(j, "single", where);
      const json& specials = field(j, "special_tokens", where);
      if (!single.is_array()) fail(where + ".single", "expected an array");
      if (!specials.is_object()) fail(where + ".special_tokens", "expected an object");
      for (std::size_t i = 0; i < single.size(); ++i) {
        const std::string w = where + ".single[" + std::to_string(i) + "]";
        const json& it = single[i];
        PostProcessor::Item item;
        if (it.is_object() && it.contains("Sequence")) {
          item.is_sequence = true;
        } else if (it.is_object() && it.contains("SpecialToken")) {
          const std::string name = str(it["SpecialToken"], "id", w + ".SpecialToken");
          auto st = specials.find(name);
          if (st == specials.end()) fail(w, "special token \"" + name + "\" is not in special_tokens");
          item.ids = special_ids(field(*st, "ids", where + ".special_tokens." + name), where + ".special_tokens." + name + ".ids");
        } else {
          fail(w, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
        }
        p.single.push_back(std::move(item));
      }
    } else if (type == "BertProcessing" || type == "RobertaProcessing") {
      p.kind = POST_BERT;
      auto pair_id = [&](const char* key) {
        const json& v = field(j, key, where);
        if (!v.is_array() || v.size() != 2 || !v[1].is_number_integer()) fail(where + "." + key, "expected [token, id]");
        return special_ids(json::array({v[1]}), where + "." + key);
      };
      p.bert_cls = pair_id("cls");
      p.bert_sep = pair_id("sep");
    } else {
      unsupported(where + ".type", "post-processor \"" + type + "\"");
    }
    return p;
  }

  void load(std::string_view text) {
    const json j = json_parse_bounded(text, origin);
    if (!j.is_object()) fail("top level", "expected a JSON object");
    load_model(field(j, "model", "top level"));
    // The normalizer is needed to build the trie of normalized added tokens.
    if (j.contains("normalizer") && !j["normalizer"].is_null())
      tok.normalizer_ = std::make_unique<Normalizer>(normalizer(j["normalizer"], "normalizer"));
    load_added(j.contains("added_tokens") ? j["added_tokens"] : json());
    if (tok.special_.size() < tok.model_.id_to_token.size()) tok.special_.resize(tok.model_.id_to_token.size(), 0);
    if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null())
      tok.pre_tokenizer_ = std::make_unique<PreTokenizer>(pre_tokenizer(j["pre_tokenizer"], "pre_tokenizer"));
    if (j.contains("post_processor") && !j["post_processor"].is_null())
      tok.post_processor_ = std::make_unique<PostProcessor>(post_processor(j["post_processor"], "post_processor"));
    if (j.contains("decoder") && !j["decoder"].is_null())
      tok.decoder_ = std::make_unique<Decoder>(decoder(j["decoder"], "decoder"));
    if (tok.model_.id_to_token.empty()) fail("model.vocab", "the vocabulary is empty");
  }
};

HfTokenizer::HfTokenizer(std::string_view json_text, const std::string& origin, const TokenizerConfig& config) {
  HfLoader{origin, *this}.load(json_text);
  // Defaults when tokenizer_config.json says nothing: the first special token of the BOS template, if any.
  std::optional<int32_t> bos;
  if (post_processor_ && post_processor_->kind == POST_TEMPLATE && !post_processor_->single.empty() &&
      !post_processor_->single[0].is_sequence && post_processor_->single[0].ids.size() == 1)
    bos = post_processor_->single[0].ids[0];
  finish_setup(config, bos, std::nullopt);
}

}  // namespace lcllm::hf
