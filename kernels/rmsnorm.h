// Row-wise RMSNorm over the last dim: out = x / sqrt(mean(x²) + eps) * (w or 1 + w). In place allowed.
#pragma once
#include <cstdint>

#include <cuda_runtime_api.h>

namespace lcllm {

// out_bf16, when set, also receives out rounded to bf16 (the next GEMM's input, as add_rmsnorm's below).
struct RmsnormParams {
  float* out;          // [rows, d]
  uint16_t* out_bf16;  // [rows, d] bf16 copy of out, or null
  const float* x;      // [rows, d], may equal out
  const float* w;      // [d] fp32 (1-D weights stay fp32 on the device)
  int64_t rows;
  int32_t d;
  float eps;
  bool one_plus;     // Gemma: scale by (1 + w)
};

void launch_rmsnorm(const RmsnormParams& p, cudaStream_t stream);

// The residual add fused with the next sublayer's norm (E3 item 1): x += y, then out = rmsnorm(x), one pass per
// row instead of two kernels. out_bf16, when set, also receives out rounded to bf16: the input of the projections
// that follow, so their GEMMs skip a separate conversion kernel.
struct AddRmsnormParams {
  float* x;              // [rows, d] residual stream, updated in place
  const float* y;        // [rows, d] sublayer output added to x
  float* out;            // [rows, d] normed x (must not alias x or y)
  uint16_t* out_bf16;    // [rows, d] bf16 copy of out, or null
  const float* w;        // [d] fp32
  int64_t rows;
  int32_t d;
  float eps;
  int32_t one_plus;      // Gemma: scale by (1 + w)
};

void launch_add_rmsnorm(const AddRmsnormParams& p, cudaStream_t stream);

}  // namespace lcllm
