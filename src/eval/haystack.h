// Haystack prompts of an exact token length with needles at chosen depths (NIAH: gkamradt's
// LLMTest_NeedleInAHaystack; RULER, arXiv 2404.06654 §3).
//
// The prompt is built in token space so its length is exact: [BOS as the tokenizer adds it] + preamble + filler
// sentences with the inserts placed between sentences + query. Every piece is encoded in its mid-text form (as it
// tokenizes after "... ." + " "), the first one included, so the ids are what the tokenizer gives for the decoded
// text (pieces join with " "; with a byte-level BPE tokenizer the text after BOS starts with that space). Filler sentences are drawn with a seeded RNG until the budget is nearly spent; the last
// few tokens are filled by a combination of whole sentences whose lengths sum to exactly the rest, so the haystack
// is whole sentences (a token-level cut of one sentence is the fallback for tokenizers where no combination fits).
// An insert at depth d goes to the last sentence boundary at or before d x (filler tokens), as gkamradt's harness
// backs up to the previous sentence end.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace lcllm {

struct HaystackInsert {
  std::string text;    // one needle sentence
  double depth = 0.0;  // in [0, 1]: 0 = before all filler, 1 = after all filler
};

struct HaystackRequest {
  int32_t total_tokens = 0;  // the exact prompt length, BOS and query included
  std::string preamble;      // instruction before the haystack (may be empty)
  std::vector<HaystackInsert> inserts;
  std::string query;         // after the haystack (may be empty)
  uint64_t seed = 0;
};

struct Haystack {
  std::vector<int32_t> ids;               // [total_tokens]
  std::vector<int32_t> insert_pos;        // [inserts]: index in ids of each insert's first token
  std::vector<int32_t> insert_len;        // [inserts]: its token count
  std::vector<double> insert_depth;       // [inserts]: filler tokens before it / all filler tokens
  std::vector<int32_t> sentence_starts;   // index in ids of every filler sentence's first token, ascending
  int32_t filler_tokens = 0;
  int32_t query_pos = 0;                  // index in ids of the query's first token
  bool cut_sentence = false;              // true when the fallback token-level cut was needed
};

class HaystackBuilder {
 public:
  // `filler`: the sentences to draw from (at least one). Encodes them once. `in_order`: natural text, drawn as one
  // contiguous passage from a seeded start (wrapping at the end) instead of shuffled sentences.
  HaystackBuilder(const Tokenizer& tokenizer, std::vector<std::string> filler, bool in_order = false);

  // Throws ERROR_KIND_INVALID_ARGUMENT when total_tokens cannot hold the preamble, inserts and query.
  Haystack build(const HaystackRequest& request) const;

  // Ids of `text` as it tokenizes after a sentence end and a space.
  std::vector<int32_t> encode_continuation(const std::string& text) const;
  // Special ids the tokenizer puts before text when adding special tokens (BOS), possibly none.
  const std::vector<int32_t>& head() const { return head_; }
  const Tokenizer& tokenizer() const { return tok_; }

 private:
  const Tokenizer& tok_;
  std::vector<std::string> filler_;
  bool in_order_ = false;
  std::vector<std::vector<int32_t>> cont_ids_;   // [filler][tokens]: the sentence mid-text
  std::vector<int32_t> head_;
  std::vector<int32_t> ref_prefix_;              // ids of the reference prefix encode_continuation strips
};

}  // namespace lcllm
