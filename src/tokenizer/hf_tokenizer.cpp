// Encode/decode pipeline of HfTokenizer: added-token split -> normalizer -> pre-tokenizer -> BPE -> post-processor.
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/unicode_util.h"

namespace lcllm::hf {

namespace {
bool is_ws(uint32_t cp) {
  return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}
// Word characters for single_word tokens: ASCII letters, digits, '_' and any non-ASCII letter-ish code point.
bool is_word_char(uint32_t cp) {
  return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') || cp == '_' ||
         (cp >= 0x80 && !is_ws(cp));
}
uint32_t last_cp(std::string_view s) {
  std::size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return utf8_next(s, i);
}

// Splits `text` around the added tokens of `trie` (HF AddedVocabulary::find_matches, leftmost-longest) and
// calls on_text(start, end) for the text between tokens and on_token(k) for added_[k].
template <typename OnText, typename OnToken>
void split_added(const AddedTokenTrie& trie, const std::vector<AddedToken>& added, std::string_view text,
                 OnText&& on_text, OnToken&& on_token) {
  if (trie.empty()) {
    on_text(std::size_t{0}, text.size());
    return;
  }
  std::size_t emitted = 0;  // text before this offset has been handed out
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t len = 0;
    const int32_t k = trie.can_start(static_cast<unsigned char>(text[pos])) ? trie.match_at(text, pos, len) : -1;
    if (k < 0) {
      ++pos;
      continue;
    }
    const AddedToken& t = added[static_cast<std::size_t>(k)];
    std::size_t start = pos, stop = pos + len;
    if (t.single_word) {
      const bool start_ok = start == 0 || !is_word_char(last_cp(text.substr(0, start)));
      std::size_t j = stop;
      const bool stop_ok = stop == text.size() || !is_word_char(utf8_next(text, j));
      if (!start_ok || !stop_ok) {
        ++pos;
        continue;
      }
    }
    if (t.lstrip) {
      while (start > emitted) {
        std::size_t b = start - 1;
        while (b > emitted && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
        std::size_t i = b;
        if (!is_ws(utf8_next(text, i))) break;
        start = b;
      }
    }
    if (t.rstrip) {
      while (stop < text.size()) {
        std::size_t i = stop;
        if (!is_ws(utf8_next(text, i))) break;
        stop = i;
      }
    }
    if (start > emitted) on_text(emitted, start);
    on_token(k);
    emitted = stop;
    pos = stop;
  }
  if (emitted < text.size() || text.empty()) on_text(emitted, text.size());
}
}  // namespace

std::vector<int32_t> HfTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  return encode_bounded(text, add_special_tokens, SIZE_MAX);
}

std::optional<std::vector<int32_t>> HfTokenizer::encode_at_most(std::string_view text, bool add_special_tokens,
                                                                size_t max_tokens) const {
  try {
    std::vector<int32_t> ids = encode_bounded(text, add_special_tokens, max_tokens);
    if (ids.size() > max_tokens) return std::nullopt;  // the post-processor's BOS/EOS tipped it over
    return ids;
  } catch (const TooManyIds&) {
    return std::nullopt;
  }
}

std::vector<int32_t> HfTokenizer::encode_bounded(std::string_view text_in, bool add_special_tokens,
                                                 size_t max_ids) const {
  std::string repaired;
  std::string_view text = text_in;
  if (!utf8_is_valid(text)) {
    repaired = utf8_lossy(text);
    text = repaired;
  }
  std::vector<int32_t> ids;
  ids.reserve(std::min(text.size() / 3, max_ids) + 4);
  split_added(
      raw_trie_, added_, text,
      [&](std::size_t a, std::size_t b) { encode_segment(text.substr(a, b - a), a == 0, ids, max_ids); },
      [&](int32_t k) { ids.push_back(added_[static_cast<std::size_t>(k)].id); });
  if (add_special_tokens && post_processor_) post_processor_->apply(ids);
  return ids;
}

void HfTokenizer::encode_segment(std::string_view segment, bool at_start, std::vector<int32_t>& ids,
                                 size_t max_ids) const {
  if (ids.size() > max_ids) throw TooManyIds{};
  std::string normalized(segment);
  if (normalizer_) normalizer_->apply(normalized);
  if (normalized_trie_.empty()) {
    encode_normalized(std::move(normalized), at_start, ids, max_ids);
    return;
  }
  split_added(
      normalized_trie_, added_, normalized,
      [&](std::size_t a, std::size_t b) {
        encode_normalized(normalized.substr(a, b - a), at_start && a == 0, ids, max_ids);
      },
      [&](int32_t k) { ids.push_back(added_[static_cast<std::size_t>(k)].id); });
}

void HfTokenizer::encode_normalized(std::string normalized, bool at_start, std::vector<int32_t>& ids,
                                    size_t max_ids) const {
  if (normalized.empty()) return;
  if (!pre_tokenizer_) {
    // One word (SentencePiece-style BPE): its merges cannot stop midway, but its length bounds its ids from below.
    if (max_ids != SIZE_MAX && ids.size() + model_.min_ids_for(normalized.size()) > max_ids) throw TooManyIds{};
    model_.tokenize(normalized, ids);
    if (ids.size() > max_ids) throw TooManyIds{};
    return;
  }
  std::vector<Piece> pieces;
  pieces.push_back(Piece{std::move(normalized), at_start});
  pre_tokenizer_->apply(pieces);
  // Words one by one, so an over-long text stops after max_ids ids' worth of merges.
  for (const auto& p : pieces) {
    model_.tokenize(p.text, ids);
    if (ids.size() > max_ids) throw TooManyIds{};
  }
}

std::string HfTokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= model_.id_to_token.size()) continue;
    const std::string& t = model_.id_to_token[static_cast<std::size_t>(id)];
    if (t.empty()) continue;
    if (skip_special_tokens && special_[static_cast<std::size_t>(id)]) continue;
    tokens.push_back(t);
  }
  if (!decoder_) {
    std::string out;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i) out.push_back(' ');
      out += tokens[i];
    }
    return out;
  }
  decoder_->apply(tokens);
  std::string out;
  for (auto& t : tokens) out += t;
  return out;
}

std::string HfTokenizer::token_text(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= model_.id_to_token.size()) return {};
  return model_.id_to_token[static_cast<std::size_t>(id)];
}

std::optional<int32_t> HfTokenizer::token_id(std::string_view token) const {
  if (auto it = added_by_content_.find(token); it != added_by_content_.end()) return it->second;
  if (const int32_t id = model_.vocab_find(token); id >= 0) return id;
  return std::nullopt;
}

bool HfTokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<std::size_t>(id) < special_.size() && special_[static_cast<std::size_t>(id)];
}

}  // namespace lcllm::hf
