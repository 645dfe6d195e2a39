// HiP mask estimation (see attention_hip.h for the rule). One cluster of 256-thread CTAs per request: one CTA for
// prefill's many requests; up to 16 for decode's few (one per sequence and KV head), which split each round's
// candidates and exchange their sort keys and ranks through distributed shared memory (HipPrefillShape,
// HipDecodeShape):
//   - pieces live in shared memory: the kept ones [keep] and the candidates at fixed slots 2i, 2i + 1 (the halves of
//     kept piece i; an unsplit piece keeps slot 2i and leaves 2i + 1 empty);
//   - a warp scores 4 candidates at a time (prefill: centre keys) or descends 2 (decode), two levels per dependent
//     load (the halves' centres and the quarters' centres, 6 keys): its lanes hold the keys' K rows in registers as
//     MMA B fragments and multiply the request's query vectors by them on the tensor cores (hip_scores); a key's
//     score is the largest scaled dot;
//   - the top keep candidates are the ones with the largest 64-bit keys: the score's order-preserving bits above
//     (0xffffffff - first block) below, so equal scores go to the lower block, as the CPU's stable sort; a cluster
//     ranks them (each CTA its own candidates against all keys), one CTA bitonic-sorts them;
//   - the final blocks are written ascending (rank = how many kept blocks are smaller).
// Cost: each round scores 2 keep candidates, each with about 2 log2(piece keys) keys of (rows x group) dots of
// head_dim; rounds = log2(blocks / keep). Decode is latency-bound: a round's critical path is one dependent K-row
// load per two descent levels, so the rounds' levels (not the bytes) set its time (docs/KERNEL_NOTES.md, HiP).
#include "kernels/attention_hip.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <tuple>
#include <utility>

#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include "kernels/attention_common.cuh"
#include "kernels/cuda_check.h"
#include "kernels/device_info.h"

namespace lcllm {

namespace cg = cooperative_groups;

namespace {

// The search's two shapes. Prefill: many requests of one CTA each, centre keys (one level): a warp scores 4
// candidates. Decode: a few requests of a cluster each, descents of log2(piece keys) levels, each level one dependent
// K-row load: a warp descends 2 candidates two levels per load (their 2 children's and 4 grandchildren's centres: 12
// K rows in flight). Both 256 threads of at most 128 registers, two CTAs per SM, so that a cluster of 16 needs 8 SMs
// of a GPC: with 512 threads (one CTA per SM) an H100 held only 7 clusters of 16 at once and a decode step's 8
// requests ran in two waves (bench/results/hip_gpu_h100_2026-12-05_profile/).
// kStageQ: centre-key requests stage their query rows' A fragments in shared memory once (hip_centre_scores).
struct HipPrefillShape {
  static constexpr int kThreads = 256, kCand = 4, kLook = 1, kMinBlocks = 2;
  static constexpr bool kStageQ = true;
};
struct HipDecodeShape {
  static constexpr int kThreads = 256, kCand = 2, kLook = 2, kMinBlocks = 2;
  static constexpr bool kStageQ = false;
};
// The register class of a head_dim: kPairs = head_dim / 64 rounded up to 2 or 4 (head_dim <= 64 kPairs), so that
// head_dim <= 128 holds half the K fragments of 256 (hip_scores: 4 kPairs k-steps of 16 dims).
constexpr int kMaxPairsPerLane = kAttentionMaxHeadDim / 64;

__host__ __device__ inline int32_t pow2_at_least(int32_t n) {
  int32_t p = 2;
  while (p < n) p *= 2;
  return p;
}

// Bytes of a block's sort buffers for masks of up to max_keep blocks: sort keys and slots [n_sort], candidate
// pieces [n_sort], kept pieces [keep]; the staged query fragments start at the next 16 bytes.
__host__ __device__ inline size_t hip_sort_smem_bytes(int32_t max_keep) {
  const size_t n_sort = size_t(pow2_at_least(2 * max_keep));
  return n_sort * (sizeof(uint64_t) + sizeof(int32_t) + 2 * sizeof(int32_t)) + size_t(max_keep) * 2 * sizeof(int32_t);
}
__host__ __device__ inline size_t hip_query_stage_offset(int32_t max_keep) {
  return (hip_sort_smem_bytes(max_keep) + 15) & ~size_t(15);
}

// Larger float -> larger unsigned (the usual sign flip); -inf sorts below every finite score.
__device__ __forceinline__ uint32_t ordered_bits(float x) {
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// q (fp32) as two bf16 pairs whose sum is q to within 2^-16 relative: hi = bf16(q), lo = bf16(q - hi).
__device__ __forceinline__ void hip_split_bf16(float x, float y, uint32_t& hi, uint32_t& lo) {
  hi = pack_bf16(x, y);
  const float2 h = bf2_to_f2(hi);
  lo = pack_bf16(x - h.x, y - h.y);
}

// The B fragments of NT keys, one per n-tile (this lane's key 8 nt + g at position kj[nt]): dims 16 s + 4 t + {0, 1}
// and {2, 3} of k-step s as two bf16 pairs (fp8 e4m3 converts exactly), zero for invalid keys, and each key's
// power-of-two scale (fp8; 1 for bf16). Every block-table entry is loaded before any K row and every K row before
// any use: the search is latency-bound (docs/KERNEL_NOTES.md, 6d).
template <class T, int kSteps, int NT>
__device__ __forceinline__ void hip_key_fragments(const KvHeadSourceT<T>& src, const int32_t (&kj)[NT],
                                                  const bool (&kok)[NT], int32_t steps, int32_t t,
                                                  uint32_t (&b)[NT][kSteps][2], float (&key_scale)[NT]) {
  int64_t slot[NT];  // [n-tile] cache slot of this lane's B key
  if (src.ring_base < 0 && src.page_shift >= 0) {
    int32_t page[NT];  // [n-tile] its block-table entry
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) page[nt] = src.pages[kok[nt] ? (kj[nt] >> src.page_shift) : 0];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      slot[nt] = kok[nt] ? int64_t(page[nt]) * src.page_size + (kj[nt] & (src.page_size - 1)) : 0;
    }
  } else {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) slot[nt] = kok[nt] ? src.slot(kj[nt]) : 0;
  }
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const T* kr = src.k + slot[nt] * src.slot_stride + 4 * t;
#pragma unroll
    for (int ks = 0; ks < kSteps; ++ks) {
      b[nt][ks][0] = b[nt][ks][1] = 0;
      if (ks < steps) {
        if constexpr (sizeof(T) == 2) {
          const uint2 w = *reinterpret_cast<const uint2*>(kr + 16 * ks);
          b[nt][ks][0] = w.x, b[nt][ks][1] = w.y;
        } else {
          const uint32_t w = *reinterpret_cast<const uint32_t*>(kr + 16 * ks);
          const float2 f0 = fp8x2_to_f2(uint16_t(w & 0xffffu)), f1 = fp8x2_to_f2(uint16_t(w >> 16));
          b[nt][ks][0] = pack_bf16(f0.x, f0.y);  // exact: every e4m3 value is a bf16
          b[nt][ks][1] = pack_bf16(f1.x, f1.y);
        }
      }
    }
    key_scale[nt] = 1.f;
    if constexpr (sizeof(T) == 1) {
      key_scale[nt] = fp8_scale_of(uint32_t(src.scale[slot[nt] * src.scale_stride]) & 0xffu);
    }
  }
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {  // invalid keys read slot 0 (whatever it holds): zero them
#pragma unroll
    for (int ks = 0; ks < kSteps; ++ks) {
      b[nt][ks][0] = kok[nt] ? b[nt][ks][0] : 0u;
      b[nt][ks][1] = kok[nt] ? b[nt][ks][1] : 0u;
    }
  }
}

// acc[nt] += q (bf16 hi + lo A fragments) x this lane's B fragments of k-step ks, for every n-tile.
template <int NT, int kSteps>
__device__ __forceinline__ void hip_mma_hi_lo(float (&acc)[NT][4], const uint32_t (&hi)[4], const uint32_t (&lo)[4],
                                              const uint32_t (&b)[NT][kSteps][2], int ks) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    mma_bf16_16816(acc[nt], hi, b[nt][ks][0], b[nt][ks][1]);
    mma_bf16_16816(acc[nt], lo, b[nt][ks][0], b[nt][ks][1]);
  }
}

// D: acc[nt][e] is (row g, column 2t + e), acc[nt][2 + e] is (row g + 8, column 2t + e). The running max of each of
// this lane's columns over the rows that see its key (causal: the row's position pa / pb >= the key's cj).
template <int NT>
__device__ __forceinline__ void hip_causal_max(float (&mx)[NT][2], const float (&acc)[NT][4], int32_t pa, int32_t pb,
                                               const int32_t (&cj)[NT][2], const bool (&cok)[NT][2]) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      if (cok[nt][e] && pa >= cj[nt][e]) mx[nt][e] = fmaxf(mx[nt][e], acc[nt][e]);
      if (cok[nt][e] && pb >= cj[nt][e]) mx[nt][e] = fmaxf(mx[nt][e], acc[nt][2 + e]);
    }
  }
}

// Each column's max over the 8 lanes that hold its rows (g): afterwards every lane of a column holds it.
template <int NT>
__device__ __forceinline__ void hip_column_max(float (&mx)[NT][2]) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
#pragma unroll
      for (int off = 4; off < 32; off <<= 1) mx[nt][e] = fmaxf(mx[nt][e], __shfl_xor_sync(0xffffffffu, mx[nt][e], off));
    }
  }
}

// score(j) of the rule for C candidate keys at once: max over rows r in [r0, r1) with query_pos[r] >= j and the
// group's query heads of (q · k_j) * scale. Every lane returns the scores; invalid candidates score -inf.
//
// On the tensor cores: the (rows x group) query vectors times the C keys is a chain of m16n8k16 MMAs, M = the
// request's (row, head) pairs in tiles of 16, N = the keys in tiles of 8, K = head_dim in steps of 16. Lane (g, t) =
// (lane / 4, lane % 4) loads dims [16 s + 4 t, 16 s + 4 t + 4) of k-step s as one word of its key 8 nt + g (B: 8
// bytes of bf16) and of its rows g and g + 8 of each M tile (A: a float4 each); the step's k index maps onto those
// dims the same way in A and B (k = 2t + e <-> dim 4t + e, k = 2t + 8 + e <-> dim 4t + 2 + e; a dot product is a sum
// in any order), so each lane's loads are contiguous instead of the fragments' two pairs 8 dims apart. q is fp32 and
// enters as bf16 hi + lo (two MMAs; error <= 2^-16 of |q| per element against the fp32 products, exact on the tests'
// integer inputs); K is bf16, and fp8 e4m3 converts to bf16 exactly, its power-of-two scale multiplying the max
// afterwards. The K loads of all keys are issued before the first MMA (block-table entries first): the search is
// latency-bound, and loading key by key had cost 2 C dependent latencies per call (docs/KERNEL_NOTES.md, 6d).
// Needs head_dim % 16 == 0 (CudaBackend::hip_search checks it).
template <class T, int kPairs, int C>
__device__ __forceinline__ void hip_scores(const HipMaskParams& p, const KvHeadSourceT<T>& src, int32_t r0, int32_t r1,
                                           int32_t kvh, const int32_t (&j)[C], const bool (&valid)[C], int32_t lane,
                                           float (&best)[C]) {
  constexpr int NT = (C + 7) / 8;       // n-tiles of 8 keys
  constexpr int kSteps = 4 * kPairs;    // k-steps of 16 dims (head_dim <= 64 kPairs)
  const AttentionCommon& a = p.a;
  const int32_t hd = a.head_dim, steps = hd / 16, group = a.n_heads / a.n_kv_heads;
  const int32_t g = lane >> 2, t = lane & 3;
  // This lane's B keys (8 nt + g) and D columns (8 nt + 2 t + e), by selects: compile-time indices only, so that the
  // arrays stay in registers.
  int32_t kj[NT], cj[NT][2];  // [n-tile] position of this lane's B key; [n-tile][e] of its D column 2t + e
  bool kok[NT], cok[NT][2];    // the same, valid
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    kj[nt] = 0, kok[nt] = false;
    cj[nt][0] = cj[nt][1] = 0, cok[nt][0] = cok[nt][1] = false;
#pragma unroll
    for (int c = 0; c < C; ++c) {
      // Masks, not conditions: written as `if (c == x) v = j[c]` the compiler turns the loop back into j[x], a
      // runtime index that puts j[] in local memory.
      const int32_t mk = -int32_t(c == 8 * nt + g), mc0 = -int32_t(c == 8 * nt + 2 * t),
                    mc1 = -int32_t(c == 8 * nt + 2 * t + 1);
      const int32_t ok = valid[c] ? 1 : 0;
      kj[nt] |= j[c] & mk, cj[nt][0] |= j[c] & mc0, cj[nt][1] |= j[c] & mc1;
      kok[nt] |= (ok & mk) != 0, cok[nt][0] |= (ok & mc0) != 0, cok[nt][1] |= (ok & mc1) != 0;
    }
  }
  uint32_t b[NT][kSteps][2];  // [n-tile][k-step] dims 16 s + 4 t + {0, 1} and {2, 3} of this lane's key (bf16 pairs)
  float key_scale[NT];  // [n-tile] fp8: this lane's key's power-of-two scale (1 for bf16)
  hip_key_fragments<T, kSteps, NT>(src, kj, kok, steps, t, b, key_scale);
  float mx[NT][2];  // running max of this lane's D columns over the rows that see them
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) mx[nt][0] = mx[nt][1] = -INFINITY;
  const int32_t m_rows = (r1 - r0) * group;
  for (int32_t m0 = 0; m0 < m_rows; m0 += 16) {
    const int32_t ma = m0 + g, mb = m0 + g + 8;
    const bool oka = ma < m_rows, okb = mb < m_rows;
    const int32_t ra = r0 + (oka ? ma / group : 0), rb = r0 + (okb ? mb / group : 0);
    const float* qa = a.q + (int64_t(ra) * a.n_heads + kvh * group + (oka ? ma % group : 0)) * hd + 4 * t;
    const float* qb = a.q + (int64_t(rb) * a.n_heads + kvh * group + (okb ? mb % group : 0)) * hd + 4 * t;
    float acc[NT][4];  // [n-tile] D: (row g, col 2t), (row g, col 2t + 1), (row g + 8, col 2t), (row g + 8, col 2t + 1)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < kSteps; ++ks) {
      if (ks >= steps) continue;
      const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
      const float4 xa = oka ? *reinterpret_cast<const float4*>(qa + 16 * ks) : zero;  // dims 16 ks + 4t + [0, 4)
      const float4 xb = okb ? *reinterpret_cast<const float4*>(qb + 16 * ks) : zero;
      uint32_t hi[4], lo[4];  // A fragments of q's bf16 hi and lo parts (registers a0..a3 of the MMA)
      hip_split_bf16(xa.x, xa.y, hi[0], lo[0]);  // row g,     k 2t, 2t + 1
      hip_split_bf16(xb.x, xb.y, hi[1], lo[1]);  // row g + 8, k 2t, 2t + 1
      hip_split_bf16(xa.z, xa.w, hi[2], lo[2]);  // row g,     k 2t + 8, 2t + 9
      hip_split_bf16(xb.z, xb.w, hi[3], lo[3]);  // row g + 8, k 2t + 8, 2t + 9
      hip_mma_hi_lo<NT, kSteps>(acc, hi, lo, b, ks);
    }
    hip_causal_max<NT>(mx, acc, oka ? p.query_pos[ra] : -1, okb ? p.query_pos[rb] : -1, cj, cok);
  }
  // Max over the lanes of one column (the 8 values of g), then each key's max from lane t = (c % 8) / 2; the
  // positive scales commute with the max.
  hip_column_max<NT>(mx);
#pragma unroll
  for (int c = 0; c < C; ++c) {
    const float m = __shfl_sync(0xffffffffu, mx[c / 8][c % 2], (c % 8) / 2);
    float scale = a.scale;
    if constexpr (sizeof(T) == 1) scale *= __shfl_sync(0xffffffffu, key_scale[c / 8], (c % 8) * 4);
    // -inf stays -inf even where a subnormal fp8 scale (exponent byte 0) flushes the product to 0 (-inf * 0 = NaN)
    best[c] = m == -INFINITY ? -INFINITY : m * scale;
  }
}

// Prefill's centre keys, a request's query rows staged once (HipPrefillShape): a query block's (rows x group) query
// vectors are the M side of every round's scores, so the CTA converts them to bf16 A fragments once per request
// (hip_stage_query) instead of once per scored key, and each warp scores 8 * NT candidates per pass against them
// (every MMA column a candidate, where a descent warp's kCand keys fill a few). Fragment layout in shared memory:
// uint4 [M tile][k-step][lane], each lane's four A registers (rows g, g + 8 of the tile, dims as in hip_scores); M
// rows are the request's (row, head) pairs mc0 .. mc1 - 1 of one chunk (a chunk holds what fits).
// Precision: q rounded to bf16 (one MMA per k-step), as the attention kernels round it and as HiP's own kernels score
// (bf16 dot products, arXiv 2406.09827 §3.1); the decode descent keeps hi + lo (hip_scores), where it costs little.
// The lo half had been a quarter of the 128k prefill search (8B: TTFT 5.88 -> 5.66 s on an H100,
// bench/results/hip_prefill_search_h100_2026-12-07/). Exact on the tests' integer inputs, so the masks still equal
// the CPU rule's there; on real data a near-tie (within 2^-9 of |q|) may go the other way.
__device__ __forceinline__ void hip_stage_query(const HipMaskParams& p, int32_t r0, int32_t group, int32_t kvh,
                                                int32_t mc0, int32_t mc1, int32_t steps, uint4* qs) {
  const AttentionCommon& a = p.a;
  const int32_t hd = a.head_dim, n_mt = (mc1 - mc0 + 15) / 16, items = n_mt * steps * 32;
  for (int32_t item = int32_t(threadIdx.x); item < items; item += int32_t(blockDim.x)) {
    const int32_t lane = item & 31, mt = (item >> 5) / steps, ks = (item >> 5) % steps, g = lane >> 2, t = lane & 3;
    const int32_t ma = mc0 + 16 * mt + g, mb = ma + 8;
    const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
    const float4 xa = ma < mc1 ? *reinterpret_cast<const float4*>(
                                     a.q + (int64_t(r0 + ma / group) * a.n_heads + kvh * group + ma % group) * hd +
                                     16 * ks + 4 * t)
                               : zero;
    const float4 xb = mb < mc1 ? *reinterpret_cast<const float4*>(
                                     a.q + (int64_t(r0 + mb / group) * a.n_heads + kvh * group + mb % group) * hd +
                                     16 * ks + 4 * t)
                               : zero;
    uint4 frag;
    frag.x = pack_bf16(xa.x, xa.y);  // row g,     k 2t, 2t + 1
    frag.y = pack_bf16(xb.x, xb.y);  // row g + 8, k 2t, 2t + 1
    frag.z = pack_bf16(xa.z, xa.w);  // row g,     k 2t + 8, 2t + 9
    frag.w = pack_bf16(xb.z, xb.w);  // row g + 8, k 2t + 8, 2t + 9
    qs[(int64_t(mt) * steps + ks) * 32 + lane] = frag;
  }
}

// The centre-key scores of candidates c0 .. c0 + 8 NT - 1 (warp-wide) over the staged M rows [mc0, mc1): the running
// max of each candidate's (q . k_centre) * scale over the rows that see the centre goes to best[c] (first chunk:
// written; later chunks: maxed in). Candidates past n_cand or without a piece (cb < 0) are left alone.
// first_pos: the smallest position of the request's rows. When every centre of the pass is at or before it, every
// row sees every centre: full M tiles then skip the per-row causal test (two position loads and divisions by the
// group per tile were a quarter of the search's stall samples at 128k; bench/results/hip_prefill_search_h100_2026-12-07/).
// That is every pass of the policy's requests, whose search range ends before the recent window (hi <= first row -
// recent + 1); the per-row test serves ranges reaching past the first row (the CUDA mask test has one).
template <class T, int kPairs, int NT>
__device__ __forceinline__ void hip_centre_scores(const HipMaskParams& p, const KvHeadSourceT<T>& src, int32_t r0,
                                                  int32_t group, int32_t lo, int32_t hi, int32_t bs, int32_t n_cand,
                                                  const int32_t* cb, const int32_t* ce, int32_t c0, const uint4* qs,
                                                  int32_t mc0, int32_t mc1, bool first_chunk, int32_t first_pos,
                                                  int32_t lane, float* best) {
  constexpr int kSteps = 4 * kPairs;
  const AttentionCommon& a = p.a;
  const int32_t steps = a.head_dim / 16, g = lane >> 2, t = lane & 3;
  const auto centre = [&](int32_t idx, bool& ok) {  // the centre key of candidate idx, clipped to [lo, hi)
    ok = idx < n_cand && cb[idx] >= 0;
    if (!ok) return int32_t(0);
    const int32_t l = int32_t(max(int64_t(lo), int64_t(cb[idx]) * bs)), r = int32_t(min(int64_t(hi), int64_t(ce[idx]) * bs));
    return l + (r - l - 1) / 2;
  };
  int32_t kj[NT], cj[NT][2];  // [n-tile] position of this lane's B key (8 nt + g); [n-tile][e] of its D column 2t + e
  bool kok[NT], cok[NT][2];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    kj[nt] = centre(c0 + 8 * nt + g, kok[nt]);
    cj[nt][0] = centre(c0 + 8 * nt + 2 * t, cok[nt][0]);
    cj[nt][1] = centre(c0 + 8 * nt + 2 * t + 1, cok[nt][1]);
  }
  bool sees_all = true;  // every row of the request sees every centre of this pass (warp-uniform below)
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) sees_all &= !kok[nt] || kj[nt] <= first_pos;
  sees_all = __all_sync(0xffffffffu, sees_all);
  uint32_t b[NT][kSteps][2];  // [n-tile][k-step] this lane's key's B fragments
  float key_scale[NT];        // [n-tile] its fp8 scale (1 for bf16)
  hip_key_fragments<T, kSteps, NT>(src, kj, kok, steps, t, b, key_scale);
  float mx[NT][2];  // running max of this lane's D columns over the rows that see them
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) mx[nt][0] = mx[nt][1] = -INFINITY;
  const int32_t n_mt = (mc1 - mc0 + 15) / 16;
  for (int32_t mt = 0; mt < n_mt; ++mt) {
    float acc[NT][4];  // [n-tile] D: (row g, col 2t), (row g, col 2t + 1), (row g + 8, col 2t), (row g + 8, col 2t + 1)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.f;
    const uint4* at = qs + int64_t(mt) * steps * 32 + lane;
#pragma unroll
    for (int ks = 0; ks < kSteps; ++ks) {
      if (ks >= steps) continue;
      const uint4 f = at[ks * 32];
      const uint32_t a_frag[4] = {f.x, f.y, f.z, f.w};
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) mma_bf16_16816(acc[nt], a_frag, b[nt][ks][0], b[nt][ks][1]);
    }
    if (sees_all && mc0 + 16 * mt + 16 <= mc1) {  // a full tile of rows that see every centre
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        mx[nt][0] = fmaxf(mx[nt][0], fmaxf(acc[nt][0], acc[nt][2]));
        mx[nt][1] = fmaxf(mx[nt][1], fmaxf(acc[nt][1], acc[nt][3]));
      }
      continue;
    }
    const int32_t ma = mc0 + 16 * mt + g, mb = ma + 8;
    hip_causal_max<NT>(mx, acc, ma < mc1 ? p.query_pos[r0 + ma / group] : -1,
                       mb < mc1 ? p.query_pos[r0 + mb / group] : -1, cj, cok);
  }
  // Max over the 8 lanes of a column (g), the column's key scale from the lane that loaded it (g = 2t + e), then
  // lanes 0-3 hold every column.
  hip_column_max<NT>(mx);
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float scale = a.scale;
      if constexpr (sizeof(T) == 1) scale *= __shfl_sync(0xffffffffu, key_scale[nt], 4 * (2 * t + e));
      // -inf stays -inf even where a subnormal fp8 scale flushes the product to 0 (-inf * 0 = NaN)
      const float v = mx[nt][e] == -INFINITY ? -INFINITY : mx[nt][e] * scale;
      if (g == 0 && cok[nt][e]) {
        float& out = best[c0 + 8 * nt + 2 * t + e];
        out = first_chunk ? v : fmaxf(out, v);
      }
    }
  }
}

// One bitonic compare-exchange of keys (and their slots) held in registers: this lane's key `mine` at a position whose
// partner (position ^ stride) is held by lane ^ stride in the same register; `low` says this lane holds the pair's
// lower position, `descending` the pair's direction (the lower position gets the larger key). Keys swap only when
// strictly out of order, so equal keys (empty slots) never duplicate a slot.
__device__ __forceinline__ void hip_exchange_across_lanes(uint64_t& mine, int32_t& slot, int32_t stride, bool low,
                                                          bool descending) {
  const uint64_t other = __shfl_xor_sync(0xffffffffu, mine, stride);
  const int32_t other_slot = __shfl_xor_sync(0xffffffffu, slot, stride);
  const bool take = low == descending ? other > mine : other < mine;
  if (take) mine = other, slot = other_slot;
}

// The bitonic substages of strides 32 .. 1 for every size in [size_first, size_last] (powers of two, >= 2) on each
// 64-key segment [64 a, 64 a + 64) of key / slot_of, in registers: warp w takes segments w, w + warps, ...; lane l
// holds positions l and l + 32, so stride 32 is a swap within the lane and strides 1 .. 16 are shuffles. Callers
// fence the shared arrays before (__syncthreads) and after.
__device__ __forceinline__ void hip_sort_segments(uint64_t* key, int32_t* slot_of, int32_t n_sort, int32_t size_first,
                                                  int32_t size_last, int32_t lane, int32_t warp, int32_t warps) {
  for (int32_t seg = warp; seg < n_sort / 64; seg += warps) {
    const int32_t base = 64 * seg;
    uint64_t k0 = key[base + lane], k1 = key[base + 32 + lane];        // positions base + lane, base + 32 + lane
    int32_t s0 = slot_of[base + lane], s1 = slot_of[base + 32 + lane];
    for (int32_t size = size_first; size <= size_last; size <<= 1) {
      for (int32_t stride = min(size >> 1, 32); stride > 0; stride >>= 1) {
        if (stride == 32) {  // size >= 64: the pair (base + lane, base + lane + 32), one direction per segment
          const bool descending = ((base + lane) & size) == 0;
          if (descending ? k0 < k1 : k0 > k1) {
            const uint64_t tk = k0;
            k0 = k1, k1 = tk;
            const int32_t ts = s0;
            s0 = s1, s1 = ts;
          }
        } else {
          const bool low = (lane & stride) == 0;
          // the lower positions of this lane's two pairs
          const int32_t lo0 = (base + lane) & ~stride, lo1 = (base + 32 + lane) & ~stride;
          hip_exchange_across_lanes(k0, s0, stride, low, (lo0 & size) == 0);
          hip_exchange_across_lanes(k1, s1, stride, low, (lo1 & size) == 0);
        }
      }
    }
    key[base + lane] = k0, key[base + 32 + lane] = k1;
    slot_of[base + lane] = s0, slot_of[base + 32 + lane] = s1;
  }
}

// The keep largest of n_sort distinct-or-zero 64-bit keys to key[0 .. keep) with their slots (slot_of: the key's
// index before the call), in no particular order; zero keys are empty slots (at least keep keys are not). A bitonic
// network: segments of 64 sorted in registers (hip_sort_segments), the substages of stride >= 64 through shared
// memory with a block barrier each, strides 32 .. 1 of every larger size again in registers. When keep is half of
// n_sort (HiP's usual 2 keep candidates, keep a power of two) the last size stops after its first substage: the
// halves, sorted in opposite directions, form one bitonic sequence, and comparing position i with i + n_sort / 2
// puts the larger half in front (its order does not matter: the output is written ascending by block). For 512
// candidates that is 8 block barriers (the first before the sort) and 33 register substages instead of 45 barriered
// substages in shared memory (the sort had been 28% of the 128k prefill search's stall samples,
// bench/results/hip_prefill_search_h100_2026-12-07/).
template <int kThreads>
__device__ __forceinline__ void hip_select_top(uint64_t* key, int32_t* slot_of, int32_t n_sort, int32_t keep,
                                               int32_t tid) {
  constexpr int32_t kWarps = kThreads / 32;
  const int32_t lane = tid & 31, warp = tid >> 5;
  for (int32_t i = tid; i < n_sort; i += kThreads) slot_of[i] = i;
  __syncthreads();
  const auto exchange_shared = [&](int32_t size, int32_t stride) {  // one substage: whole pairs per thread
    for (int32_t q = tid; q < n_sort / 2; q += kThreads) {
      const int32_t i = ((q & ~(stride - 1)) << 1) | (q & (stride - 1)), other = i + stride;
      const bool descending = (i & size) == 0;
      const uint64_t x = key[i], y = key[other];
      if (descending ? x < y : x > y) {
        key[i] = y, key[other] = x;
        const int32_t t = slot_of[i];
        slot_of[i] = slot_of[other], slot_of[other] = t;
      }
    }
    __syncthreads();
  };
  if (n_sort < 64) {  // small masks: every substage through shared memory
    for (int32_t size = 2; size <= n_sort; size <<= 1) {
      for (int32_t stride = size >> 1; stride > 0; stride >>= 1) exchange_shared(size, stride);
    }
    return;
  }
  const bool top_half = 2 * keep == n_sort;
  const int32_t last_full = top_half ? n_sort / 2 : n_sort;  // the last size sorted completely
  hip_sort_segments(key, slot_of, n_sort, 2, min(last_full, 64), lane, warp, kWarps);
  __syncthreads();
  for (int32_t size = 128; size <= last_full; size <<= 1) {
    for (int32_t stride = size >> 1; stride >= 64; stride >>= 1) exchange_shared(size, stride);
    hip_sort_segments(key, slot_of, n_sort, size, size, lane, warp, kWarps);
    __syncthreads();
  }
  if (top_half) exchange_shared(n_sort, n_sort / 2);
}

// One cluster of n_ctas CTAs per request (cg::this_cluster(): 1 for prefill's many requests; up to 16 for decode's
// few, so that one decode step's handful of requests fills the GPU instead of 8 of its 132 SMs). CTA rank c scores
// the candidates its warps own (idx / (kWarps * kCand) % n_ctas == c) and ranks them against every candidate's key,
// gathered from its owner's shared memory (the cluster's distributed shared memory); each CTA then places every
// kept piece from its owner's ranks. Every early return depends on the request only, so either the whole cluster
// returns or the whole cluster reaches every barrier.
// kPairs: the head_dim register class (head_dim <= 64 * kPairs; see kMaxPairsPerLane).
// Shape: HipPrefillShape or HipDecodeShape (the same rule; only the work split and the lookahead differ).
template <class T, int kPairs, class Shape>
__global__ void __launch_bounds__(Shape::kThreads, Shape::kMinBlocks) kernel_attention_hip_mask(HipMaskParams p) {
  constexpr int kThreads = Shape::kThreads;
  constexpr int kWarps = kThreads / 32;
  constexpr int kCand = Shape::kCand;  // candidates a warp descends together
  constexpr int kLook = Shape::kLook;  // descent levels decided per dependent load (1 or 2)
  const cg::cluster_group cluster = cg::this_cluster();
  const int32_t n_ctas = int32_t(cluster.num_blocks()), rank = int32_t(cluster.block_rank());
  const int32_t req = int32_t(blockIdx.x / unsigned(n_ctas));
  const int32_t* rq = p.requests + int64_t(req) * kHipRequestInts;
  const int32_t r0 = rq[0], r1 = rq[1], kvh = rq[2], lo = rq[3], hi = rq[4], k = rq[5], bs = rq[6];
  const bool descent = rq[7] != 0;
  const int32_t start_row = rq[8], start_shift = rq[9], stage_round = rq[10];
  int32_t* out = p.out_blocks + int64_t(req) * p.max_keep;
  const int32_t tid = int32_t(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const bool writer = rank == 0;  // the CTA that writes the request's output
  if (writer && tid == 0 && p.stage_count) p.stage_count[req] = 0;  // until the stage round is reached
  if (hi <= lo) {
    if (writer && tid == 0) p.out_count[req] = 0;
    return;
  }
  const int32_t first = lo / bs, end = (hi - 1) / bs + 1, n_blocks = end - first, keep = k / bs;
  if (n_blocks <= keep) {  // every block: exact
    if (writer) {
      for (int32_t i = tid; i < n_blocks; i += kThreads) out[i] = first + i;
      if (tid == 0) p.out_count[req] = n_blocks;
    }
    return;
  }
  const int32_t n_sort = pow2_at_least(2 * keep);
  extern __shared__ __align__(16) unsigned char smem[];
  uint64_t* key = reinterpret_cast<uint64_t*>(smem);                  // [n_sort] sort keys (gathered)
  int32_t* slot_of = reinterpret_cast<int32_t*>(key + n_sort);        // [n_sort] candidate slot of each key
  int32_t* cb = slot_of + n_sort;                                      // [n_sort] candidate first block (-1: none)
  int32_t* ce = cb + n_sort;                                           // [n_sort] candidate end block
  int32_t* kb = ce + n_sort;                                           // [keep] kept first block
  int32_t* ke = kb + keep;                                             // [keep] kept end block
  uint64_t* own = reinterpret_cast<uint64_t*>(ke + keep);             // [n_sort] keys this CTA scored (clusters of
                                                                       // more than one CTA only; slot_of then holds
                                                                       // the ranks of this CTA's own candidates)
  __shared__ int32_t split_any;
  __shared__ int32_t start_bad;

  // Resume from a cached coarse stage (hip_dilate_pieces: each end aged start_shift blocks, up to the next piece and
  // the candidate end) when it is usable (hip_start_usable); every CTA of a cluster reads the same row, so all decide
  // alike.
  bool from_start = start_row >= 0 && p.start_pieces != nullptr && p.start_count[start_row] == keep;
  if (from_start) {
    const int32_t* sp = p.start_pieces + int64_t(start_row) * 2 * p.start_stride;  // [keep] (begin, end)
    if (tid == 0) start_bad = 0;
    __syncthreads();
    for (int32_t i = tid; i < keep; i += kThreads) {
      const int32_t b = sp[2 * i], e = sp[2 * i + 1], next = i + 1 < keep ? sp[2 * i + 2] : end;
      if (b < first || b >= e || e > end || e > next) atomicOr(&start_bad, 1);
      kb[i] = b;
      ke[i] = int32_t(max(int64_t(e), min(int64_t(e) + start_shift, int64_t(next))));
    }
    __syncthreads();
    from_start = start_bad == 0;
  }
  // Step 1: keep chunks, the first n_blocks % keep one block longer.
  const int32_t base = n_blocks / keep, extra = n_blocks % keep;
  for (int32_t i = tid; !from_start && i < keep; i += kThreads) {
    kb[i] = first + i * base + min(i, extra);
    ke[i] = kb[i] + base + (i < extra ? 1 : 0);
  }
  const KvHeadSourceT<T> src = kv_head_source<T>(p.a, p.a.row_seq[r0], kvh);
  // Centre keys of a one-CTA request: the query rows' A fragments staged once (in chunks of q_stage_rows M rows
  // when they do not all fit: then each round restages them).
  constexpr int kStagedNT = kPairs == 2 ? 3 : 2;  // n-tiles a warp scores per pass (B fragments in registers)
  const int32_t group = p.a.n_heads / p.a.n_kv_heads, m_rows = (r1 - r0) * group;
  const bool staged = Shape::kStageQ && !descent && n_ctas == 1 && p.q_stage_rows > 0;
  const int32_t n_mchunks = staged ? (m_rows + p.q_stage_rows - 1) / p.q_stage_rows : 0;
  uint4* qs = reinterpret_cast<uint4*>(smem + hip_query_stage_offset(p.max_keep));  // [M tile][k-step][lane]
  if (staged && n_mchunks == 1) hip_stage_query(p, r0, group, kvh, 0, m_rows, p.a.head_dim / 16, qs);
  __shared__ int32_t first_pos;  // the smallest position of the request's rows (hip_centre_scores)
  if (tid == 0) {
    int32_t m = std::numeric_limits<int32_t>::max();
    for (int32_t r = r0; r < r1; ++r) m = min(m, p.query_pos[r]);
    first_pos = m;
  }
  for (int32_t round = 0;; ++round) {
    if (tid == 0) split_any = 0;
    __syncthreads();
    if (round == stage_round && writer && p.stage_out) {
      // kb / ke: the pieces after `round` rounds, in the order the last sort left them (by score): stored ascending
      // (a piece's place is the number of pieces before it; they are disjoint), as a start must be.
      int32_t* so = p.stage_out + int64_t(req) * 2 * p.max_keep;
      for (int32_t i = tid; i < keep; i += kThreads) {
        int32_t at = 0;
        for (int32_t j = 0; j < keep; ++j) at += kb[j] < kb[i] ? 1 : 0;
        so[2 * at] = kb[i], so[2 * at + 1] = ke[i];
      }
      if (tid == 0) p.stage_count[req] = keep;
    }
    // Step 2: halves of every piece longer than one block.
    for (int32_t i = tid; i < keep; i += kThreads) {
      const int32_t b = kb[i], e = ke[i];
      if (e - b > 1) {
        const int32_t mid = b + (e - b) / 2;
        cb[2 * i] = b, ce[2 * i] = mid, cb[2 * i + 1] = mid, ce[2 * i + 1] = e;
        atomicOr(&split_any, 1);
      } else {
        cb[2 * i] = b, ce[2 * i] = e, cb[2 * i + 1] = -1, ce[2 * i + 1] = -1;
      }
    }
    __syncthreads();
    if (split_any == 0) break;
    if (staged) {
      float* best = reinterpret_cast<float*>(slot_of);  // [n_sort] each candidate's score (the sort's slots come later)
      for (int32_t mc0 = 0; mc0 < m_rows; mc0 += p.q_stage_rows) {
        const int32_t mc1 = min(m_rows, mc0 + p.q_stage_rows);
        if (n_mchunks > 1) {
          __syncthreads();  // every warp is done with the previous chunk
          hip_stage_query(p, r0, group, kvh, mc0, mc1, p.a.head_dim / 16, qs);
          __syncthreads();
        }
        for (int32_t c0 = warp * 8 * kStagedNT; c0 < 2 * keep; c0 += kWarps * 8 * kStagedNT) {
          hip_centre_scores<T, kPairs, kStagedNT>(p, src, r0, group, lo, hi, bs, 2 * keep, cb, ce, c0, qs, mc0, mc1,
                                                  mc0 == 0, first_pos, lane, best);
        }
      }
      __syncthreads();
      for (int32_t i = tid; i < n_sort; i += kThreads) {
        // As the descent loop's keys below: empty slots sort last; + 0 makes -0 and +0 one score.
        const bool valid = i < 2 * keep && cb[i] >= 0;
        key[i] = valid ? (uint64_t(ordered_bits(best[i] + 0.0f)) << 32) | uint64_t(0xffffffffu - uint32_t(cb[i])) : 0;
      }
    }
    // This round's keys go to the sort buffer directly (one CTA) or to this CTA's own buffer for the cluster.
    uint64_t* scored = n_ctas == 1 ? key : own;
    // Score every candidate (keys clipped to [lo, hi), as the CPU rule): at its centre key, or by descent
    // (hip_mask.h): score the centre key of each half, move into the higher (ties to the lower half), until one
    // key is left; the score is the best centre met. Both halves' keys are loaded together (one dependent load per
    // level); every lane holds the same ranges, so the loop is warp-uniform. Keys are rescored where descents
    // overlap (the CPU caches them; the scores are the same).
    for (int32_t c0 = (rank * kWarps + warp) * kCand; !staged && c0 < n_sort; c0 += n_ctas * kWarps * kCand) {
      int32_t l[kCand], r[kCand];
      bool valid[kCand], one[kCand];
      float s[kCand];
      bool any_one = false;
#pragma unroll
      for (int c = 0; c < kCand; ++c) {
        const int32_t idx = c0 + c;
        valid[c] = idx < 2 * keep && cb[idx] >= 0;
        l[c] = 0, r[c] = 0;
        if (valid[c]) {
          l[c] = int32_t(max(int64_t(lo), int64_t(cb[idx]) * bs));
          r[c] = int32_t(min(int64_t(hi), int64_t(ce[idx]) * bs));
        }
        if (!descent && valid[c]) l[c] = l[c] + (r[c] - l[c] - 1) / 2, r[c] = l[c] + 1;  // the centre alone
        one[c] = valid[c] && r[c] - l[c] == 1;  // a single key scores itself
        any_one |= one[c];
      }
      {
        float single[kCand];
        if (any_one) hip_scores<T, kPairs, kCand>(p, src, r0, r1, kvh, l, one, lane, single);
#pragma unroll
        for (int c = 0; c < kCand; ++c) s[c] = one[c] ? single[c] : -INFINITY;
      }
      for (;;) {
        // Keys of one load, [6][kCand]: the left and right halves' centres (level 1); with kLook 2 also the
        // centres of the left half's halves and of the right half's halves (level 2 after either move). The
        // unused pair of level 2 is wasted bandwidth, not latency: the search is latency-bound.
        constexpr int kKeys = (kLook == 2 ? 6 : 2) * kCand;
        int32_t mid[kCand], mid_l[kCand], mid_r[kCand], j[kKeys];
        bool act[kKeys];
        bool any = false;
#pragma unroll
        for (int c = 0; c < kCand; ++c) {
          const bool a = valid[c] && r[c] - l[c] >= 2;
          mid[c] = l[c] + (r[c] - l[c]) / 2;
          act[c] = act[kCand + c] = a;
          j[c] = a ? l[c] + (mid[c] - l[c] - 1) / 2 : 0;
          j[kCand + c] = a ? mid[c] + (r[c] - mid[c] - 1) / 2 : 0;
          if constexpr (kLook == 2) {
            const bool al = a && mid[c] - l[c] >= 2, ar = a && r[c] - mid[c] >= 2;
            mid_l[c] = l[c] + (mid[c] - l[c]) / 2;
            mid_r[c] = mid[c] + (r[c] - mid[c]) / 2;
            act[2 * kCand + c] = act[3 * kCand + c] = al;
            act[4 * kCand + c] = act[5 * kCand + c] = ar;
            j[2 * kCand + c] = al ? l[c] + (mid_l[c] - l[c] - 1) / 2 : 0;
            j[3 * kCand + c] = al ? mid_l[c] + (mid[c] - mid_l[c] - 1) / 2 : 0;
            j[4 * kCand + c] = ar ? mid[c] + (mid_r[c] - mid[c] - 1) / 2 : 0;
            j[5 * kCand + c] = ar ? mid_r[c] + (r[c] - mid_r[c] - 1) / 2 : 0;
          }
          any |= a;
        }
        if (!any) break;
        float sc[kKeys];
        hip_scores<T, kPairs, kKeys>(p, src, r0, r1, kvh, j, act, lane, sc);
#pragma unroll
        for (int c = 0; c < kCand; ++c) {
          if (!act[c]) continue;
          // Level 1: into the half whose centre scores higher (ties to the lower half); the piece keeps the best
          // centre met.
          const bool left = sc[c] >= sc[kCand + c];
          if (left) {
            r[c] = mid[c];
            s[c] = fmaxf(s[c], sc[c]);
          } else {
            l[c] = mid[c];
            s[c] = fmaxf(s[c], sc[kCand + c]);
          }
          if constexpr (kLook == 2) {
            // Level 2, within the half just chosen, from the keys already scored (selects, not a runtime index:
            // the arrays stay in registers).
            if (!(left ? act[2 * kCand + c] : act[4 * kCand + c])) continue;
            const float lo_half = left ? sc[2 * kCand + c] : sc[4 * kCand + c];
            const float hi_half = left ? sc[3 * kCand + c] : sc[5 * kCand + c];
            const int32_t m2 = left ? mid_l[c] : mid_r[c];
            if (lo_half >= hi_half) {
              r[c] = m2;
              s[c] = fmaxf(s[c], lo_half);
            } else {
              l[c] = m2;
              s[c] = fmaxf(s[c], hi_half);
            }
          }
        }
      }
      if (lane == 0) {
#pragma unroll
        for (int c = 0; c < kCand; ++c) {
          const int32_t idx = c0 + c;
          if (idx >= n_sort) break;
          // Empty slots sort last. + 0: -0 and +0 are one score (the CPU compares floats: they tie, the lower
          // block wins).
          const uint64_t block_bits = uint64_t(0xffffffffu - uint32_t(cb[idx]));
          scored[idx] = valid[c] ? (uint64_t(ordered_bits(s[c] + 0.0f)) << 32) | block_bits : 0;
        }
      }
    }
    if (n_ctas > 1) {
      // Step 3 in a cluster: every CTA gathers the round's keys, ranks its own candidates against all of them (a
      // candidate's rank is the number of larger keys: the keep of rank < keep stay, at their rank), publishes the
      // ranks, and then places every kept piece from its owner's ranks, so that each CTA holds the same kept pieces.
      // The ranking work is split over the cluster: (n_sort / n_ctas) x n_sort compares per CTA instead of the
      // n_sort^2 each CTA would do alone. Two cluster barriers per round: after the keys (1), after the ranks (2). A
      // CTA rewrites `own` only after this round's barrier 2 (every gather of it precedes that barrier) and zeroes
      // its ranks only after the next round's barrier 1 (every read of them precedes that barrier).
      // Ownership, as the scoring loop above deals candidates out: runs of kPerPass consecutive candidates go to the
      // CTAs in turn. Candidate i is CTA owner_of(i)'s own index own_index_of(i); own index o of CTA c is candidate
      // candidate_of(o, c). o <= candidate < n_sort, so a CTA has at most n_sort own indices: a request whose keep is
      // far below the launch's max_keep has n_sort < kPerPass, and own_rank must not run past slot_of's n_sort.
      constexpr int32_t kPerPass = kWarps * kCand;  // consecutive candidates one CTA scores per pass
      const auto owner_of = [&](int32_t i) { return (i / kPerPass) % n_ctas; };
      const auto own_index_of = [&](int32_t i) { return (i / (kPerPass * n_ctas)) * kPerPass + i % kPerPass; };
      const auto candidate_of = [&](int32_t o, int32_t c) {
        return ((o / kPerPass) * n_ctas + c) * kPerPass + o % kPerPass;
      };
      cluster.sync();  // (1)
      for (int32_t i = tid; i < n_sort; i += kThreads) key[i] = cluster.map_shared_rank(own, owner_of(i))[i];
      const int32_t n_own = min(n_sort, ((n_sort + kPerPass * n_ctas - 1) / (kPerPass * n_ctas)) * kPerPass);
      int32_t* own_rank = slot_of;  // [n_own]
      for (int32_t o = tid; o < n_own; o += kThreads) own_rank[o] = 0;
      __syncthreads();
      // Work items (own candidate o, 32 consecutive keys): consecutive threads take consecutive o, so a warp reads
      // the same keys (broadcasts).
      const int32_t n_chunks = (n_sort + 31) / 32;
      for (int32_t w = tid; w < n_own * n_chunks; w += kThreads) {
        const int32_t o = w % n_own, j0 = (w / n_own) * 32;
        const int32_t i = candidate_of(o, rank);
        if (i >= n_sort) continue;
        const uint64_t x = key[i];
        int32_t larger = 0;
        for (int32_t jj = j0; jj < min(j0 + 32, n_sort); ++jj) larger += key[jj] > x ? 1 : 0;
        atomicAdd(&own_rank[o], larger);
      }
      cluster.sync();  // (2)
      for (int32_t i = tid; i < n_sort; i += kThreads) {
        const int32_t rk = cluster.map_shared_rank(own_rank, owner_of(i))[own_index_of(i)];
        // Empty slots (key 0) rank below every real candidate, of which there are at least keep.
        if (key[i] != 0 && rk < keep) {
          kb[rk] = cb[i];
          ke[rk] = ce[i];
        }
      }
      __syncthreads();
      continue;
    }
    __syncthreads();
    // Step 3 in one CTA: the keep largest keys to the front (hip_select_top). The keys of real candidates are
    // distinct (the block is in the low bits) and empty slots are 0, below every real key; at least keep candidates
    // are real (every kept piece has a half). (Ranking all n_sort candidates in one CTA costs n_sort^2 compares; a
    // prefill step's many CTAs per SM hide the sort's barriers instead.)
    hip_select_top<kThreads>(key, slot_of, n_sort, keep, tid);
    for (int32_t i = tid; i < keep; i += kThreads) {
      kb[i] = cb[slot_of[i]];
      ke[i] = ce[slot_of[i]];
    }
    __syncthreads();
  }
  // No CTA leaves while another may still read its shared memory (the last round's rank reads).
  if (n_ctas > 1) cluster.sync();
  if (!writer) return;
  // Ascending output: distinct blocks, so a kept block's rank is the number of smaller ones.
  for (int32_t i = tid; i < keep; i += kThreads) {
    int32_t rank_of = 0;
    for (int32_t j = 0; j < keep; ++j) rank_of += kb[j] < kb[i] ? 1 : 0;
    out[rank_of] = kb[i];
  }
  if (tid == 0) p.out_count[req] = keep;
}

int current_device() {
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

// The kernel's opt-ins, once per instantiation and device (function attributes are per device) and before any
// occupancy query or launch of it: the largest dynamic shared memory (a cluster's key buffers) and clusters of 16
// (non-portable).
template <class T, int kPairs, class Shape>
void hip_mask_configure() {
  static std::atomic<uint64_t> done{0};  // bit d: device d (ordinals >= 64 share bit 63 and ask again each time)
  const int device = current_device();
  const uint64_t bit = uint64_t(1) << (device < 63 ? device : 63);
  if (device < 63 && (done.load() & bit) != 0) return;
  const int most = cuda_smem_optin_bytes() - 64;  // - the kernel's static shared memory
  CUDA_CHECK(cudaFuncSetAttribute(kernel_attention_hip_mask<T, kPairs, Shape>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, most));
  CUDA_CHECK(cudaFuncSetAttribute(kernel_attention_hip_mask<T, kPairs, Shape>,
                                  cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  done.fetch_or(bit);
}

// Launch configuration: n_requests clusters of `size` CTAs of Shape::kThreads. attr is the caller's storage for the
// cluster attribute the configuration points to.
template <class Shape>
cudaLaunchConfig_t hip_launch_config(int64_t n_requests, int size, size_t smem, cudaStream_t stream,
                                     cudaLaunchAttribute& attr) {
  attr = {};
  attr.id = cudaLaunchAttributeClusterDimension;
  attr.val.clusterDim.x = unsigned(size);
  attr.val.clusterDim.y = attr.val.clusterDim.z = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(unsigned(n_requests * size));
  cfg.blockDim = dim3(Shape::kThreads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = &attr;
  cfg.numAttrs = 1;
  return cfg;
}

// How many clusters of `size` CTAs with smem bytes each the current device holds at once (0: none), asked once
// per (device, size, smem): a few sizes x a few shared-memory sizes per device.
template <class T, int kPairs, class Shape>
int hip_max_active_clusters(int size, size_t smem) {
  static std::mutex mu;
  static std::map<std::tuple<int, int, size_t>, int> known;  // (device, size, smem) -> clusters
  const std::tuple<int, int, size_t> tag{current_device(), size, smem};
  const std::lock_guard<std::mutex> lock(mu);
  const auto it = known.find(tag);
  if (it != known.end()) return it->second;
  cudaLaunchAttribute attr;
  const cudaLaunchConfig_t cfg = hip_launch_config<Shape>(1, size, smem, nullptr, attr);
  int clusters = 0;
  if (cudaOccupancyMaxActiveClusters(&clusters, kernel_attention_hip_mask<T, kPairs, Shape>, &cfg) != cudaSuccess) {
    (void)cudaGetLastError();  // a size the device cannot run is an answer, not an error
    clusters = 0;
  }
  known[tag] = clusters;
  return clusters;
}

// CTAs per request: enough that one pass of the warps scores every candidate of a round (2 * max_keep), at most
// 16 (a non-portable cluster: one GPC), and no more CTAs than SMs over all requests (a prefill step's thousands of
// requests get one each). Halved while the device cannot hold all the requests' clusters at once: a second wave
// costs a whole search (cudaOccupancyMaxActiveClusters counts what fits in the GPCs, not just the SMs).
template <class T, int kPairs, class Shape>
int hip_cluster_size(const HipMaskParams& p, size_t smem) {
  hip_mask_configure<T, kPairs, Shape>();
  const int64_t per_pass = int64_t(Shape::kThreads / 32) * Shape::kCand;
  const int64_t needed = (int64_t(pow2_at_least(2 * p.max_keep)) + per_pass - 1) / per_pass;
  int size = 1;
  while (size < 16 && size < needed && int64_t(p.n_requests) * size * 2 <= int64_t(cuda_sm_count())) size *= 2;
  for (; size > 1; size /= 2) {
    if (hip_max_active_clusters<T, kPairs, Shape>(size, smem) >= p.n_requests) break;
  }
  return size;
}

template <class T, int kPairs, class Shape>
void launch_shape(const HipMaskParams& p, size_t smem, int size, cudaStream_t stream) {
  hip_mask_configure<T, kPairs, Shape>();
  cudaLaunchAttribute attr;
  const cudaLaunchConfig_t cfg = hip_launch_config<Shape>(p.n_requests, size, smem, stream, attr);
  CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel_attention_hip_mask<T, kPairs, Shape>, p));
}

// Few requests (a decode step) run the decode shape in clusters; many, the prefill shape one CTA each.
template <class T, int kPairs>
void prepare_typed(HipMaskParams& p) {
  const size_t cluster_smem = hip_mask_cluster_smem_bytes(p.max_keep);
  const bool few = int64_t(p.n_requests) * 2 <= int64_t(cuda_sm_count()) &&
                   cluster_smem + 64 <= size_t(cuda_smem_optin_bytes());
  if (few) {
    const int size = hip_cluster_size<T, kPairs, HipDecodeShape>(p, cluster_smem);
    if (size > 1) {
      p.cluster_size = size, p.q_stage_rows = 0, p.smem_bytes = cluster_smem;
      return;
    }
  }
  // One CTA per request: the sort buffers, then as many staged query rows (M rows of 16, head_dim x bf16 each) as
  // the request with the most rows needs and shared memory holds (none: the unstaged scoring loop).
  hip_mask_configure<T, kPairs, HipPrefillShape>();
  const int64_t row_bytes = int64_t(p.a.head_dim) * 2, base = int64_t(hip_query_stage_offset(p.max_keep));
  const int64_t want = (int64_t(p.max_rows) * (p.a.n_heads / p.a.n_kv_heads) + 15) / 16 * 16;
  const int64_t room = (int64_t(cuda_smem_optin_bytes()) - 64 - base) / row_bytes / 16 * 16;  // - static smem
  p.cluster_size = 1;
  p.q_stage_rows = int32_t(std::max<int64_t>(0, std::min(want, room)));
  p.smem_bytes = size_t(base + p.q_stage_rows * row_bytes);
}

template <class T, int kPairs>
void launch_typed(const HipMaskParams& p, cudaStream_t stream) {
  if (p.cluster_size > 1) return launch_shape<T, kPairs, HipDecodeShape>(p, p.smem_bytes, p.cluster_size, stream);
  launch_shape<T, kPairs, HipPrefillShape>(p, p.smem_bytes, 1, stream);
}

}  // namespace

// Shared memory of one block: sort keys and slots [n_sort], candidate pieces [n_sort], kept pieces [keep]; in a
// cluster of several CTAs also the keys it scored [n_sort].
size_t hip_mask_smem_bytes(int32_t max_keep) { return hip_sort_smem_bytes(max_keep); }

size_t hip_mask_cluster_smem_bytes(int32_t max_keep) {
  return hip_mask_smem_bytes(max_keep) + size_t(pow2_at_least(2 * max_keep)) * sizeof(uint64_t);
}

void prepare_attention_hip_mask(HipMaskParams& p) {
  if (p.max_keep < 1 || p.max_keep > kHipMaxKeep || p.a.head_dim > kAttentionMaxHeadDim || p.a.head_dim % 16 != 0) {
    std::fprintf(stderr, "lcllm: HiP mask: keep %d or head_dim %d out of range\n", p.max_keep, p.a.head_dim);
    std::abort();
  }
  const bool fp8 = p.a.kv.dtype == KvDtype::KV_DTYPE_FP8_E4M3, wide = p.a.head_dim > 128;
  if (fp8) {
    wide ? prepare_typed<uint8_t, kMaxPairsPerLane>(p) : prepare_typed<uint8_t, 2>(p);
  } else {
    wide ? prepare_typed<uint16_t, kMaxPairsPerLane>(p) : prepare_typed<uint16_t, 2>(p);
  }
}

void launch_attention_hip_mask(const HipMaskParams& p, cudaStream_t stream) {
  if (p.n_requests == 0) return;
  if (p.cluster_size < 1) {
    std::fprintf(stderr, "lcllm: HiP mask launched without prepare_attention_hip_mask\n");
    std::abort();
  }
  const bool fp8 = p.a.kv.dtype == KvDtype::KV_DTYPE_FP8_E4M3, wide = p.a.head_dim > 128;
  if (fp8) {
    wide ? launch_typed<uint8_t, kMaxPairsPerLane>(p, stream) : launch_typed<uint8_t, 2>(p, stream);
  } else {
    wide ? launch_typed<uint16_t, kMaxPairsPerLane>(p, stream) : launch_typed<uint16_t, 2>(p, stream);
  }
}

}  // namespace lcllm
