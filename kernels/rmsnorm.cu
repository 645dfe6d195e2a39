#include "kernels/rmsnorm.h"

#include <cuda_bf16.h>

#include "kernels/cuda_check.h"

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------
//
// One block per row. Decode steps have 1-32 rows of 2-8k values: with the first version's 128 threads per row
// that was 32 dependent load rounds per pass, 28 µs per add + norm on the H100 (ncu, 2026-11-25) for 16 KB of
// data; so the launcher sizes the block to the row (up to 1024 threads, float4 per thread) when there are few rows.
// Every thread reads and writes the same elements in both passes, so out may alias x (rmsnorm) or y (add_rmsnorm).

constexpr int kMaxThreads = 1024;

__device__ __forceinline__ float block_sum(float v, float* warp_sums) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  const int warps = (blockDim.x + 31) / 32;
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x / 32] = v;
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < warps; ++w) total += warp_sums[w];
  return total;
}

__global__ void __launch_bounds__(kMaxThreads) kernel_rmsnorm(RmsnormParams p) {
  __shared__ float warp_sums[kMaxThreads / 32];
  const int64_t r = blockIdx.x;
  const float* x = p.x + r * p.d;
  float* out = p.out + r * p.d;
  float ss = 0.f;
  for (int32_t j = threadIdx.x; j < p.d; j += blockDim.x) ss += x[j] * x[j];
  const float inv = 1.0f / sqrtf(block_sum(ss, warp_sums) / float(p.d) + p.eps);
  auto* out_bf16 = p.out_bf16 ? reinterpret_cast<__nv_bfloat16*>(p.out_bf16) + r * p.d : nullptr;
  for (int32_t j = threadIdx.x; j < p.d; j += blockDim.x) {
    const float w = p.one_plus ? 1.0f + p.w[j] : p.w[j];
    const float o = x[j] * inv * w;
    out[j] = o;
    if (out_bf16) out_bf16[j] = __float2bfloat16_rn(o);
  }
}

// float4 per thread and step (d % 4 == 0: every real model's hidden size).
__global__ void __launch_bounds__(kMaxThreads) kernel_add_rmsnorm_vec4(AddRmsnormParams p) {
  __shared__ float warp_sums[kMaxThreads / 32];
  const int64_t r = blockIdx.x;
  const int32_t d4 = p.d / 4;
  auto* x = reinterpret_cast<float4*>(p.x + r * p.d);
  const auto* y = reinterpret_cast<const float4*>(p.y + r * p.d);
  float ss = 0.f;
  for (int32_t j = threadIdx.x; j < d4; j += blockDim.x) {
    const float4 a = x[j], b = y[j];
    const float4 s = make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
    x[j] = s;
    ss += s.x * s.x + s.y * s.y + s.z * s.z + s.w * s.w;
  }
  const float inv = 1.0f / sqrtf(block_sum(ss, warp_sums) / float(p.d) + p.eps);
  auto* out = reinterpret_cast<float4*>(p.out + r * p.d);
  const auto* w4 = reinterpret_cast<const float4*>(p.w);
  auto* out_bf16 = p.out_bf16 ? reinterpret_cast<__nv_bfloat162*>(p.out_bf16 + r * p.d) : nullptr;
  const float add = p.one_plus ? 1.0f : 0.0f;
  for (int32_t j = threadIdx.x; j < d4; j += blockDim.x) {
    const float4 s = x[j], w = w4[j];
    const float4 o = make_float4(s.x * inv * (add + w.x), s.y * inv * (add + w.y), s.z * inv * (add + w.z),
                                 s.w * inv * (add + w.w));
    out[j] = o;
    if (out_bf16) {
      out_bf16[2 * j] = __floats2bfloat162_rn(o.x, o.y);
      out_bf16[2 * j + 1] = __floats2bfloat162_rn(o.z, o.w);
    }
  }
}

__global__ void __launch_bounds__(kMaxThreads) kernel_add_rmsnorm(AddRmsnormParams p) {
  __shared__ float warp_sums[kMaxThreads / 32];
  const int64_t r = blockIdx.x;
  float* x = p.x + r * p.d;
  const float* y = p.y + r * p.d;
  float ss = 0.f;
  for (int32_t j = threadIdx.x; j < p.d; j += blockDim.x) {
    const float s = x[j] + y[j];
    x[j] = s;
    ss += s * s;
  }
  const float inv = 1.0f / sqrtf(block_sum(ss, warp_sums) / float(p.d) + p.eps);
  float* out = p.out + r * p.d;
  auto* out_bf16 = p.out_bf16 ? reinterpret_cast<__nv_bfloat16*>(p.out_bf16) + r * p.d : nullptr;
  for (int32_t j = threadIdx.x; j < p.d; j += blockDim.x) {
    const float w = p.one_plus ? 1.0f + p.w[j] : p.w[j];
    const float o = x[j] * inv * w;
    out[j] = o;
    if (out_bf16) out_bf16[j] = __float2bfloat16_rn(o);
  }
}

// ---- launchers ----------------------------------------------------------------------------------------------

namespace {
// Many rows (prefill): 128 threads a row, the rows fill the GPU. Few rows (decode): one thread per 4 values.
unsigned threads_for(int64_t rows, int32_t d) {
  if (rows >= 256) return 128;
  const int32_t want = (d / 4 + 31) / 32 * 32;
  return unsigned(want < 32 ? 32 : want > kMaxThreads ? kMaxThreads : want);
}
}  // namespace

void launch_rmsnorm(const RmsnormParams& p, cudaStream_t stream) {
  if (p.rows == 0) return;
  kernel_rmsnorm<<<unsigned(p.rows), threads_for(p.rows, p.d), 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

void launch_add_rmsnorm(const AddRmsnormParams& p, cudaStream_t stream) {
  if (p.rows == 0) return;
  if (p.d % 4 == 0) {
    kernel_add_rmsnorm_vec4<<<unsigned(p.rows), threads_for(p.rows, p.d), 0, stream>>>(p);
  } else {
    kernel_add_rmsnorm<<<unsigned(p.rows), threads_for(p.rows, p.d), 0, stream>>>(p);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace lcllm
