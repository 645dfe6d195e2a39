// Teacher-forced answer likelihood (E10 item 7): how much of the expected answer's probability a policy keeps
// relative to full attention on the same prompt. Exact match hides what attention lost when a small model answers
// in words ("The number is four million ..."), while the log-probability of the answer's ids stays comparable.
//
// Per prompt (same task, length and sample under two policies, the answer of n tokens):
//   retained = min(1, exp((ln p_policy(answer) − ln p_full(answer)) / n))
// the per-token ratio of the two probabilities, capped at 1 so that a policy's gains on some prompts do not hide its
// losses on others. A table cell is the mean over its prompts x 100.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lcllm {

struct AnswerLikelihood {
  std::string policy;  // label
  int32_t length = 0;  // prompt tokens (the table's column)
  std::string prompt;  // what identifies the prompt within a length (e.g. "depth 50 sample 2", "niah_single 3")
  double logprob = 0;  // Σ ln p over the answer's ids; NaN when not scored
  int32_t tokens = 0;  // answer ids scored
};

// min(1, exp((logprob − full_logprob) / tokens)); NaN when either is NaN or tokens < 1.
double answer_retained(double logprob, double full_logprob, int32_t tokens);

// Markdown: the mean per-token log-probability of the answer per policy x length (and over all lengths), then,
// when `full_policy` is among the policies, the retained percentage of each policy relative to it (prompts that
// full did not score are left out). Empty when no record was scored.
std::string answer_likelihood_markdown(const std::vector<AnswerLikelihood>& records,
                                       const std::vector<std::string>& policies, const std::vector<int32_t>& lengths,
                                       const std::string& full_policy = "full");

// The retained share in [0, 1] of each policy (rows, in order) per length and over all lengths (columns: lengths,
// then "all"), row-major [policies, lengths + 1]; NaN where no prompt of the cell was scored under both. Empty when
// no record of `full_policy` was scored (nothing to compare with).
std::vector<float> answer_retained_grid(const std::vector<AnswerLikelihood>& records,
                                        const std::vector<std::string>& policies, const std::vector<int32_t>& lengths,
                                        const std::string& full_policy = "full");

}  // namespace lcllm
