// The keys one split-KV decode block walks (shared by the CUDA-core and tensor-core decode kernels): a dense range
// [row_begin, row_end), or the step plan's key set {lo, sink_end, recent_begin, hi, selection list}.
#pragma once
#include <cstdint>

#include "kernels/attention.h"

namespace lcllm {

// First index of the ascending a[0, n) holding a value >= x, found by the whole block together: each round every
// thread tests one evenly spaced sample and __syncthreads_count narrows the range by blockDim.x (a 2048-entry
// selection takes two rounds of one load per thread instead of 11 dependent loads per thread). Every thread of the
// block must call it with the same arguments.
__device__ __forceinline__ int32_t block_lower_bound(const int32_t* a, int32_t n, int32_t x) {
  int32_t lo = 0, hi = n;  // the answer lies in [lo, hi]
  while (hi > lo) {
    const int32_t step = (hi - lo + int32_t(blockDim.x) - 1) / int32_t(blockDim.x);
    const int32_t idx = lo + int32_t(threadIdx.x) * step;
    const int32_t c = __syncthreads_count(idx < hi && __ldg(a + idx) < x);  // the first c samples are < x
    if (c == 0) break;
    hi = min(hi, lo + c * step);
    lo += (c - 1) * step + 1;
  }
  return lo;
}

// The logical keys 0..n-1 a block of (row r, kv head) walks: [lo, lo + n_a), list[0, n_l), [recent_begin, ...).
// A dense range is n_a = n. Every thread of the block computes the same (called by all threads together).
struct BlockKeys {
  int32_t n, lo, n_a, n_l, recent_begin;
  const int32_t* list;
  __device__ __forceinline__ int32_t position(int32_t i) const {
    if (i < n_a) return lo + i;
    if (i < n_a + n_l) return __ldg(list + (i - n_a));
    return recent_begin + (i - n_a - n_l);
  }
};

template <bool kKeySets>
__device__ __forceinline__ BlockKeys block_keys(const DecodeParams& p, int32_t r, int32_t kvh) {
  BlockKeys k;
  if (!kKeySets) {
    k.lo = p.a.row_begin[r];
    k.n = k.n_a = p.a.row_end[r] - k.lo;
    k.n_l = 0;
    k.recent_begin = p.a.row_end[r];
    k.list = nullptr;
    return k;
  }
  const int64_t item = int64_t(r) * p.a.n_kv_heads + kvh;
  const int32_t* set = p.ks.sets + item * 5;  // KeySet {lo, sink_end, recent_begin, hi, list}
  const int32_t lo = set[0], sink_end = set[1], recent_begin = set[2], hi = set[3], slot = set[4];
  k.lo = lo;
  k.n_a = sink_end - lo;
  k.recent_begin = recent_begin;
  k.n_l = 0;
  k.list = nullptr;
  if (slot >= 0) {
    const int64_t list_id = int64_t(slot) * p.ks.sel_items + item;
    const int32_t* all = p.ks.sel_positions + list_id * p.ks.sel_stride;
    const int32_t count = p.ks.sel_count[list_id];
    // TidalDecode's SPARSE layers keep no sinks or window of their own: the whole selection usually lies inside
    // [sink_end, recent_begin), which its two ends show (one broadcast load each, no search and no barrier; the
    // test is uniform over the block, so the searches below still run on all threads together or on none).
    const bool first_in = count == 0 || __ldg(all) >= sink_end;
    const bool last_in = count == 0 || __ldg(all + count - 1) < recent_begin;
    const int32_t first = first_in ? 0 : block_lower_bound(all, count, sink_end);
    k.list = all + first;
    k.n_l = last_in ? count - first : block_lower_bound(k.list, count - first, recent_begin);
  }
  k.n = k.n_a + k.n_l + (hi - recent_begin);
  return k;
}

// Where a selecting (row, kv head) stores its scores (DecodeKeySets), or null.
template <bool kKeySets>
__device__ __forceinline__ float* score_store(const DecodeParams& p, int32_t r, int32_t kvh, int32_t h0) {
  if (!kKeySets || p.ks.select_k == nullptr || p.ks.select_k[int64_t(r) * p.a.n_kv_heads + kvh] <= 0) return nullptr;
  const int64_t span = p.a.row_end[r] - p.a.row_begin[r];
  return p.ks.scores + p.ks.score_offset[r] + int64_t(h0) * span;
}


}  // namespace lcllm
