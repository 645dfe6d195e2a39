#include "kernels/gemv.h"

#include <algorithm>

#include <cuda_bf16.h>

#include "kernels/cuda_check.h"

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------
//
// One warp per output feature (grid-stride over the features of all segments): each lane streams 16-byte pieces of
// the weight row (kUnroll of them in flight, loaded with L1::no_allocate so the L1 keeps x), multiplies them with
// the matching x values (read through L1: x is a few KB shared by every warp of the SM), and the warp reduces.
// Enough bytes in flight: 8 warps a block, up to 8 blocks an SM, 4 x 16 B per lane -> 128 KB per SM.

constexpr int kGemvWarps = 8;
constexpr int kUnroll = 4;

__device__ __forceinline__ uint4 load_streaming(const uint4* p) {
  uint4 r;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
      : "l"(p));
  return r;
}

__device__ __forceinline__ float bf16_round(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

// acc += dot(8 bf16 weights, 8 x values rounded to bf16)
__device__ __forceinline__ float dot8(const uint4& w, const float* x8, float acc) {
  const float4 a = *reinterpret_cast<const float4*>(x8);
  const float4 b = *reinterpret_cast<const float4*>(x8 + 4);
  acc = fmaf(bf16_round(a.x), __uint_as_float(w.x << 16), acc);
  acc = fmaf(bf16_round(a.y), __uint_as_float(w.x & 0xffff0000u), acc);
  acc = fmaf(bf16_round(a.z), __uint_as_float(w.y << 16), acc);
  acc = fmaf(bf16_round(a.w), __uint_as_float(w.y & 0xffff0000u), acc);
  acc = fmaf(bf16_round(b.x), __uint_as_float(w.z << 16), acc);
  acc = fmaf(bf16_round(b.y), __uint_as_float(w.z & 0xffff0000u), acc);
  acc = fmaf(bf16_round(b.z), __uint_as_float(w.w << 16), acc);
  acc = fmaf(bf16_round(b.w), __uint_as_float(w.w & 0xffff0000u), acc);
  return acc;
}

template <int NR>
__global__ void __launch_bounds__(kGemvWarps * 32) kernel_gemv(GemvParams p) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  int32_t total = 0;
  for (int s = 0; s < p.n_segments; ++s) total += p.seg[s].n_out;
  const int32_t n8 = p.n_in / 8;
  for (int32_t feature = blockIdx.x * kGemvWarps + warp; feature < total; feature += gridDim.x * kGemvWarps) {
    int s = 0;
    int32_t local = feature;
    while (local >= p.seg[s].n_out) local -= p.seg[s++].n_out;
    const GemvSegment& seg = p.seg[s];
    const auto* w = reinterpret_cast<const uint4*>(seg.w + int64_t(local) * p.n_in);
    float acc[NR];
#pragma unroll
    for (int r = 0; r < NR; ++r) acc[r] = 0.f;
    int32_t i = lane;
    for (; i + 32 * (kUnroll - 1) < n8; i += 32 * kUnroll) {
      uint4 wv[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) wv[u] = load_streaming(w + i + 32 * u);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
        for (int r = 0; r < NR; ++r) acc[r] = dot8(wv[u], p.x + int64_t(r) * p.n_in + int64_t(i + 32 * u) * 8, acc[r]);
      }
    }
    for (; i < n8; i += 32) {
      const uint4 wv = load_streaming(w + i);
#pragma unroll
      for (int r = 0; r < NR; ++r) acc[r] = dot8(wv, p.x + int64_t(r) * p.n_in + int64_t(i) * 8, acc[r]);
    }
#pragma unroll
    for (int r = 0; r < NR; ++r) {
      for (int off = 16; off > 0; off >>= 1) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], off);
    }
    if (lane == 0) {
      const float b = seg.bias ? seg.bias[local] : 0.f;
#pragma unroll
      for (int r = 0; r < NR; ++r) seg.out[int64_t(r) * seg.n_out + local] = acc[r] + b;
    }
  }
}

// ---- launchers ----------------------------------------------------------------------------------------------

namespace {
int sm_count() {
  static int cached[64] = {};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  int& c = cached[device & 63];
  if (c == 0) CUDA_CHECK(cudaDeviceGetAttribute(&c, cudaDevAttrMultiProcessorCount, device));
  return c;
}
}  // namespace

void launch_gemv(const GemvParams& p, cudaStream_t stream) {
  int64_t total = 0;
  for (int s = 0; s < p.n_segments; ++s) total += p.seg[s].n_out;
  if (total == 0) return;
  const int64_t blocks = std::min<int64_t>((total + kGemvWarps - 1) / kGemvWarps, int64_t(sm_count()) * 8);
  const dim3 grid{unsigned(blocks)}, block{unsigned(kGemvWarps * 32)};
  switch (p.n_rows) {
    case 1: kernel_gemv<1><<<grid, block, 0, stream>>>(p); break;
    case 2: kernel_gemv<2><<<grid, block, 0, stream>>>(p); break;
    case 3: kernel_gemv<3><<<grid, block, 0, stream>>>(p); break;
    default: kernel_gemv<4><<<grid, block, 0, stream>>>(p); break;
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace lcllm
