// Hugging Face tokenizer.json, the parts the four reference tokenizers use (and a little more): BPE model,
// normalizers, pre-tokenizers, post-processors and decoders, plus the added-token splitter.
// Internal to src/tokenizer: the engine uses tokenizer.h.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/hf_tables.h"
#include "tokenizer/regex.h"
#include "tokenizer/tokenizer.h"

namespace lcllm::hf {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// A literal string or a regex, as in {"String": " "} / {"Regex": "..."}.
struct Pattern {
  std::string literal;
  std::unique_ptr<Regex> regex;  // set for {"Regex": ...}
  // Non-overlapping matches, left to right.
  void find_all(std::string_view s, std::vector<std::pair<std::size_t, std::size_t>>& out) const;
};

enum NormalizerKind { NORMALIZER_SEQUENCE, NORMALIZER_PREPEND, NORMALIZER_REPLACE, NORMALIZER_NFC, NORMALIZER_LOWERCASE,
                      NORMALIZER_STRIP };
struct Normalizer {
  NormalizerKind kind = NORMALIZER_SEQUENCE;
  std::vector<Normalizer> children;  // SEQUENCE
  std::string content;               // PREPEND text, REPLACE replacement
  std::shared_ptr<Pattern> pattern;  // REPLACE
  bool strip_left = false, strip_right = false;  // STRIP
  void apply(std::string& s) const;
};

enum SplitBehavior { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_WITH_PREVIOUS, SPLIT_MERGED_WITH_NEXT,
                     SPLIT_CONTIGUOUS };
enum PrependScheme { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };

// A pre-tokenized piece: text plus whether it starts at offset 0 of the original input (Metaspace "first").
struct Piece {
  std::string text;
  bool at_start = false;
};

enum PreTokenizerKind { PRETOK_SEQUENCE, PRETOK_SPLIT, PRETOK_BYTE_LEVEL, PRETOK_METASPACE, PRETOK_DIGITS };
struct PreTokenizer {
  PreTokenizerKind kind = PRETOK_SEQUENCE;
  std::vector<PreTokenizer> children;  // SEQUENCE
  std::shared_ptr<Pattern> pattern;    // SPLIT
  SplitBehavior behavior = SPLIT_ISOLATED;
  bool invert = false;
  bool add_prefix_space = false, use_regex = true;  // BYTE_LEVEL
  std::shared_ptr<Regex> byte_level_regex;          // BYTE_LEVEL with use_regex
  std::string replacement;                          // METASPACE ("▁")
  PrependScheme prepend_scheme = PREPEND_ALWAYS;    // METASPACE
  bool split = true;                                // METASPACE
  bool individual_digits = false;                   // DIGITS
  void apply(std::vector<Piece>& pieces) const;
};

enum DecoderKind { DECODER_SEQUENCE, DECODER_REPLACE, DECODER_BYTE_FALLBACK, DECODER_FUSE, DECODER_STRIP,
                   DECODER_METASPACE, DECODER_BYTE_LEVEL };
struct Decoder {
  DecoderKind kind = DECODER_SEQUENCE;
  std::vector<Decoder> children;
  std::shared_ptr<Pattern> pattern;  // REPLACE
  std::string content;               // REPLACE replacement, STRIP char, METASPACE replacement
  int strip_start = 0, strip_stop = 0;
  bool metaspace_prefix = true;  // METASPACE: prepend_scheme != never
  void apply(std::vector<std::string>& tokens) const;
};

enum PostProcessorKind { POST_SEQUENCE, POST_TEMPLATE, POST_BYTE_LEVEL, POST_BERT };
struct PostProcessor {
  PostProcessorKind kind = POST_SEQUENCE;
  std::vector<PostProcessor> children;
  // TEMPLATE (single sequence): each item is either a list of special ids or the input sequence (empty + is_seq).
  struct Item { bool is_sequence = false; std::vector<int32_t> ids; };
  std::vector<Item> single;
  std::vector<int32_t> bert_cls, bert_sep;  // BERT / Roberta
  void apply(std::vector<int32_t>& ids) const;
};

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

// BPE as in HF `tokenizers` models/bpe (same merge order and tie-breaking).
class BpeModel {
 public:
  std::vector<std::string> id_to_token;  // indexed by id (model + added tokens)
  MergeTable merges;
  // Model vocabulary lookup (added tokens that are not in the model's vocab are not found): id or -1.
  int32_t vocab_find(std::string_view s) const {
    if (vocab_slots_.empty()) return -1;
    for (std::size_t i = std::hash<std::string_view>{}(s) & vocab_mask_;; i = (i + 1) & vocab_mask_) {
      const int32_t id = vocab_slots_[i];
      if (id < 0) return -1;
      if (id_to_token[static_cast<std::size_t>(id)] == s) return id;
    }
  }
  std::size_t vocab_size() const { return vocab_count_; }
  // Indexes the given ids of id_to_token as the model vocabulary (their strings must be distinct).
  void build_vocab_index(const std::vector<int32_t>& ids);
  int32_t unk_id = -1;
  bool byte_fallback = false, fuse_unk = false, ignore_merges = false;
  std::string continuing_subword_prefix, end_of_word_suffix;
  int32_t byte_ids[256];  // "<0xXX>" ids for byte_fallback, -1 when absent

  void tokenize(std::string_view word, std::vector<int32_t>& out) const;
  // A lower bound on the ids tokenize() makes of a word of this many bytes (0 when there is none).
  std::size_t min_ids_for(std::size_t word_bytes) const;

 private:
  std::size_t max_token_bytes_ = 0;  // longest model vocabulary string
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  std::vector<int32_t> vocab_slots_;
  std::size_t vocab_mask_ = 0, vocab_count_ = 0;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

class HfTokenizer final : public Tokenizer {
 public:
  HfTokenizer(std::string_view json_text, const std::string& origin, const TokenizerConfig& config);

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override;
  std::optional<std::vector<int32_t>> encode_at_most(std::string_view text, bool add_special_tokens,
                                                     size_t max_tokens) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(model_.id_to_token.size()); }
  std::string token_text(int32_t id) const override;
  std::optional<int32_t> token_id(std::string_view token) const override;
  bool is_special(int32_t id) const override;

 private:
  // `max_ids`: throws TooManyIds once `ids` holds more (encode_at_most's early exit).
  struct TooManyIds {};
  void encode_segment(std::string_view segment, bool at_start, std::vector<int32_t>& ids, size_t max_ids) const;
  void encode_normalized(std::string normalized, bool at_start, std::vector<int32_t>& ids, size_t max_ids) const;
  std::vector<int32_t> encode_bounded(std::string_view text, bool add_special_tokens, size_t max_ids) const;

  BpeModel model_;
  std::vector<AddedToken> added_;
  TokenMap added_by_content_;
  std::vector<uint8_t> special_;  // by id
  AddedTokenTrie raw_trie_, normalized_trie_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  friend struct HfLoader;
};

// byte -> the printable character the GPT-2 byte-level alphabet maps it to, and back.
const std::string& byte_level_char(unsigned char b);
int byte_level_byte(uint32_t cp);  // -1 when cp is not in the alphabet

}  // namespace lcllm::hf
