// Decode attention, first correct version: split-KV flash decoding. A block owns one (query row, kv head, chunk of
// up to kDecodeMaxGroup query heads, key split); its 4 warps take keys round-robin, each key's K and V row read once
// for all the query heads of the group, with an online softmax per warp; the warps then merge in shared memory and
// write an unnormalised partial (o, max, sumexp) that kernel_attention_decode_merge combines exactly.
// Any query row works (not only the last position), so the same kernel also checks against prefill shapes.
#include <cfloat>

#include <cuda_bf16.h>

#include "kernels/attention.h"
#include "kernels/cuda_check.h"

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------

namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxPairsPerLane = kAttentionMaxHeadDim / 64;  // bf16 pairs per lane: head_dim = 64 * this at most

}  // namespace

template <int G>
__global__ void __launch_bounds__(kThreads) kernel_attention_decode(DecodeParams p) {
  const AttentionCommon& a = p.a;
  __shared__ float sQ[G][kAttentionMaxHeadDim];
  __shared__ float sWarpO[kWarps][G][kAttentionMaxHeadDim];
  __shared__ float sWarpM[kWarps][G], sWarpL[kWarps][G];

  const int32_t D = a.head_dim, n_pairs = D / 2;
  const int32_t group = a.n_heads / a.n_kv_heads;
  const int32_t n_chunks = (group + G - 1) / G;
  const int32_t chunk = int32_t(blockIdx.x % unsigned(n_chunks));
  const int32_t kvh = int32_t((blockIdx.x / unsigned(n_chunks)) % unsigned(a.n_kv_heads));
  const int32_t r = int32_t(blockIdx.x / unsigned(n_chunks * a.n_kv_heads));
  const int32_t split = blockIdx.y;
  const int32_t h0 = kvh * group + chunk * G;
  const int32_t g_count = min(G, group - chunk * G);
  const int32_t tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  const int32_t begin = a.row_begin[r] + split * p.split_len;
  const int32_t end = min(a.row_end[r], begin + p.split_len);
  const int32_t* pages = a.page_indices + a.page_indptr[a.row_seq[r]];

  for (int32_t e = tid; e < G * D; e += kThreads) {
    const int32_t g = e / D, d = e % D;
    sQ[g][d] = g < g_count ? a.q[(int64_t(r) * a.n_heads + h0 + g) * D + d] : 0.f;
  }
  __syncthreads();

  float m[G], l[G];
  float2 acc[G][kMaxPairsPerLane];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int i = 0; i < kMaxPairsPerLane; ++i) acc[g][i] = make_float2(0.f, 0.f);
  }

  for (int32_t j = begin + warp; j < end; j += kWarps) {
    const int64_t slot = int64_t(pages[j / a.page_size]) * a.page_size + j % a.page_size;
    const int64_t base = (slot * a.n_kv_heads + kvh) * D;
    float2 kf[kMaxPairsPerLane], vf[kMaxPairsPerLane];
#pragma unroll
    for (int i = 0; i < kMaxPairsPerLane; ++i) {
      const int32_t pi = lane + 32 * i;
      kf[i] = vf[i] = make_float2(0.f, 0.f);
      if (pi < n_pairs) {
        kf[i] = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(a.k_pool + base + 2 * pi));
        vf[i] = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(a.v_pool + base + 2 * pi));
      }
    }
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float dot = 0.f;
#pragma unroll
      for (int i = 0; i < kMaxPairsPerLane; ++i) {
        const int32_t pi = lane + 32 * i;
        if (pi < n_pairs) dot += sQ[g][2 * pi] * kf[i].x + sQ[g][2 * pi + 1] * kf[i].y;
      }
      for (int off = 16; off > 0; off >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, off);
      float s = dot * a.scale;
      if (a.softcap > 0.f) s = a.softcap * tanhf(s / a.softcap);
      const float m_new = fmaxf(m[g], s);
      const float alpha = m[g] == -INFINITY ? 0.f : expf(m[g] - m_new);
      const float pr = expf(s - m_new);
      l[g] = l[g] * alpha + pr;
      m[g] = m_new;
#pragma unroll
      for (int i = 0; i < kMaxPairsPerLane; ++i) {
        acc[g][i].x = acc[g][i].x * alpha + pr * vf[i].x;
        acc[g][i].y = acc[g][i].y * alpha + pr * vf[i].y;
      }
    }
  }

#pragma unroll
  for (int g = 0; g < G; ++g) {
    if (lane == 0) {
      sWarpM[warp][g] = m[g];
      sWarpL[warp][g] = l[g];
    }
#pragma unroll
    for (int i = 0; i < kMaxPairsPerLane; ++i) {
      const int32_t pi = lane + 32 * i;
      if (pi < n_pairs) {
        sWarpO[warp][g][2 * pi] = acc[g][i].x;
        sWarpO[warp][g][2 * pi + 1] = acc[g][i].y;
      }
    }
  }
  __syncthreads();

  // Merge the warps: o = Σ_w e^(m_w - M) o_w, l = Σ_w e^(m_w - M) l_w, M = max_w m_w. Empty warps have m = -inf.
  for (int32_t e = tid; e < g_count * D; e += kThreads) {
    const int32_t g = e / D, d = e % D;
    float mx = -INFINITY;
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, sWarpM[w][g]);
    float o = 0.f, sum = 0.f;
    if (mx != -INFINITY) {
      for (int w = 0; w < kWarps; ++w) {
        const float mw = sWarpM[w][g];
        const float wt = mw == -INFINITY ? 0.f : expf(mw - mx);
        o += wt * sWarpO[w][g][d];
        sum += wt * sWarpL[w][g];
      }
    }
    const int64_t part = (int64_t(r) * a.n_heads + h0 + g) * p.n_splits + split;
    p.part_o[part * D + d] = o;
    if (d == 0) {
      p.part_ml[2 * part] = mx;
      p.part_ml[2 * part + 1] = sum;
    }
  }
}

// One block per (row, head): combines the n_splits partials and normalises.
__global__ void kernel_attention_decode_merge(DecodeParams p) {
  const AttentionCommon& a = p.a;
  const int64_t rh = blockIdx.x;  // row * n_heads + head
  const float* ml = p.part_ml + rh * p.n_splits * 2;
  float mx = -INFINITY;
  for (int32_t c = 0; c < p.n_splits; ++c) mx = fmaxf(mx, ml[2 * c]);
  float denom = 0.f;
  if (mx != -INFINITY) {
    for (int32_t c = 0; c < p.n_splits; ++c) {
      if (ml[2 * c] != -INFINITY) denom += expf(ml[2 * c] - mx) * ml[2 * c + 1];
    }
  }
  const float* po = p.part_o + rh * p.n_splits * a.head_dim;
  float* out = a.out + rh * a.head_dim;
  for (int32_t d = threadIdx.x; d < a.head_dim; d += blockDim.x) {
    float o = 0.f;
    if (denom > 0.f) {
      for (int32_t c = 0; c < p.n_splits; ++c) {
        if (ml[2 * c] != -INFINITY) o += expf(ml[2 * c] - mx) * po[int64_t(c) * a.head_dim + d];
      }
      o /= denom;
    }
    out[d] = o;
  }
}

// ---- launchers ----------------------------------------------------------------------------------------------

namespace {

template <int G>
void launch_decode_group(const DecodeParams& p, cudaStream_t stream) {
  const int32_t group = p.a.n_heads / p.a.n_kv_heads;
  const int64_t blocks = int64_t(p.a.n_rows) * p.a.n_kv_heads * ((group + G - 1) / G);
  const dim3 grid(unsigned(blocks), unsigned(p.n_splits));
  kernel_attention_decode<G><<<grid, kThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_attention_decode(const DecodeParams& p, cudaStream_t stream) {
  if (p.a.n_rows == 0) return;
  const int32_t group = p.a.n_heads / p.a.n_kv_heads;
  if (group <= 1) {
    launch_decode_group<1>(p, stream);
  } else if (group <= 2) {
    launch_decode_group<2>(p, stream);
  } else if (group <= 4) {
    launch_decode_group<4>(p, stream);
  } else {
    launch_decode_group<kDecodeMaxGroup>(p, stream);
  }
  kernel_attention_decode_merge<<<unsigned(int64_t(p.a.n_rows) * p.a.n_heads), 128, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lcllm
