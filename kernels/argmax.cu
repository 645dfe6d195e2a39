#include "kernels/argmax.h"

#include <cmath>
#include <cstdint>

#include "kernels/cuda_check.h"

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------

namespace {

constexpr int kArgmaxThreads = 1024;

// (value, index) pairs ordered as greedy sampling orders tokens: the larger value, then the lower index. A NaN
// poisons the row (Sampler throws on one), so it is carried as a flag and never compared.
struct Best {
  float v;
  int32_t i;
  bool nan;
};

__device__ __forceinline__ Best better(const Best& a, const Best& b) {
  Best r = (b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a;
  r.nan = a.nan || b.nan;
  return r;
}

// Folds element j of value v into a thread's best.
__device__ __forceinline__ void consider(Best& b, float v, int32_t j) {
  if (isnan(v)) {
    b.nan = true;
  } else if (v > b.v || (v == b.v && j < b.i)) {
    b.v = v;
    b.i = j;
  }
}

}  // namespace

// One block per row; each thread scans a strided share of the row (coalesced), then the warps and the block reduce.
// The scan reads float4s with up to 8 loads in flight per thread, so a 128k vocabulary (0.5 MB, one SM) should take
// ~4 rounds of memory latency (not yet measured); the first version's one float per thread and round took 24 us a
// step under ncu (H100, bench/results/decode_step_breakdown_h100_2026-12-07/), about 0.2% of an 8B decode step.
__global__ void __launch_bounds__(kArgmaxThreads) kernel_argmax_rows(ArgmaxRowsParams p) {
  const float* row = p.x + int64_t(blockIdx.x) * p.n;
  Best b{-INFINITY, INT32_MAX, false};
  const bool vec = p.n % 4 == 0 && (reinterpret_cast<uintptr_t>(p.x) & 15) == 0;  // every row 16-byte aligned
  const int32_t n4 = vec ? p.n / 4 : 0;
  const float4* row4 = reinterpret_cast<const float4*>(row);
#pragma unroll 8
  for (int32_t j4 = int32_t(threadIdx.x); j4 < n4; j4 += kArgmaxThreads) {
    const float4 v = __ldg(row4 + j4);
    consider(b, v.x, 4 * j4);
    consider(b, v.y, 4 * j4 + 1);
    consider(b, v.z, 4 * j4 + 2);
    consider(b, v.w, 4 * j4 + 3);
  }
  for (int32_t j = 4 * n4 + int32_t(threadIdx.x); j < p.n; j += kArgmaxThreads) consider(b, row[j], j);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const Best o{__shfl_down_sync(0xffffffffu, b.v, off), __shfl_down_sync(0xffffffffu, b.i, off),
                 __shfl_down_sync(0xffffffffu, b.nan, off) != 0};
    b = better(b, o);
  }
  __shared__ Best warps[kArgmaxThreads / 32];  // [warp] each warp's best
  const int lane = int(threadIdx.x) & 31, warp = int(threadIdx.x) >> 5;
  if (lane == 0) warps[warp] = b;
  __syncthreads();
  if (threadIdx.x == 0) {
    Best r = warps[0];
    for (int w = 1; w < kArgmaxThreads / 32; ++w) r = better(r, warps[w]);
    // Nothing above -inf (every value -inf, or n == 0): greedy sampling has no token to take.
    p.out[blockIdx.x] = (r.nan || r.i == INT32_MAX || r.v == -INFINITY) ? -1.f : float(r.i);
  }
}

// ---- launchers ----------------------------------------------------------------------------------------------

void launch_argmax_rows(const ArgmaxRowsParams& p, cudaStream_t stream) {
  if (p.rows == 0) return;
  kernel_argmax_rows<<<unsigned(p.rows), kArgmaxThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lcllm
