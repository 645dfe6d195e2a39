#include "kernels/gemv.h"

#include <algorithm>

#include <cuda_bf16.h>

#include "kernels/cuda_check.h"
#include "kernels/device_info.h"
#include "kernels/glu_activation.cuh"

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------
//
// One warp per output feature, grid-stride over the features of all segments. A lane issues all kChunk 16-byte
// loads of its share of a 4096-element stretch of the weight row before using any (8 KB in flight per warp), with
// L1::no_allocate so the L1 keeps x (a few KB read by every warp of the SM), then multiplies and the warp reduces.
// The grid is one wave of resident blocks (no tail wave).
//
// Tried and removed: launching it as a programmatic dependent of the kernel writing x, prefetching the first
// weights into L2 before griddepcontrol.wait: decode at 32k went from 8.04 to 8.51 ms (H100, same call). Again in
// session 28 with each warp's first round of weights loaded into its registers before the wait: +0.3 ms a step at
// 128k (bench/results/decode_pdl_h100_2026-12-07/; kernels/pdl.cuh says where dependents pay).
// Version 1 (4 loads in flight per lane, 8 warps x up to 8 blocks, rows of 4096 in 4 dependent rounds) streamed at
// only 1.95 TB/s on the H100 (ncu: 62% of DRAM peak, 50% achieved occupancy, a 1.2-wave grid; 2026-11-25).

constexpr int kGemvWarps = 8;
// CHUNK: 16-byte loads per lane per round (16: 32 lanes x 16 x 8 = 4096 weights, 102 registers, 2 blocks an SM).
// CHUNK 8 with 4 blocks an SM measured the same (8.03 vs 8.05 ms decode at 32k, KERNEL_NOTES.md) and was retired.

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

// acc += dot(8 bf16 weights, 8 bf16 inputs): the normed rows staged in shared memory are already bf16
__device__ __forceinline__ float dot8_bf16(const uint4& w, const uint4& x, float acc) {
  acc = fmaf(__uint_as_float(x.x << 16), __uint_as_float(w.x << 16), acc);
  acc = fmaf(__uint_as_float(x.x & 0xffff0000u), __uint_as_float(w.x & 0xffff0000u), acc);
  acc = fmaf(__uint_as_float(x.y << 16), __uint_as_float(w.y << 16), acc);
  acc = fmaf(__uint_as_float(x.y & 0xffff0000u), __uint_as_float(w.y & 0xffff0000u), acc);
  acc = fmaf(__uint_as_float(x.z << 16), __uint_as_float(w.z << 16), acc);
  acc = fmaf(__uint_as_float(x.z & 0xffff0000u), __uint_as_float(w.z & 0xffff0000u), acc);
  acc = fmaf(__uint_as_float(x.w << 16), __uint_as_float(w.w << 16), acc);
  acc = fmaf(__uint_as_float(x.w & 0xffff0000u), __uint_as_float(w.w & 0xffff0000u), acc);
  return acc;
}

// kGlu: GemvParams::glu (a template parameter so that the other instances keep their registers).
template <int NR, int kChunk, int kMinBlocks, bool kNorm, bool kGlu>
__global__ void __launch_bounds__(kGemvWarps * 32, kMinBlocks) kernel_gemv(GemvParams p) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  int32_t total = 0;
#pragma unroll
  for (int s = 0; s < kGemvMaxSegments; ++s) total += s < p.n_segments ? p.seg[s].n_out : 0;
  const int32_t n8 = p.n_in / 8;
  // RMSNorm prologue: the block normalises its rows once into shared memory as bf16 (exactly the values the
  // unfused path's norm kernel + GEMM input rounding produce; only the mean-square summation order differs), and
  // the dot products read them from there. (A first version normalised on the fly per weight, in every warp: the
  // gate/up GEMV became issue-bound, 96 µs against 82 + 5 for GEMV + norm kernel.)
  extern __shared__ __align__(16) uint16_t s_xn[];  // [NR][n_in] bf16, kNorm only
  if constexpr (kNorm) {
    __shared__ float s_part[NR][kGemvWarps];
    const float add = p.norm_one_plus ? 1.f : 0.f;
    const int32_t n4 = p.n_in / 4;
    float inv[NR];
#pragma unroll
    for (int r = 0; r < NR; ++r) {
      const auto* x4 = reinterpret_cast<const float4*>(p.x + int64_t(r) * p.n_in);
      float ss = 0.f;
      for (int32_t j = threadIdx.x; j < n4; j += kGemvWarps * 32) {
        const float4 v = x4[j];
        ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
      }
      for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
      if (lane == 0) s_part[r][warp] = ss;
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < NR; ++r) {
      float total = 0.f;
      for (int w = 0; w < kGemvWarps; ++w) total += s_part[r][w];
      inv[r] = 1.0f / sqrtf(total / float(p.n_in) + p.eps);
    }
    const auto* g4 = reinterpret_cast<const float4*>(p.norm_w);
#pragma unroll
    for (int r = 0; r < NR; ++r) {
      const auto* x4 = reinterpret_cast<const float4*>(p.x + int64_t(r) * p.n_in);
      auto* dst = reinterpret_cast<__nv_bfloat162*>(s_xn + int64_t(r) * p.n_in);
      for (int32_t j = threadIdx.x; j < n4; j += kGemvWarps * 32) {
        const float4 v = x4[j], g = g4[j];
        dst[2 * j] = __floats2bfloat162_rn(v.x * inv[r] * (add + g.x), v.y * inv[r] * (add + g.y));
        dst[2 * j + 1] = __floats2bfloat162_rn(v.z * inv[r] * (add + g.z), v.w * inv[r] * (add + g.w));
      }
    }
    __syncthreads();
  }
  // acc += weights · x (or · rmsnorm(x)) for 8 inputs starting at i8 * 8
  auto step = [&](const uint4& wv, int64_t i8, float* acc) {
#pragma unroll
    for (int r = 0; r < NR; ++r) {
      if constexpr (kNorm) {
        acc[r] = dot8_bf16(wv, *reinterpret_cast<const uint4*>(s_xn + int64_t(r) * p.n_in + i8 * 8), acc[r]);
      } else {
        acc[r] = dot8(wv, p.x + int64_t(r) * p.n_in + i8 * 8, acc[r]);
      }
    }
  };
  // A work item: one output feature of one segment, or (glu) the gate row and the up row of one hidden feature.
  const int32_t n_items = kGlu ? p.seg[0].n_out : total;
  for (int32_t item = blockIdx.x * kGemvWarps + warp; item < n_items; item += gridDim.x * kGemvWarps) {
    float gate[NR];  // glu: the gate row's sums (with its bias) while the up row runs
#pragma unroll 1
    for (int32_t part = 0; part < (kGlu ? 2 : 1); ++part) {
      // Constant indices only: a runtime index into the parameter struct would copy it to local memory.
      static_assert(kGemvMaxSegments == 3, "segment selection below is written for 3 segments");
      int32_t local = item;
      GemvSegment seg = p.seg[0];
      if constexpr (kGlu) {
        if (part == 1) seg = p.seg[1];
      } else if (local >= seg.n_out) {
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
          for (int u = 0; u < kChunk; ++u) step(wv[u], base + 32 * u + lane, acc);
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
            step(wv[u], i, acc);
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
        for (int r = 0; r < NR; ++r) {
          const float v = acc[r] + b;
          if constexpr (!kGlu) {
            float* o = seg.out + int64_t(r) * seg.n_out + local;
            *o = p.accumulate ? *o + v : v;
          } else if (part == 0) {
            gate[r] = v;
          } else {  // the GLU kernel's value: act(gate) * up, in fp32
            p.seg[0].out[int64_t(r) * seg.n_out + local] = glu_activate(gate[r], p.glu_act) * v;
          }
        }
      }
    }
  }
}

// ---- launchers ----------------------------------------------------------------------------------------------

namespace {

// One wave: as many blocks as fit on the GPU at once (occupancy cached per instance), fewer for small matrices.
template <int NR, int CHUNK, int MIN_BLOCKS, bool NORM, bool GLU>
void launch_rows(const GemvParams& p, int64_t total, cudaStream_t stream) {
  static int resident[64] = {};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  int& per_sm = resident[device & 63];
  const size_t smem = NORM ? size_t(NR) * size_t(p.n_in) * sizeof(uint16_t) : 0;
  if (per_sm == 0) {  // occupancy at the largest shared-memory size allowed (kGemvMaxNormInputs)
    auto kernel = kernel_gemv<NR, CHUNK, MIN_BLOCKS, NORM, GLU>;
    const int max_smem = NORM ? int(NR * kGemvMaxNormInputs * sizeof(uint16_t)) : 0;
    if (NORM) CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, max_smem));
    CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kGemvWarps * 32, size_t(max_smem)));
    per_sm = std::max(per_sm, 1);
  }
  const int64_t blocks = std::min<int64_t>((total + kGemvWarps - 1) / kGemvWarps, int64_t(cuda_sm_count()) * per_sm);
  kernel_gemv<NR, CHUNK, MIN_BLOCKS, NORM, GLU><<<unsigned(blocks), kGemvWarps * 32, smem, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

template <int NR>
void launch_rows(const GemvParams& p, int64_t total, cudaStream_t stream) {
  const bool norm = p.norm_w != nullptr;
  if (norm && p.glu) {
    launch_rows<NR, 16, 2, true, true>(p, total, stream);
  } else if (norm) {
    launch_rows<NR, 16, 2, true, false>(p, total, stream);
  } else if (p.glu) {
    launch_rows<NR, 16, 2, false, true>(p, total, stream);
  } else {
    launch_rows<NR, 16, 2, false, false>(p, total, stream);
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
