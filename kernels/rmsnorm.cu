#include "kernels/rmsnorm.h"

#include <cuda_bf16.h>

#include "kernels/cuda_check.h"

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------

constexpr int kRmsnormThreads = 128;

// One block per row. Each thread reads and writes the same elements, so out == x is safe.
__global__ void __launch_bounds__(kRmsnormThreads) kernel_rmsnorm(RmsnormParams p) {
  __shared__ float warp_sums[kRmsnormThreads / 32];
  const int64_t r = blockIdx.x;
  const float* x = p.x + r * p.d;
  float* out = p.out + r * p.d;
  float ss = 0.f;
  for (int32_t j = threadIdx.x; j < p.d; j += kRmsnormThreads) ss += x[j] * x[j];
  for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x / 32] = ss;
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < kRmsnormThreads / 32; ++w) total += warp_sums[w];
  const float inv = 1.0f / sqrtf(total / float(p.d) + p.eps);
  for (int32_t j = threadIdx.x; j < p.d; j += kRmsnormThreads) {
    const float w = p.one_plus ? 1.0f + p.w[j] : p.w[j];
    out[j] = x[j] * inv * w;
  }
}

// One block per row: the sum x + y is written back and squared in the same pass; the normalising pass re-reads
// x from L1/L2 (the row was just written by this block) instead of holding up to d / 128 values per thread.
__global__ void __launch_bounds__(kRmsnormThreads) kernel_add_rmsnorm(AddRmsnormParams p) {
  __shared__ float warp_sums[kRmsnormThreads / 32];
  const int64_t r = blockIdx.x;
  float* x = p.x + r * p.d;
  const float* y = p.y + r * p.d;
  float ss = 0.f;
  for (int32_t j = threadIdx.x; j < p.d; j += kRmsnormThreads) {
    const float s = x[j] + y[j];
    x[j] = s;
    ss += s * s;
  }
  for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x / 32] = ss;
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < kRmsnormThreads / 32; ++w) total += warp_sums[w];
  const float inv = 1.0f / sqrtf(total / float(p.d) + p.eps);
  float* out = p.out + r * p.d;
  auto* out_bf16 = p.out_bf16 ? reinterpret_cast<__nv_bfloat16*>(p.out_bf16) + r * p.d : nullptr;
  for (int32_t j = threadIdx.x; j < p.d; j += kRmsnormThreads) {
    const float w = p.one_plus ? 1.0f + p.w[j] : p.w[j];
    const float o = x[j] * inv * w;
    out[j] = o;
    if (out_bf16) out_bf16[j] = __float2bfloat16_rn(o);
  }
}

// ---- launchers ----------------------------------------------------------------------------------------------

void launch_rmsnorm(const RmsnormParams& p, cudaStream_t stream) {
  if (p.rows == 0) return;
  kernel_rmsnorm<<<unsigned(p.rows), kRmsnormThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

void launch_add_rmsnorm(const AddRmsnormParams& p, cudaStream_t stream) {
  if (p.rows == 0) return;
  kernel_add_rmsnorm<<<unsigned(p.rows), kRmsnormThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lcllm
