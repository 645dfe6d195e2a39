// HiP mask estimation (see attention_hip.h for the rule). One cluster of CTAs per request: one 256-thread CTA for
// prefill's many requests; up to 16 512-thread CTAs for decode's few (one per sequence and KV head), which split each
// round's candidates and exchange their sort keys through distributed shared memory (HipPrefillShape,
// HipDecodeShape):
//   - pieces live in shared memory: the kept ones [keep] and the candidates at fixed slots 2i, 2i + 1 (the halves of
//     kept piece i; an unsplit piece keeps slot 2i and leaves 2i + 1 empty);
//   - a warp scores 4 candidates at a time (prefill: centre keys) or descends 2 (decode), two levels per dependent
//     load (the halves' centres and the quarters' centres, 6 keys): its lanes hold the keys' K rows in registers
//     (pairs of dims lane, lane + 32, ...), read each query (row, head) of the request once per key set, and sum the
//     lanes' partial dots with five shuffles per key; a key's score is the largest scaled dot;
//   - the top keep candidates are the ones with the largest 64-bit keys: the score's order-preserving bits above
//     (0xffffffff - first block) below, so equal scores go to the lower block, as the CPU's stable sort; up to 1024
//     candidates each counts the larger keys (its rank), more are bitonic-sorted;
//   - the final blocks are written ascending (rank = how many kept blocks are smaller).
// Cost: each round scores 2 keep candidates, each with about 2 log2(piece keys) keys of (rows x group) dots of
// head_dim; rounds = log2(blocks / keep). Decode is latency-bound: a round's critical path is one dependent K-row
// load per two descent levels, so the rounds' levels (not the bytes) set its time (docs/KERNEL_NOTES.md, HiP).
#include "kernels/attention_hip.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include "kernels/attention_common.cuh"
#include "kernels/cuda_check.h"
#include "kernels/device_info.h"

namespace lcllm {

namespace cg = cooperative_groups;

namespace {

constexpr int kHipThreads = 256;  // the list kernel's block
constexpr int kHipWarps = kHipThreads / 32;
// The search's two shapes. Prefill: many requests of one CTA each, centre keys (one level): 256 threads, a warp
// scores 4 candidates. Decode: a few requests of a cluster each, descents of log2(piece keys) levels, each level one
// dependent K-row load: 512 threads (16 clusters' worth of warps cover a round of 512 candidates in one pass), a warp
// descends 2 candidates two levels per load (their 2 children's and 4 grandchildren's centres: 12 K rows in flight).
struct HipPrefillShape {
  static constexpr int kThreads = 256, kCand = 4, kLook = 1, kMinBlocks = 2;
};
struct HipDecodeShape {
  static constexpr int kThreads = 512, kCand = 2, kLook = 2, kMinBlocks = 1;
};
constexpr int kHipRankMax = 1024;  // rounds of up to this many candidates (keep <= 512) select by rank, not by sort
constexpr int kMaxPairsPerLane = kAttentionMaxHeadDim / 2 / 32;  // head_dim 256: 4 pairs of dims per lane

__host__ __device__ inline int32_t pow2_at_least(int32_t n) {
  int32_t p = 2;
  while (p < n) p *= 2;
  return p;
}

// Larger float -> larger unsigned (the usual sign flip); -inf sorts below every finite score.
__device__ __forceinline__ uint32_t ordered_bits(float x) {
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// score(j) of the rule for C candidate keys at once: max over rows r in [r0, r1) with query_pos[r] >= j and the
// group's query heads of (q · k_j) * scale. The C K rows are loaded together (C loads in flight per warp: the
// search is latency-bound) and each q vector is read once for all of them. Invalid candidates score -inf. Every
// lane returns the scores.
template <class T, int kPairs, int C>
__device__ void hip_scores(const HipMaskParams& p, const KvHeadSourceT<T>& src, int32_t r0, int32_t r1, int32_t kvh,
                           const int32_t (&j)[C], const bool (&valid)[C], int32_t lane, float (&best)[C]) {
  const AttentionCommon& a = p.a;
  const int32_t hd = a.head_dim, pairs = hd / 2, group = a.n_heads / a.n_kv_heads;
  float2 kv[C][kPairs];
#pragma unroll
  for (int c = 0; c < C; ++c) {
    best[c] = -INFINITY;
    const int64_t slot = valid[c] ? src.slot(j[c]) : 0;
    const T* kr = src.k + slot * src.slot_stride;
    float scale = 1.f;
    if constexpr (sizeof(T) == 1) {
      if (valid[c]) scale = fp8_scale_of(uint32_t(src.scale[slot * src.scale_stride]) & 0xffu);
    }
#pragma unroll
    for (int t = 0; t < kPairs; ++t) {
      const int32_t pr = lane + 32 * t;
      kv[c][t] = make_float2(0.f, 0.f);
      if (valid[c] && pr < pairs) {
        const float2 x = kv_pair_to_f2(kr + 2 * pr);
        kv[c][t] = make_float2(x.x * scale, x.y * scale);
      }
    }
  }
  for (int32_t r = r0; r < r1; ++r) {
    const int32_t pos = p.query_pos[r];
    for (int32_t h = kvh * group; h < (kvh + 1) * group; ++h) {
      const float* q = a.q + (int64_t(r) * a.n_heads + h) * hd;
      float2 qv[kPairs];
#pragma unroll
      for (int t = 0; t < kPairs; ++t) {
        const int32_t pr = lane + 32 * t;
        qv[t] = pr < pairs ? *reinterpret_cast<const float2*>(q + 2 * pr) : make_float2(0.f, 0.f);
      }
#pragma unroll
      for (int c = 0; c < C; ++c) {
        float part = 0.f;
#pragma unroll
        for (int t = 0; t < kPairs; ++t) {
          if (lane + 32 * t < pairs) {
            part = fmaf(qv[t].x, kv[c][t].x, part);
            part = fmaf(qv[t].y, kv[c][t].y, part);
          }
        }
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) part += __shfl_xor_sync(0xffffffffu, part, off);
        if (valid[c] && pos >= j[c]) best[c] = fmaxf(best[c], part * a.scale);  // causal: rows that see j
      }
    }
  }
}

// One cluster of n_ctas CTAs per request (cg::this_cluster(): 1 for prefill's many requests; up to 16 for decode's
// few, so that one decode step's handful of requests fills the GPU instead of 8 of its 132 SMs). CTA rank c scores
// the candidates its warps own (idx / (kWarps * kCand) % n_ctas == c); each CTA then gathers every candidate's sort
// key from its owner's shared memory (the cluster's distributed shared memory), sorts redundantly and keeps the same
// pieces, so the only exchange is one cluster barrier per round. Every early return depends on the request only, so
// either the whole cluster returns or the whole cluster reaches every barrier.
// kPairs: pairs of dims per lane (head_dim <= 64 * kPairs), so that head_dim 128 holds half the registers of 256.
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
  int32_t* out = p.out_blocks + int64_t(req) * p.max_keep;
  const int32_t tid = int32_t(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const bool writer = rank == 0;  // the CTA that writes the request's output
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
  uint64_t* own = reinterpret_cast<uint64_t*>(ke + keep);             // [2][n_sort] keys this CTA scored, by round
                                                                       // parity (clusters of more than one CTA only)
  __shared__ int32_t split_any;

  // Step 1: keep chunks, the first n_blocks % keep one block longer.
  const int32_t base = n_blocks / keep, extra = n_blocks % keep;
  for (int32_t i = tid; i < keep; i += kThreads) {
    kb[i] = first + i * base + min(i, extra);
    ke[i] = kb[i] + base + (i < extra ? 1 : 0);
  }
  const KvHeadSourceT<T> src = kv_head_source<T>(p.a, p.a.row_seq[r0], kvh);
  for (int32_t round = 0;; ++round) {
    if (tid == 0) split_any = 0;
    __syncthreads();
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
    // This round's keys go to the sort buffer directly (one CTA) or to this CTA's own buffer for the cluster.
    uint64_t* scored = n_ctas == 1 ? key : own + (round & 1) * n_sort;
    // Score every candidate (keys clipped to [lo, hi), as the CPU rule): at its centre key, or by descent
    // (hip_mask.h): score the centre key of each half, move into the higher (ties to the lower half), until one
    // key is left; the score is the best centre met. Both halves' keys are loaded together (one dependent load per
    // level); every lane holds the same ranges, so the loop is warp-uniform. Keys are rescored where descents
    // overlap (the CPU caches them; the scores are the same).
    for (int32_t c0 = (rank * kWarps + warp) * kCand; c0 < n_sort; c0 += n_ctas * kWarps * kCand) {
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
            // Level 2, within the half just chosen, from the keys already scored.
            const int o = left ? 2 * kCand : 4 * kCand;
            if (!act[o + c]) continue;
            const int32_t m2 = left ? mid_l[c] : mid_r[c];
            if (sc[o + c] >= sc[o + kCand + c]) {
              r[c] = m2;
              s[c] = fmaxf(s[c], sc[o + c]);
            } else {
              l[c] = m2;
              s[c] = fmaxf(s[c], sc[o + kCand + c]);
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
          scored[idx] = valid[c] ? (uint64_t(ordered_bits(s[c] + 0.0f)) << 32) | uint64_t(0xffffffffu - uint32_t(cb[idx]))
                                 : 0;
        }
      }
    }
    if (n_ctas > 1) {
      // Every CTA's keys of this round are written and visible to the cluster. A CTA rewrites this buffer two
      // rounds later, after the next round's barrier, which every reader passes only once it gathered from it.
      cluster.sync();
      for (int32_t i = tid; i < n_sort; i += kThreads) {
        const int32_t owner = (i / (kWarps * kCand)) % n_ctas;
        key[i] = cluster.map_shared_rank(scored, owner)[i];
      }
    }
    __syncthreads();
    // Step 3: the keep best pieces. The keys of real candidates are distinct (the block is in the low bits) and
    // empty slots are 0, below every real key; at least keep candidates are real (every kept piece has a half).
    if (n_sort <= kHipRankMax) {
      // A candidate's rank is the number of larger keys; the keep of rank < keep stay, at their rank. Every thread
      // reads the same key[j] at once (a broadcast): n_sort steps instead of the sort's log2(n_sort)^2 / 2 barriers.
      constexpr int kPer = kHipRankMax / kThreads;
      uint64_t mine[kPer];
      int32_t rank_of[kPer];
#pragma unroll
      for (int t = 0; t < kPer; ++t) {
        const int32_t i = tid + t * kThreads;
        mine[t] = i < n_sort ? key[i] : 0;
        rank_of[t] = 0;
      }
      for (int32_t j = 0; j < n_sort; ++j) {
        const uint64_t x = key[j];
#pragma unroll
        for (int t = 0; t < kPer; ++t) rank_of[t] += x > mine[t] ? 1 : 0;
      }
#pragma unroll
      for (int t = 0; t < kPer; ++t) {
        const int32_t i = tid + t * kThreads;
        if (mine[t] != 0 && rank_of[t] < keep) {
          kb[rank_of[t]] = cb[i];
          ke[rank_of[t]] = ce[i];
        }
      }
      __syncthreads();
      continue;
    }
    // Larger masks: bitonic sort, descending; the first keep are the best pieces.
    for (int32_t i = tid; i < n_sort; i += kThreads) slot_of[i] = i;
    __syncthreads();
    for (int32_t size = 2; size <= n_sort; size <<= 1) {
      for (int32_t stride = size >> 1; stride > 0; stride >>= 1) {
        for (int32_t i = tid; i < n_sort; i += kThreads) {
          const int32_t other = i ^ stride;
          if (other > i) {
            const bool descending = (i & size) == 0;
            const uint64_t x = key[i], y = key[other];
            if (descending ? x < y : x > y) {
              key[i] = y, key[other] = x;
              const int32_t t = slot_of[i];
              slot_of[i] = slot_of[other], slot_of[other] = t;
            }
          }
        }
        __syncthreads();
      }
    }
    for (int32_t i = tid; i < keep; i += kThreads) {
      kb[i] = cb[slot_of[i]];
      ke[i] = ce[slot_of[i]];
    }
    __syncthreads();
  }
  // No CTA leaves while another may still read its shared memory (the last round's gather).
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

__global__ void __launch_bounds__(kHipThreads) kernel_attention_hip_lists(HipListParams p) {
  const int32_t lane = int32_t(threadIdx.x) & 31;
  const int64_t item = int64_t(blockIdx.x) * kHipWarps + (int32_t(threadIdx.x) >> 5);
  if (item >= p.n_items) return;  // whole warps
  const int32_t* s = p.sets + item * 5;
  const int32_t lo = s[0], hi = s[3], list = s[4], m = p.mask_of[item];
  int32_t* out = p.out_positions + item * p.stride;
  if (list != p.slot || m < 0) {
    if (lane == 0) p.out_count[item] = 0;
    return;
  }
  const int64_t bs = p.block_size[m];
  const int32_t tail = max(lo, min(hi, p.all_from[m]));
  int32_t base = 0;  // positions written so far
  // The mask's blocks: from the host's upload, or where this layer's search left them on the device.
  const int32_t on_device = p.on_device ? p.on_device[m] : -1;
  const int32_t* blocks = p.blocks;
  int64_t i_begin = p.indptr[m], i_end = p.indptr[m + 1];
  if (on_device >= 0) {
    blocks = p.device_blocks + int64_t(on_device) * p.device_stride;
    i_begin = 0;
    i_end = min(p.device_count[on_device], p.device_stride);
  }
  for (int64_t i0 = i_begin; i0 < i_end; i0 += 32) {
    const int64_t i = i0 + lane;
    int32_t first = 0, len = 0;
    if (i < i_end) {
      const int64_t b = blocks[i];
      const int64_t a = max(b * bs, int64_t(lo)), e = min((b + 1) * bs, int64_t(tail));
      if (e > a) first = int32_t(a), len = int32_t(e - a);
    }
    int32_t inc = len;  // inclusive scan over the warp's blocks
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      const int32_t t = __shfl_up_sync(0xffffffffu, inc, off);
      if (lane >= off) inc += t;
    }
    const int32_t start = base + inc - len;
    for (int32_t t = 0; t < len; ++t) {
      if (start + t < p.stride) out[start + t] = first + t;
    }
    base += __shfl_sync(0xffffffffu, inc, 31);
  }
  for (int32_t j = tail + lane; j < hi; j += 32) {
    const int32_t at = base + (j - tail);
    if (at < p.stride) out[at] = j;
  }
  base += max(0, hi - tail);
  if (lane == 0) {
    p.out_count[item] = min(base, p.stride);
    if (base > p.stride) atomicExch(p.overflow, 1);
  }
}

// The kernel's opt-ins, once per instantiation and before any occupancy query or launch of it: the largest dynamic
// shared memory (a cluster's key buffers) and clusters of 16 (non-portable).
template <class T, int kPairs, class Shape>
void hip_mask_configure() {
  static std::atomic<bool> done{false};
  if (done.load()) return;
  const int most = cuda_smem_optin_bytes() - 64;  // - the kernel's static shared memory
  CUDA_CHECK(cudaFuncSetAttribute(kernel_attention_hip_mask<T, kPairs, Shape>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize, most));
  CUDA_CHECK(cudaFuncSetAttribute(kernel_attention_hip_mask<T, kPairs, Shape>,
                                  cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  done.store(true);
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

// CTAs per request: enough that one pass of the warps scores every candidate of a round (2 * max_keep), at most
// 16 (a non-portable cluster: one GPC), and no more CTAs than SMs over all requests (a prefill step's thousands of
// requests get one each). Halved while the device cannot hold one cluster of that size.
template <class T, int kPairs, class Shape>
int hip_cluster_size(const HipMaskParams& p, size_t smem) {
  hip_mask_configure<T, kPairs, Shape>();
  const int64_t per_pass = int64_t(Shape::kThreads / 32) * Shape::kCand;
  const int64_t needed = (int64_t(pow2_at_least(2 * p.max_keep)) + per_pass - 1) / per_pass;
  int size = 1;
  while (size < 16 && size < needed && int64_t(p.n_requests) * size * 2 <= int64_t(cuda_sm_count())) size *= 2;
  static std::atomic<uint64_t> fits{0};  // (size << 32 | smem) last found to fit
  for (; size > 1; size /= 2) {
    const uint64_t tag = (uint64_t(size) << 32) | uint64_t(smem);
    if (fits.load() == tag) break;
    cudaLaunchAttribute attr;
    const cudaLaunchConfig_t cfg = hip_launch_config<Shape>(1, size, smem, nullptr, attr);
    int clusters = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, kernel_attention_hip_mask<T, kPairs, Shape>, &cfg) != cudaSuccess) {
      (void)cudaGetLastError();  // a size the device cannot run is an answer, not an error
      clusters = 0;
    }
    if (clusters > 0) {
      fits.store(tag);
      break;
    }
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
void launch_typed(const HipMaskParams& p, cudaStream_t stream) {
  const size_t cluster_smem = hip_mask_cluster_smem_bytes(p.max_keep);
  const bool few = int64_t(p.n_requests) * 2 <= int64_t(cuda_sm_count()) &&
                   cluster_smem + 64 <= size_t(cuda_smem_optin_bytes());
  if (few) {
    const int size = hip_cluster_size<T, kPairs, HipDecodeShape>(p, cluster_smem);
    if (size > 1) return launch_shape<T, kPairs, HipDecodeShape>(p, cluster_smem, size, stream);
  }
  launch_shape<T, kPairs, HipPrefillShape>(p, hip_mask_smem_bytes(p.max_keep), 1, stream);
}

}  // namespace

void launch_attention_hip_lists(const HipListParams& p, cudaStream_t stream) {
  if (p.n_items == 0) return;
  const int64_t blocks = (int64_t(p.n_items) + kHipWarps - 1) / kHipWarps;
  kernel_attention_hip_lists<<<unsigned(blocks), kHipThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

// Shared memory of one block: sort keys and slots [n_sort], candidate pieces [n_sort], kept pieces [keep]; in a
// cluster of several CTAs also the keys it scored, for two rounds [2][n_sort].
size_t hip_mask_smem_bytes(int32_t max_keep) {
  const size_t n_sort = size_t(pow2_at_least(2 * max_keep));
  return n_sort * (sizeof(uint64_t) + sizeof(int32_t) + 2 * sizeof(int32_t)) + size_t(max_keep) * 2 * sizeof(int32_t);
}

size_t hip_mask_cluster_smem_bytes(int32_t max_keep) {
  return hip_mask_smem_bytes(max_keep) + 2 * size_t(pow2_at_least(2 * max_keep)) * sizeof(uint64_t);
}

void launch_attention_hip_mask(const HipMaskParams& p, cudaStream_t stream) {
  if (p.n_requests == 0) return;
  if (p.max_keep < 1 || p.max_keep > kHipMaxKeep || p.a.head_dim > kAttentionMaxHeadDim || p.a.head_dim % 2 != 0) {
    std::fprintf(stderr, "lcllm: HiP mask: keep %d or head_dim %d out of range\n", p.max_keep, p.a.head_dim);
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
