#include "kernels/gemv.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include <cuda_bf16.h>

#include "kernels/cuda_check.h"

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------
//
// One warp per output feature, grid-stride over the features of all segments. A lane issues all kChunk 16-byte
// loads of its share of a 4096-element stretch of the weight row before using any (8 KB in flight per warp), with
// L1::no_allocate so the L1 keeps x (a few KB read by every warp of the SM), then multiplies and the warp reduces.
// The grid is one wave of resident blocks (no tail wave).
//
// Tried and removed: launching it as a programmatic dependent of the kernel writing x, prefetching the first
// weights into L2 before griddepcontrol.wait: decode at 32k went from 8.04 to 8.51 ms (H100, same call).
// Version 1 (4 loads in flight per lane, 8 warps x up to 8 blocks, rows of 4096 in 4 dependent rounds) streamed at
// only 1.95 TB/s on the H100 (ncu: 62% of DRAM peak, 50% achieved occupancy, a 1.2-wave grid; 2026-11-25).

constexpr int kGemvWarps = 8;
// CHUNK: 16-byte loads per lane per round (16: 32 lanes x 16 x 8 = 4096 weights, 102 registers, 2 blocks an SM;
// 8: half the registers, MIN_BLOCKS 4 an SM). LCLLM_GEMV_CHUNK=8 selects the second (benchmark A/B).

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

template <int NR, int kChunk, int kMinBlocks>
__global__ void __launch_bounds__(kGemvWarps * 32, kMinBlocks) kernel_gemv(GemvParams p) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  int32_t total = 0;
#pragma unroll
  for (int s = 0; s < kGemvMaxSegments; ++s) total += s < p.n_segments ? p.seg[s].n_out : 0;
  const int32_t n8 = p.n_in / 8;
  for (int32_t feature = blockIdx.x * kGemvWarps + warp; feature < total; feature += gridDim.x * kGemvWarps) {
    // Constant indices only: a runtime index into the parameter struct would copy it to local memory.
    static_assert(kGemvMaxSegments == 3, "segment selection below is written for 3 segments");
    int32_t local = feature;
    GemvSegment seg = p.seg[0];
    if (local >= seg.n_out) {
      local -= seg.n_out;
      seg = p.seg[1];
      if (local >= seg.n_out) {
        local -= seg.n_out;
        seg = p.seg[2];
      }
    }
    const auto* w = reinterpret_cast<const uint4*>(seg.w + int64_t(local) * p.n_in);
    float acc[NR];
#pragma unroll
    for (int r = 0; r < NR; ++r) acc[r] = 0.f;
    for (int32_t base = 0; base < n8; base += 32 * kChunk) {
      uint4 wv[kChunk];
      if (base + 32 * kChunk <= n8) {  // whole round: every load unconditional
#pragma unroll
        for (int u = 0; u < kChunk; ++u) wv[u] = load_streaming(w + base + 32 * u + lane);
#pragma unroll
        for (int u = 0; u < kChunk; ++u) {
          const int64_t i8 = base + 32 * u + lane;
#pragma unroll
          for (int r = 0; r < NR; ++r) acc[r] = dot8(wv[u], p.x + int64_t(r) * p.n_in + i8 * 8, acc[r]);
        }
      } else {  // the row's tail
#pragma unroll
        for (int u = 0; u < kChunk; ++u) {
          const int32_t i = base + 32 * u + lane;
          wv[u] = i < n8 ? load_streaming(w + i) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < kChunk; ++u) {
          const int32_t i = base + 32 * u + lane;
          if (i >= n8) break;
#pragma unroll
          for (int r = 0; r < NR; ++r) acc[r] = dot8(wv[u], p.x + int64_t(r) * p.n_in + int64_t(i) * 8, acc[r]);
        }
      }
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

// One wave: as many blocks as fit on the GPU at once (occupancy cached per instance), fewer for small matrices.
template <int NR, int CHUNK, int MIN_BLOCKS>
void launch_rows(const GemvParams& p, int64_t total, cudaStream_t stream) {
  static int resident[64] = {};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  int& per_sm = resident[device & 63];
  if (per_sm == 0) {
    CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel_gemv<NR, CHUNK, MIN_BLOCKS>,
                                                             kGemvWarps * 32, 0));
    per_sm = std::max(per_sm, 1);
  }
  const int64_t blocks = std::min<int64_t>((total + kGemvWarps - 1) / kGemvWarps, int64_t(sm_count()) * per_sm);
  kernel_gemv<NR, CHUNK, MIN_BLOCKS><<<unsigned(blocks), kGemvWarps * 32, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

bool small_chunk() {
  static const bool on = [] {
    const char* e = std::getenv("LCLLM_GEMV_CHUNK");
    return e != nullptr && std::string(e) == "8";
  }();
  return on;
}

template <int NR>
void launch_rows(const GemvParams& p, int64_t total, cudaStream_t stream) {
  if (small_chunk()) {
    launch_rows<NR, 8, 4>(p, total, stream);
  } else {
    launch_rows<NR, 16, 2>(p, total, stream);
  }
}

}  // namespace

void launch_gemv(const GemvParams& p, cudaStream_t stream) {
  int64_t total = 0;
  for (int s = 0; s < p.n_segments; ++s) total += p.seg[s].n_out;
  if (total == 0) return;
  switch (p.n_rows) {
    case 1: launch_rows<1>(p, total, stream); break;
    case 2: launch_rows<2>(p, total, stream); break;
    case 3: launch_rows<3>(p, total, stream); break;
    default: launch_rows<4>(p, total, stream); break;
  }
}

}  // namespace lcllm
