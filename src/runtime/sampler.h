// Token sampling on the host: penalties, temperature, top-k, top-p, min-p, then one seeded draw.
//
// Order and formulas (vLLM conventions, which follow Hugging Face transformers and the OpenAI API):
//   1. repetition penalty, over every distinct id in prompt + output (HF RepetitionPenaltyLogitsProcessor):
//        logit > 0 ? logit / repetition_penalty : logit * repetition_penalty
//   2. frequency and presence penalties, over the generated output only (OpenAI; vLLM excludes the prompt):
//        logit -= frequency_penalty * count(id in output) + presence_penalty * (count > 0)
//   3. temperature == 0: greedy, argmax after penalties, lowest id on ties; steps 4-7 are skipped.
//   4. logit / temperature, then softmax.
//   5. top-k: keep the k largest (ties broken by lower id).
//   6. top-p on the top-k distribution: keep the smallest prefix of tokens sorted by probability (ties: lower id
//      first) whose cumulative probability is >= top_p; it always holds at least the top token.
//   7. min-p: keep tokens with p >= min_p * p_max (renormalising does not change the ratio, so it is the same
//      whether measured before or after step 6), renormalise, draw.
//
// Special logits: -inf is allowed and means "never sample" (masks); +inf means "all the mass": the +inf tokens
// share it equally (greedy takes the lowest such id); NaN throws lcllm::Error ERROR_KIND_INVALID_ARGUMENT, as does
// a distribution with no finite-or-+inf logit left. Token ids in prompt/output are only read when a penalty is on;
// an id outside [0, vocab) then throws ERROR_KIND_INVALID_ARGUMENT.
//
// Determinism: the generator and its uniform [0, 1) conversion are our own (xoshiro256** seeded by splitmix64), so a
// seed gives the same uniforms with every compiler and standard library. Probabilities are computed in double with
// std::exp; a draw could only differ across libms if it falls within ~1e-16 of a bucket edge.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "lcllm/sampling_params.h"

namespace lcllm {

// xoshiro256** 1.0 (Blackman & Vigna), state filled from splitmix64(seed) as its authors recommend.
class SamplerRng {
 public:
  explicit SamplerRng(uint64_t seed);
  uint64_t next_u64();
  // Uniform in [0, 1): the top 53 bits of next_u64() times 2^-53, so every value is exact and 1.0 never occurs.
  double next_double();

 private:
  uint64_t state_[4];
};

struct TokenProb {
  int32_t id;
  double prob;
};

// One Sampler per request: it owns the request's RNG stream and reuses scratch buffers between steps.
class Sampler {
 public:
  // Throws ERROR_KIND_INVALID_ARGUMENT listing every problem validate_sampling_params finds.
  explicit Sampler(const SamplingParams& params);

  // logits: [vocab] for the next position. prompt_ids: the request's prompt; output_ids: tokens generated so far
  // (kept apart because repetition reads both, frequency/presence read only the output). Advances the RNG once
  // per call unless greedy.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> prompt_ids,
                 std::span<const int32_t> output_ids);

  // The final distribution sample() draws from, sorted by probability descending then id ascending
  // (for logprobs and tests). Greedy gives the argmax with probability 1. Does not touch the RNG.
  std::vector<TokenProb> distribution(std::span<const float> logits, std::span<const int32_t> prompt_ids,
                                      std::span<const int32_t> output_ids);

  const SamplingParams& params() const { return params_; }
  // sample() is the argmax of the logits as given (greedy, no penalty): a decode step may compute it where the
  // logits are (SequenceChunk::argmax_only) and skip copying them.
  bool plain_greedy() const {
    return params_.temperature == 0.0f && params_.repetition_penalty == 1.0f && params_.frequency_penalty == 0.0f &&
           params_.presence_penalty == 0.0f;
  }

 private:
  // Fills candidates_/weights_ with the surviving tokens and their unnormalised probabilities.
  void prepare(std::span<const float> logits, std::span<const int32_t> prompt_ids,
               std::span<const int32_t> output_ids);
  void apply_penalties(std::span<const int32_t> prompt_ids, std::span<const int32_t> output_ids);

  SamplingParams params_;
  SamplerRng rng_;
  std::vector<double> logits_;       // [vocab] working copy: penalised, then divided by temperature
  std::vector<int32_t> candidates_;  // [n_cand] surviving token ids
  std::vector<double> weights_;      // [n_cand] exp(logit - max) of candidates_[i]
  std::vector<int32_t> counts_;      // [vocab] occurrences in output_ids; all 0 between calls
  std::vector<uint8_t> seen_;        // [vocab] id already penalised this call; all 0 between calls
  std::vector<int32_t> touched_;     // [n_distinct] ids whose counts_/seen_ must be reset
};

}  // namespace lcllm
