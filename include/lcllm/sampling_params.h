// How the next token is chosen from the logits. Field meanings follow vLLM's SamplingParams (and Hugging Face
// transformers' logits processors); see src/runtime/sampler.h for the exact order and formulas.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lcllm {

struct SamplingParams {
  float temperature = 1.0f;         // >= 0; 0 = greedy (argmax, lowest id on ties)
  int32_t top_k = 0;                // >= 0; 0 = off
  float top_p = 1.0f;               // in (0, 1]; 1 = off
  float min_p = 0.0f;               // in [0, 1]; 0 = off
  float repetition_penalty = 1.0f;  // > 0; 1 = off; over prompt + generated tokens (HF / vLLM)
  float frequency_penalty = 0.0f;   // in [-2, 2]; 0 = off; over generated tokens only (OpenAI / vLLM)
  float presence_penalty = 0.0f;    // in [-2, 2]; 0 = off; over generated tokens only (OpenAI / vLLM)
  uint64_t seed = 0;                // same seed, same logits -> same tokens, on every platform
};

// Every problem with params, one message each naming the field, the value and the rule; empty when valid.
// (Defined in src/runtime/sampler.cpp, library lcllm_sampler.)
std::vector<std::string> validate_sampling_params(const SamplingParams& params);

}  // namespace lcllm
