// Token embedding lookup (+ Gemma's sqrt(hidden) scale): out[i] = table[ids[i]] * scale.
#pragma once
#include <cstdint>

#include <cuda_runtime_api.h>

namespace lcllm {

struct EmbedParams {
  float* out;              // [n, d] fp32
  const uint16_t* table;   // [vocab, d] bf16
  const int32_t* ids;      // [n] (validated by the engine)
  int32_t n;
  int64_t d;
  float scale;
};

void launch_embed(const EmbedParams& p, cudaStream_t stream);

}  // namespace lcllm
