// Rotary embedding in place, rotate-half layout (pairs i, i + d/2), angles pos·inv_freq[i] in fp32 as
// transformers computes them (inv_freq from src/backend/rope_freq.h, uploaded once per RoPE config).
#pragma once
#include <cstdint>

#include <cuda_runtime_api.h>

namespace lcllm {

struct RopeParams {
  float* x;                 // [n, heads, head_dim]
  const int32_t* positions; // [n]
  const float* inv_freq;    // [head_dim / 2]
  int32_t n, heads, head_dim;
};

void launch_rope(const RopeParams& p, cudaStream_t stream);

}  // namespace lcllm
