// Row-wise RMSNorm over the last dim: out = x / sqrt(mean(x²) + eps) * (w or 1 + w). In place allowed.
#pragma once
#include <cstdint>

#include <cuda_runtime_api.h>

namespace lcllm {

struct RmsnormParams {
  float* out;        // [rows, d]
  const float* x;    // [rows, d], may equal out
  const float* w;    // [d] fp32 (1-D weights stay fp32 on the device)
  int64_t rows;
  int32_t d;
  float eps;
  bool one_plus;     // Gemma: scale by (1 + w)
};

void launch_rmsnorm(const RmsnormParams& p, cudaStream_t stream);

}  // namespace lcllm
