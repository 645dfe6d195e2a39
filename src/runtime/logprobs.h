// Log-probabilities for the `logprobs` / `top_logprobs` response fields.
//
// Choice (docs/DECISIONS.md): the model's raw distribution, log_softmax(logits) before penalties, temperature and
// truncation — what vLLM returns by default ("raw_logprobs"). The processed distribution would give every greedy
// token log(1) = 0 and every token outside top-k/top-p -inf, which tells a client nothing about the model.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace lcllm {

struct TokenLogprob {
  int32_t id = -1;
  float logprob = 0;
};

struct StepLogprobs {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;  // [min(top_n, vocab)] most likely first, ties to the lower id
};

// logits: [vocab]. +inf/-inf are handled (-inf tokens get -inf); NaN logits give NaN, printed as null.
StepLogprobs logprobs_compute(std::span<const float> logits, int32_t chosen, int32_t top_n);
// ln softmax(logits)[id] in double precision (0 <= id < vocab), by the same rule (eval's teacher-forced scores).
double log_softmax_at(std::span<const float> logits, int32_t id);

}  // namespace lcllm
