// Needle-in-a-haystack probes for calibration (Retrieval Head, arXiv 2404.15574 §2): filler text with a needle
// sentence hidden at a given depth, then a question whose answer copies the needle's value. Built with the
// model's own tokenizer; the pieces are encoded separately so the needle's token positions are known exactly.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace lcllm {

struct NeedleProbe {
  std::vector<int32_t> context;  // [n] BOS? + filler + needle + filler + question
  std::vector<int32_t> answer;   // [m] the needle value's tokens, which the answer copies
  int32_t value_begin = 0;       // the value's tokens sit at context[value_begin, value_begin + m)
  double depth = 0;              // where the needle sits, as a fraction of the filler
};

// n_probes probes of about context_tokens tokens (at least 64), needle depths spread evenly over [0.1, 0.9],
// values drawn with `seed`. The filler is `natural_text` when given (each probe a contiguous passage of it from a
// seeded start, wrapping at the end: real models' heads behave differently on repeated sentences, where induction
// heads copy the filler), else eight built-in sentences in a cycle. Throws ERROR_KIND_INVALID_ARGUMENT when the
// tokenizer produces no tokens for the text.
std::vector<NeedleProbe> needle_probes_build(const Tokenizer& tokenizer, int32_t n_probes, int32_t context_tokens,
                                             uint64_t seed, const std::string& natural_text = "");

}  // namespace lcllm
