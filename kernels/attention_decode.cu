// Decode attention: split-KV flash decoding. A block owns one (query row, kv head, chunk of up to kDecodeMaxGroup
// query heads, key split), each key's K and V row read once for all the query heads of the group, and writes an
// unnormalised partial (o, max, sumexp) that kernel_attention_decode_merge combines exactly.
//   v2 (head_dim 64/128/256): whole keys per lane group with 16-byte loads through a per-thread cp.async ring, one
//      wave of blocks, log2-domain softmax; see the comment above kernel_attention_decode_v2.
//   v1 (any other even head_dim): 4 warps take keys round-robin, one key per warp.
//   The tensor-core kernel (kernels/attention_decode_tc.cu) replaces v2 where plan_attention_decode picks it.
// Any query row works (not only the last position), so the same kernels also check against prefill shapes.
#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cstdlib>

#include <cuda_bf16.h>

#include "kernels/attention.h"
#include "kernels/attention_common.cuh"
#include "kernels/attention_decode_keys.cuh"
#include "kernels/cuda_check.h"
#include "kernels/device_info.h"
#include "kernels/pdl.cuh"

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------

namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxPairsPerLane = kAttentionMaxHeadDim / 64;  // bf16 pairs per lane: head_dim = 64 * this at most

}  // namespace

// T: the stored K/V element (uint16_t bf16, uint8_t fp8 with a scale per key and head).
template <int G, bool kKeySets, class T>
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
  const int32_t ri = int32_t(blockIdx.x / unsigned(n_chunks * a.n_kv_heads));  // row of this launch
  const int32_t r = p.ks.rows != nullptr ? p.ks.rows[ri] : ri;                 // row of q / out
  const int32_t split = blockIdx.y;
  const int32_t h0 = kvh * group + chunk * G;
  const int32_t g_count = min(G, group - chunk * G);
  const int32_t tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  const BlockKeys keys = block_keys<kKeySets>(p, r, kvh);
  const int32_t begin = split * p.split_len;  // logical key indices of this split
  const int32_t end = min(keys.n, begin + p.split_len);
  const KvHeadSourceT<T> src = kv_head_source<T>(a, a.row_seq[r], kvh);
  float* store = score_store<kKeySets>(p, r, kvh, h0);  // [g_count, span] of a selecting item, else null
  const int64_t span = a.row_end[r] - a.row_begin[r];

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
    const int32_t pos = kKeySets ? keys.position(j) : keys.lo + j;
    const int64_t slot = src.slot(pos), base = slot * src.slot_stride;
    float ksc = 1.f, vsc = 1.f;  // fp8: the key's scales (exact powers of two)
    if constexpr (sizeof(T) == 1) {
      const uint32_t w = src.scale[slot * src.scale_stride];
      ksc = fp8_scale_of(w & 0xffu);
      vsc = fp8_scale_of(w >> 8);
    }
    float2 kf[kMaxPairsPerLane], vf[kMaxPairsPerLane];
#pragma unroll
    for (int i = 0; i < kMaxPairsPerLane; ++i) {
      const int32_t pi = lane + 32 * i;
      kf[i] = vf[i] = make_float2(0.f, 0.f);
      if (pi < n_pairs) {
        kf[i] = kv_pair_to_f2(src.k + base + 2 * pi);
        vf[i] = kv_pair_to_f2(src.v + base + 2 * pi);
        kf[i].x *= ksc, kf[i].y *= ksc, vf[i].x *= vsc, vf[i].y *= vsc;
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
      if (store != nullptr && lane == 0 && g < g_count) store[g * span + j] = s * kLog2e;
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
    const int64_t part = (int64_t(ri) * a.n_heads + h0 + g) * p.n_splits + split;
    p.part_o[part * D + d] = o;
    if (d == 0) {
      p.part_ml[2 * part] = mx * kLog2e;  // the merge works in log2 units (v2 kernel's native form)
      p.part_ml[2 * part + 1] = sum;
    }
  }
}

// ---- version 2 -----------------------------------------------------------------------------------------------
// Block = (query row, kv head, chunk of up to G query heads, key split), 4 warps. A key's K (and V) row of D bf16
// is read as D/8 16-byte pieces by TPK = D/8 consecutive lanes, so a warp owns KPW = 32/TPK whole keys per step and
// each lane keeps 8 dims of q (per head), of the output accumulator and of the loaded K/V. U steps are loaded
// before any math (U * 2 * 16 B in flight per lane), the dot products are reduced over the TPK lanes with shuffles,
// and the online softmax rescales once per U steps (log2 domain). At the end the KPW key slots of a warp merge by
// shuffles, the 4 warps through shared memory, and the block writes an unnormalised partial for the merge kernel.

// Four resident blocks per SM for groups up to 4 (the one-wave split plan counts on it, for ranges and key sets
// alike: the key-set walk would otherwise take ~25 more registers and drop to three); two for group 8.
// kMode: 0 rows walk [row_begin, row_end); 1 key sets; 2 key sets, and selecting items store their scores (a
// SELECT layer; the store code stays out of the other instances' registers).
// T = uint8_t: an fp8 cache (kv/kv_quant.h). A lane then copies 8 bytes of K and of V per key (its 8 dims) and the
// 4-byte word holding the key's scale pair; the dot product is scaled once after the lane reduction and V's scale
// folds into the softmax weight, so the inner loop gains one multiply per key and 16-bit conversions.
template <int D, int G, int U, int S, int kMode, class T>
__global__ void __launch_bounds__(kThreads, G <= 4 ? 4 : 2) kernel_attention_decode_v2(DecodeParams p) {
  constexpr bool kKeySets = kMode >= 1;
  constexpr bool kFp8 = sizeof(T) == 1;
  static_assert(S * U <= 32, "one parity bit per ring entry");
  constexpr int TPK = D / 8, KPW = 32 / TPK, STEP = kWarps * KPW * U;
  static_assert(TPK <= 32 && 32 % TPK == 0, "head_dim must be 64, 128 or 256");
  const AttentionCommon& a = p.a;
  __shared__ float sM[kWarps][G], sL[kWarps][G];

  const int32_t group = a.n_heads / a.n_kv_heads;
  const int32_t n_chunks = (group + G - 1) / G;
  const int32_t chunk = int32_t(blockIdx.x % unsigned(n_chunks));
  const int32_t kvh = int32_t((blockIdx.x / unsigned(n_chunks)) % unsigned(a.n_kv_heads));
  const int32_t ri = int32_t(blockIdx.x / unsigned(n_chunks * a.n_kv_heads));  // row of this launch
  const int32_t r = p.ks.rows != nullptr ? p.ks.rows[ri] : ri;                 // row of q / out
  const int32_t split = blockIdx.y;
  const int32_t h0 = kvh * group + chunk * G;
  const int32_t g_count = min(G, group - chunk * G);
  const int32_t lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int32_t t = lane % TPK, ks = lane / TPK;

  // Let the merge grid launch as soon as every split block runs (it waits for this grid's completion itself).
  pdl_release();
  const BlockKeys keys = block_keys<kKeySets>(p, r, kvh);
  const int32_t begin = split * p.split_len;  // logical key indices of this split
  const int32_t end = min(keys.n, begin + p.split_len);
  const KvHeadSourceT<T> src = kv_head_source<T>(a, a.row_seq[r], kvh);
  float* store = kMode == 2 ? score_store<true>(p, r, kvh, h0) : nullptr;  // [g_count, span] or null
  const int64_t span = a.row_end[r] - a.row_begin[r];
  const bool capped = a.softcap > 0.f;
  // Without a softcap the scale and log2(e) fold into q; with one, tanh needs the plain scaled score.
  const float qmul = capped ? a.scale : a.scale * kLog2e;

  float q[G][8];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    if (g < g_count) {
      const float4* src = reinterpret_cast<const float4*>(a.q + (int64_t(r) * a.n_heads + h0 + g) * D + 8 * t);
      const float4 x0 = src[0], x1 = src[1];
      q[g][0] = x0.x * qmul; q[g][1] = x0.y * qmul; q[g][2] = x0.z * qmul; q[g][3] = x0.w * qmul;
      q[g][4] = x1.x * qmul; q[g][5] = x1.y * qmul; q[g][6] = x1.z * qmul; q[g][7] = x1.w * qmul;
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i) q[g][i] = 0.f;
    }
  }
  float m[G], l[G], acc[G][8];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[g][i] = 0.f;
  }

  // Per-thread cp.async ring of S stages: each lane copies its own 16-byte pieces of U keys' K and V rows and later
  // reads back exactly those, so no barrier is needed; S - 1 stages (S-1 x U x 32 B per lane) stay in flight.
  // fp8: K's entry holds 8 bytes of K then the 4-byte word with the scale pair, V's 8 bytes of V.
  extern __shared__ uint4 sRing[];  // [S][U][2][kThreads], consecutive lanes -> consecutive 16 B
  uint32_t parity = 0;  // fp8: bit stage * U + u set when that entry's scale pair is its word's upper half
  auto issue = [&](int stage, int32_t j0) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int32_t j = j0 + (u * kWarps + warp) * KPW + ks;
      const bool ok = j < end;
      int64_t kv_slot = 0;
      if (ok) kv_slot = src.slot(kKeySets ? keys.position(j) : keys.lo + j);
      const int64_t off = kv_slot * src.slot_stride + 8 * t;
      uint4* slot = sRing + ((stage * U + u) * 2) * kThreads + threadIdx.x;
      if constexpr (kFp8) {
        const uintptr_t sp = reinterpret_cast<uintptr_t>(src.scale + kv_slot * src.scale_stride);
        const int bit = stage * U + u;
        parity = (parity & ~(1u << bit)) | (uint32_t((sp >> 1) & 1) << bit);
        cp_async_8(smem_u32(slot), src.k + off, ok ? 8 : 0);
        cp_async_4(smem_u32(slot) + 8, reinterpret_cast<const void*>(sp & ~uintptr_t(3)), ok ? 4 : 0);
        cp_async_8(smem_u32(slot + kThreads), src.v + off, ok ? 8 : 0);
      } else {
        cp_async_16(smem_u32(slot), src.k + off, ok ? 16 : 0);
        cp_async_16(smem_u32(slot + kThreads), src.v + off, ok ? 16 : 0);
      }
    }
  };
#pragma unroll
  for (int st = 0; st < S - 1; ++st) {
    issue(st, begin + st * STEP);
    cp_async_commit();
  }
  int stage = 0;
  for (int32_t j0 = begin; j0 < end; j0 += STEP) {
    issue((stage + S - 1) % S, j0 + (S - 1) * STEP);
    cp_async_commit();
    cp_async_wait<S - 1>();
    const uint4* ring = sRing + (stage * U * 2) * kThreads + threadIdx.x;
    const int ring_bit0 = stage * U;
    stage = (stage + 1) % S;
    float s[U][G];
    float vsc[U];  // fp8: each key's V scale (1 for bf16)
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int32_t j = j0 + (u * kWarps + warp) * KPW + ks;
      const uint4 kr = ring[(u * 2) * kThreads];
      float2 k0, k1, k2, k3;
      float ksc = 1.f;
      if constexpr (kFp8) {
        k0 = fp8x2_to_f2(uint16_t(kr.x)), k1 = fp8x2_to_f2(uint16_t(kr.x >> 16));
        k2 = fp8x2_to_f2(uint16_t(kr.y)), k3 = fp8x2_to_f2(uint16_t(kr.y >> 16));
        const uint32_t w = ((parity >> (ring_bit0 + u)) & 1u) ? (kr.z >> 16) : (kr.z & 0xffffu);
        ksc = fp8_scale_of(w & 0xffu);
        vsc[u] = fp8_scale_of(w >> 8);
      } else {
        k0 = bf2_to_f2(kr.x), k1 = bf2_to_f2(kr.y), k2 = bf2_to_f2(kr.z), k3 = bf2_to_f2(kr.w);
        vsc[u] = 1.f;
      }
#pragma unroll
      for (int g = 0; g < G; ++g) {
        float d = q[g][0] * k0.x;
        d = fmaf(q[g][1], k0.y, d);
        d = fmaf(q[g][2], k1.x, d);
        d = fmaf(q[g][3], k1.y, d);
        d = fmaf(q[g][4], k2.x, d);
        d = fmaf(q[g][5], k2.y, d);
        d = fmaf(q[g][6], k3.x, d);
        d = fmaf(q[g][7], k3.y, d);
#pragma unroll
        for (int off = TPK / 2; off > 0; off >>= 1) d += __shfl_xor_sync(0xffffffffu, d, off);
        if constexpr (kFp8) d *= ksc;
        if (capped) d = a.softcap * tanhf(d / a.softcap) * kLog2e;
        s[u][g] = j < end ? d : -INFINITY;
        if (store != nullptr && t == 0 && j < end && g < g_count) store[g * span + j] = d;
      }
    }
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float mx = m[g];
#pragma unroll
      for (int u = 0; u < U; ++u) mx = fmaxf(mx, s[u][g]);
      const float alpha = m[g] == -INFINITY ? 0.f : exp2f(m[g] - mx);
      m[g] = mx;
      l[g] *= alpha;
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[g][i] *= alpha;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const float pr = s[u][g] == -INFINITY ? 0.f : exp2f(s[u][g] - mx);
        s[u][g] = pr;
        l[g] += pr;
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const uint4 vr = ring[(u * 2 + 1) * kThreads];
      float2 v0, v1, v2, v3;
      if constexpr (kFp8) {
        v0 = fp8x2_to_f2(uint16_t(vr.x)), v1 = fp8x2_to_f2(uint16_t(vr.x >> 16));
        v2 = fp8x2_to_f2(uint16_t(vr.y)), v3 = fp8x2_to_f2(uint16_t(vr.y >> 16));
      } else {
        v0 = bf2_to_f2(vr.x), v1 = bf2_to_f2(vr.y), v2 = bf2_to_f2(vr.z), v3 = bf2_to_f2(vr.w);
      }
#pragma unroll
      for (int g = 0; g < G; ++g) {
        const float pr = kFp8 ? s[u][g] * vsc[u] : s[u][g];
        acc[g][0] = fmaf(pr, v0.x, acc[g][0]);
        acc[g][1] = fmaf(pr, v0.y, acc[g][1]);
        acc[g][2] = fmaf(pr, v1.x, acc[g][2]);
        acc[g][3] = fmaf(pr, v1.y, acc[g][3]);
        acc[g][4] = fmaf(pr, v2.x, acc[g][4]);
        acc[g][5] = fmaf(pr, v2.y, acc[g][5]);
        acc[g][6] = fmaf(pr, v3.x, acc[g][6]);
        acc[g][7] = fmaf(pr, v3.y, acc[g][7]);
      }
    }
  }
  cp_async_wait<0>();  // the ring's last (zero-filled) stages land before its memory is reused
  __syncthreads();
  static_assert(sizeof(float) * kWarps * G * D <= size_t(S) * U * 2 * kThreads * 16, "sO fits in the ring");
  float(*sO)[G][D] = reinterpret_cast<float(*)[G][D]>(sRing);

  // Merge the KPW key slots of the warp (lanes t + TPK * ks hold the same dims).
#pragma unroll
  for (int off = TPK; off < 32; off <<= 1) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const float mo = __shfl_xor_sync(0xffffffffu, m[g], off);
      const float lo = __shfl_xor_sync(0xffffffffu, l[g], off);
      const float mx = fmaxf(m[g], mo);
      const float a1 = m[g] == -INFINITY ? 0.f : exp2f(m[g] - mx);
      const float a2 = mo == -INFINITY ? 0.f : exp2f(mo - mx);
      l[g] = l[g] * a1 + lo * a2;
      m[g] = mx;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float ao = __shfl_xor_sync(0xffffffffu, acc[g][i], off);
        acc[g][i] = acc[g][i] * a1 + ao * a2;
      }
    }
  }
  if (ks == 0) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float4* dst = reinterpret_cast<float4*>(&sO[warp][g][8 * t]);
      dst[0] = make_float4(acc[g][0], acc[g][1], acc[g][2], acc[g][3]);
      dst[1] = make_float4(acc[g][4], acc[g][5], acc[g][6], acc[g][7]);
      if (t == 0) {
        sM[warp][g] = m[g];
        sL[warp][g] = l[g];
      }
    }
  }
  __syncthreads();
  for (int32_t e = threadIdx.x; e < g_count * D; e += kThreads) {
    const int32_t g = e / D, d = e % D;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, sM[w][g]);
    float o = 0.f, sum = 0.f;
    if (mx != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float mw = sM[w][g];
        const float wt = mw == -INFINITY ? 0.f : exp2f(mw - mx);
        o += wt * sO[w][g][d];
        sum += wt * sL[w][g];
      }
    }
    const int64_t part = (int64_t(ri) * a.n_heads + h0 + g) * p.n_splits + split;
    p.part_o[part * D + d] = o;
    if (d == 0) {
      p.part_ml[2 * part] = mx;
      p.part_ml[2 * part + 1] = sum;
    }
  }
}

// One block per (row, head). Thread (group c0, dims 4*d4..4*d4+3) folds splits c0, c0 + n_groups, ... into its own
// (max, sum, o) with one round of independent loads (partials' max/sum and float4 o), then the groups merge in
// shared memory. Launched with programmatic dependent launch: it may start while the split kernel drains and
// waits (griddepcontrol.wait) before reading the partials. head_dim % 4 != 0 takes a plain per-dim loop.
constexpr int kMergeThreads = 256;
inline size_t merge_smem_bytes(int32_t n_splits) {
  return std::max<size_t>(size_t(kMergeThreads) * 6 * sizeof(float), size_t(n_splits) * sizeof(float));
}
__global__ void __launch_bounds__(kMergeThreads) kernel_attention_decode_merge(DecodeParams p) {
  pdl_wait();
  extern __shared__ float sMerge[];
  const AttentionCommon& a = p.a;
  const int64_t rh = blockIdx.x;  // launch row * n_heads + head: the partials' index
  const int32_t ns = p.n_splits, tid = threadIdx.x, D = a.head_dim;
  const float* ml = p.part_ml + rh * ns * 2;
  const float* po = p.part_o + rh * ns * D;
  const int64_t ri = rh / a.n_heads, head = rh % a.n_heads;
  const int64_t out_rh = (p.ks.rows != nullptr ? int64_t(p.ks.rows[ri]) : ri) * a.n_heads + head;  // q / out index
  float* out = a.out + out_rh * D;

  if (D % 4 == 0 && D <= 4 * kMergeThreads) {
    const int32_t n_d4 = D / 4, n_groups = kMergeThreads / n_d4;
    const int32_t d4 = tid % n_d4, c0 = tid / n_d4;
    float m = -INFINITY, l = 0.f;
    float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
    if (c0 < n_groups) {
#pragma unroll 4
      for (int32_t c = c0; c < ns; c += n_groups) {
        const float mc = ml[2 * c], lc = ml[2 * c + 1];
        const float4 x = *reinterpret_cast<const float4*>(po + int64_t(c) * D + 4 * d4);
        const float mn = fmaxf(m, mc);
        const float a_old = m == -INFINITY ? 0.f : exp2f(m - mn);
        const float w = mc == -INFINITY ? 0.f : exp2f(mc - mn);
        o.x = o.x * a_old + w * x.x;
        o.y = o.y * a_old + w * x.y;
        o.z = o.z * a_old + w * x.z;
        o.w = o.w * a_old + w * x.w;
        l = l * a_old + w * lc;
        m = mn;
      }
    }
    float4* sO = reinterpret_cast<float4*>(sMerge);  // [kMergeThreads]
    float* sM = sMerge + 4 * kMergeThreads;           // [kMergeThreads]
    float* sL = sM + kMergeThreads;                   // [kMergeThreads]
    sO[tid] = o;
    sM[tid] = m;
    sL[tid] = l;
    __syncthreads();
    if (tid < n_d4) {
      float mx = -INFINITY;
      for (int32_t gi = 0; gi < n_groups; ++gi) mx = fmaxf(mx, sM[gi * n_d4 + tid]);
      float4 sum = make_float4(0.f, 0.f, 0.f, 0.f);
      float den = 0.f;
      if (mx != -INFINITY) {
        for (int32_t gi = 0; gi < n_groups; ++gi) {
          const int32_t k = gi * n_d4 + tid;
          const float w = sM[k] == -INFINITY ? 0.f : exp2f(sM[k] - mx);
          const float4 x = sO[k];
          sum.x += w * x.x;
          sum.y += w * x.y;
          sum.z += w * x.z;
          sum.w += w * x.w;
          den += w * sL[k];
        }
      }
      const float inv = den > 0.f ? 1.f / den : 0.f;
      *reinterpret_cast<float4*>(out + 4 * tid) = make_float4(sum.x * inv, sum.y * inv, sum.z * inv, sum.w * inv);
      if (tid == 0 && p.ks.lse2 != nullptr) p.ks.lse2[out_rh] = den > 0.f ? mx + log2f(den) : -INFINITY;
    }
    return;
  }

  // Generic head_dim: weights into shared memory (two block reductions), then one thread per output dim.
  __shared__ float sRed[kMergeThreads / 32];
  const int32_t lane = tid & 31, warp = tid >> 5;
  float* sW = sMerge;  // [ns]
  float mx = -INFINITY;
  for (int32_t c = tid; c < ns; c += kMergeThreads) mx = fmaxf(mx, ml[2 * c]);
  for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
  if (lane == 0) sRed[warp] = mx;
  __syncthreads();
  mx = -INFINITY;
  for (int w = 0; w < kMergeThreads / 32; ++w) mx = fmaxf(mx, sRed[w]);
  __syncthreads();
  float den = 0.f;
  for (int32_t c = tid; c < ns; c += kMergeThreads) {
    const float mc = ml[2 * c];
    const float w = (mx == -INFINITY || mc == -INFINITY) ? 0.f : exp2f(mc - mx);
    sW[c] = w;
    den += w * ml[2 * c + 1];
  }
  for (int off = 16; off > 0; off >>= 1) den += __shfl_xor_sync(0xffffffffu, den, off);
  if (lane == 0) sRed[warp] = den;
  __syncthreads();
  den = 0.f;
  for (int w = 0; w < kMergeThreads / 32; ++w) den += sRed[w];
  const float inv = den > 0.f ? 1.f / den : 0.f;
  if (tid == 0 && p.ks.lse2 != nullptr) p.ks.lse2[out_rh] = den > 0.f ? mx + log2f(den) : -INFINITY;
  for (int32_t d = tid; d < D; d += kMergeThreads) {
    float o = 0.f;
    for (int32_t c = 0; c < ns; ++c) o = fmaf(sW[c], po[int64_t(c) * D + d], o);
    out[d] = o * inv;
  }
}

// ---- launchers ----------------------------------------------------------------------------------------------

namespace {

int32_t decode_launch_rows(const DecodeParams& p) { return p.ks.rows != nullptr ? p.ks.n_listed_rows : p.a.n_rows; }

bool kv_is_fp8(const DecodeParams& p) { return p.a.kv.dtype == KvDtype::KV_DTYPE_FP8_E4M3; }

template <int G, class T>
void launch_decode_group_t(const DecodeParams& p, cudaStream_t stream) {
  const int32_t group = p.a.n_heads / p.a.n_kv_heads;
  const int64_t blocks = int64_t(decode_launch_rows(p)) * p.a.n_kv_heads * ((group + G - 1) / G);
  const dim3 grid(unsigned(blocks), unsigned(p.n_splits));
  if (p.ks.sets != nullptr) {
    kernel_attention_decode<G, true, T><<<grid, kThreads, 0, stream>>>(p);
  } else {
    kernel_attention_decode<G, false, T><<<grid, kThreads, 0, stream>>>(p);
  }
  CUDA_CHECK_LAUNCH();
}

template <int G>
void launch_decode_group(const DecodeParams& p, cudaStream_t stream) {
  if (kv_is_fp8(p)) {
    launch_decode_group_t<G, uint8_t>(p, stream);
  } else {
    launch_decode_group_t<G, uint16_t>(p, stream);
  }
}

// Keys per lane per stage (U) and ring stages (S): U * 2 * 16 B per lane per stage, (S - 1) stages in flight.
constexpr int kDecodeU = 4, kDecodeS = 3;
constexpr size_t decode_v2_smem() { return size_t(kDecodeS) * kDecodeU * 2 * kThreads * 16; }  // 48 KB

template <int D, int G, int kMode, class T>
void launch_decode_v2_instance(const DecodeParams& p, cudaStream_t stream, int* occupancy) {
  auto kernel = kernel_attention_decode_v2<D, G, kDecodeU, kDecodeS, kMode, T>;
  static std::atomic<uint64_t> configured{0};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  const uint64_t bit = uint64_t(1) << (device & 63);
  if ((configured.load() & bit) == 0) {
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(decode_v2_smem())));
    configured.fetch_or(bit);
  }
  if (occupancy != nullptr) {
    CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(occupancy, kernel, kThreads, decode_v2_smem()));
    return;
  }
  const int32_t group = p.a.n_heads / p.a.n_kv_heads;
  const int64_t blocks = int64_t(decode_launch_rows(p)) * p.a.n_kv_heads * ((group + G - 1) / G);
  const dim3 grid(unsigned(blocks), unsigned(p.n_splits));
  kernel<<<grid, kThreads, decode_v2_smem(), stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

template <int D, int G, class T>
void launch_decode_v2_group_t(const DecodeParams& p, cudaStream_t stream, int* occupancy) {
  if (p.ks.sets == nullptr) {
    launch_decode_v2_instance<D, G, 0, T>(p, stream, occupancy);
  } else if (p.ks.select_k == nullptr) {
    launch_decode_v2_instance<D, G, 1, T>(p, stream, occupancy);
  } else {
    launch_decode_v2_instance<D, G, 2, T>(p, stream, occupancy);
  }
}

template <int D, int G>
void launch_decode_v2_group(const DecodeParams& p, cudaStream_t stream, int* occupancy) {
  if (kv_is_fp8(p)) {
    launch_decode_v2_group_t<D, G, uint8_t>(p, stream, occupancy);
  } else {
    launch_decode_v2_group_t<D, G, uint16_t>(p, stream, occupancy);
  }
}

// Launches (occupancy == nullptr) or reports the resident blocks per SM of the instance that would run.
template <int D>
void launch_decode_v2(const DecodeParams& p, cudaStream_t stream, int* occupancy = nullptr) {
  const int32_t group = p.a.n_heads / p.a.n_kv_heads;
  if (group <= 1) {
    launch_decode_v2_group<D, 1>(p, stream, occupancy);
  } else if (group <= 2) {
    launch_decode_v2_group<D, 2>(p, stream, occupancy);
  } else if (group <= 4) {
    launch_decode_v2_group<D, 4>(p, stream, occupancy);
  } else {
    launch_decode_v2_group<D, kDecodeMaxGroup>(p, stream, occupancy);
  }
}

int decode_v2_occupancy(int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, KvDtype dtype) {
  // Cached per (device, head_dim, group instance, dtype): the query costs microseconds of host time per call.
  static std::atomic<int> cache[64][3][4][2] = {};
  const bool fp8 = dtype == KvDtype::KV_DTYPE_FP8_E4M3;
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  const int32_t group = n_heads / n_kv_heads;
  const int gi = group <= 1 ? 0 : group <= 2 ? 1 : group <= 4 ? 2 : 3;
  const int di = head_dim == 64 ? 0 : head_dim == 128 ? 1 : 2;
  std::atomic<int>& slot = cache[device & 63][di][gi][fp8 ? 1 : 0];
  if (const int c = slot.load(); c > 0) return c;
  // The smallest of the range, key-set and score-storing instances' occupancies: every mode then plans the same
  // splits, so a key set spelling FULL's keys reproduces dense attention bit for bit.
  int occ = 1 << 30;
  for (const int mode : {0, 1, 2}) {
    DecodeParams p{};
    p.a.n_heads = n_heads;
    p.a.n_kv_heads = n_kv_heads;
    p.a.kv.dtype = dtype;
    int32_t dummy = 0;
    if (mode >= 1) p.ks.sets = &dummy;  // selects the instance; nothing is launched
    if (mode == 2) p.ks.select_k = &dummy;
    int o = 0;
    switch (head_dim) {
      case 64: launch_decode_v2<64>(p, nullptr, &o); break;
      case 128: launch_decode_v2<128>(p, nullptr, &o); break;
      default: launch_decode_v2<256>(p, nullptr, &o); break;
    }
    occ = std::min(occ, o);
  }
  slot.store(std::max(occ, 1));
  return std::max(occ, 1);
}

bool decode_v2_applies(int32_t head_dim) { return head_dim == 64 || head_dim == 128 || head_dim == 256; }


}  // namespace

DecodePlan plan_attention_decode(int32_t n_rows, int32_t n_heads, int32_t n_kv_heads, int32_t head_dim,
                                 int32_t max_span, int32_t work_span, KvDtype dtype, bool stores_scores) {
  const bool tc = attention_decode_tc_applies(n_heads, n_kv_heads, head_dim, dtype, stores_scores);
  constexpr int32_t kMaxSplits = 4096;
  const int32_t group = n_heads / n_kv_heads;
  const int64_t base_blocks = int64_t(n_rows) * n_kv_heads * ((group + kDecodeMaxGroup - 1) / kDecodeMaxGroup);
  const bool v2 = decode_v2_applies(head_dim);
  // v2: exactly one wave of resident blocks (every block streams one long split, all end together; a partial
  // second wave would idle most SMs at the end), splits a multiple of 64 keys (the kernel's step is 32 keys at
  // most); v1: 4 blocks per SM, at least 256 keys each.
  // Each kernel is planned at its own occupancy (a SELECT layer's v2 launch at v2's four blocks per SM, not at the
  // tensor-core kernel's two).
  const int64_t target = int64_t(cuda_sm_count()) *
                         (tc ? attention_decode_tc_occupancy(n_heads, n_kv_heads, head_dim, dtype)
                             : v2 ? decode_v2_occupancy(n_heads, n_kv_heads, head_dim, dtype) : 4);
  // 64-key splits at least: a streaming head's ~320 keys or a 2048-key selection spread over several blocks, whose
  // latency (page lookups, the first loads) then overlaps; long rows get far longer splits anyway.
  const int32_t min_len = 64, align = v2 ? 64 : 1;
  const int64_t want = std::max<int64_t>(1, target / std::max<int64_t>(base_blocks, 1));
  work_span = work_span <= 0 ? max_span : std::clamp(work_span, 1, std::max(max_span, 1));
  int64_t len = std::max<int64_t>(min_len, (int64_t(work_span) + want - 1) / want);
  if (v2) {  // round up to the alignment, then check the rounding did not leave a near-empty extra split
    len = (len + align - 1) / align * align;
    while (len > min_len && (int64_t(work_span) + len - 1) / len > want) len += align;
  }
  len = (len + align - 1) / align * align;
  int64_t n = std::max<int64_t>(1, (int64_t(max_span) + len - 1) / len);
  if (n > kMaxSplits) {
    len = (int64_t(max_span) + kMaxSplits - 1) / kMaxSplits;
    len = (len + align - 1) / align * align;
    n = (int64_t(max_span) + len - 1) / len;
  }
  return DecodePlan{int32_t(n), int32_t(len), tc};
}

void launch_attention_decode(const DecodeParams& p, cudaStream_t stream) {
  if (decode_launch_rows(p) == 0) return;
  const int32_t group = p.a.n_heads / p.a.n_kv_heads;
  if (p.tensor_cores) {
    launch_attention_decode_tc(p, stream);
  } else if (decode_v2_applies(p.a.head_dim)) {
    switch (p.a.head_dim) {
      case 64: launch_decode_v2<64>(p, stream); break;
      case 128: launch_decode_v2<128>(p, stream); break;
      default: launch_decode_v2<256>(p, stream); break;
    }
  } else if (group <= 1) {
    launch_decode_group<1>(p, stream);
  } else if (group <= 2) {
    launch_decode_group<2>(p, stream);
  } else if (group <= 4) {
    launch_decode_group<4>(p, stream);
  } else {
    launch_decode_group<kDecodeMaxGroup>(p, stream);
  }
  // The merge grid is set up while the split kernel drains.
  launch_dependent(kernel_attention_decode_merge, dim3(unsigned(int64_t(decode_launch_rows(p)) * p.a.n_heads)),
                   dim3(kMergeThreads), merge_smem_bytes(p.n_splits), stream, p);
}

}  // namespace lcllm
