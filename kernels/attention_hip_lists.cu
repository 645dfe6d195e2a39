// HiP's key lists (see attention_hip.h): each (row, KV head) item's positions from its mask's blocks — the host's
// upload, this layer's search left on the device, or a sequence's cached decode mask (aged by a forward dilation)
// — plus the keys from all_from to the row; and the copy of a search's blocks and coarse stage into the cache rows a
// sequence keeps (hip_cache_keep). The search itself is attention_hip.cu.
#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/attention_hip.h"
#include "kernels/cuda_check.h"
#include "kernels/device_info.h"

namespace lcllm {

namespace {

constexpr int kHipThreads = 256;  // the list kernel's block
constexpr int kHipWarps = kHipThreads / 32;

// Where mask m's blocks are: the host's upload (its CSR range), the rows this layer's search left on the device, or
// the row of the cached decode masks a sequence keeps (hip_cache_keep).
struct HipMaskBlocks {
  const int32_t* blocks;
  int64_t n;
};
__device__ __forceinline__ HipMaskBlocks hip_mask_blocks(const HipListParams& p, int32_t m) {
  const int32_t on_device = p.on_device ? p.on_device[m] : -1;
  const int32_t cache_row = p.cache_row ? p.cache_row[m] : -1;
  if (on_device >= 0) {
    return {p.device_blocks + int64_t(on_device) * p.device_stride, min(p.device_count[on_device], p.device_stride)};
  }
  if (cache_row >= 0) {
    return {p.cache_blocks + int64_t(cache_row) * p.cache_stride, min(p.cache_count[cache_row], p.cache_stride)};
  }
  return {p.blocks + p.indptr[m], p.indptr[m + 1] - p.indptr[m]};
}

// Exclusive prefix sum of x over a group of kGroup threads (a warp, or the whole CTA), and the group's total.
template <int kGroup>
__device__ __forceinline__ void hip_group_scan(int32_t x, int32_t* warp_total, int32_t& before, int32_t& total) {
  const int32_t lane = int32_t(threadIdx.x) & 31, warp = int32_t(threadIdx.x) >> 5;
  int32_t inc = x;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const int32_t t = __shfl_up_sync(0xffffffffu, inc, off);
    if (lane >= off) inc += t;
  }
  if constexpr (kGroup == 32) {
    before = inc - x;
    total = __shfl_sync(0xffffffffu, inc, 31);
  } else {
    static_assert(kGroup == kHipThreads, "a group is a warp or the CTA");
    __syncthreads();  // the previous call's reads of warp_total are done
    if (lane == 31) warp_total[warp] = inc;
    __syncthreads();
    before = inc - x;
    total = 0;
#pragma unroll
    for (int w = 0; w < kHipWarps; ++w) {
      before += w < warp ? warp_total[w] : 0;
      total += warp_total[w];
    }
  }
}

// kGroup threads per item: a warp for launches of many items (prefill rows), the CTA for few (a decode step's rows
// x KV heads, where a warp walking 256 blocks 32 at a time took about 19 us at 1M on the H100, as long as the
// attention reading the list: bench/results/hip_decode_graphs_h100_2026-12-06/). Each thread takes one block of a
// tile of kGroup: a reused mask's block b stands for blocks [b, b + shift], and its run starts after the previous
// block's run ends (read from memory; the runs of ascending blocks end ascending), so the union is ascending and
// distinct; the group's scan places the runs, then [tail, hi) follows.
template <int kGroup>
__global__ void __launch_bounds__(kHipThreads) kernel_attention_hip_lists(HipListParams p) {
  __shared__ int32_t warp_total[kHipWarps];
  const int32_t rank = int32_t(threadIdx.x) % kGroup;
  const int64_t item = int64_t(blockIdx.x) * (kHipThreads / kGroup) + int32_t(threadIdx.x) / kGroup;
  if (item >= p.n_items) return;  // whole groups (a CTA group's item always exists)
  const int32_t* s = p.sets + item * 5;
  const int32_t lo = s[0], hi = s[3], list = s[4], m = p.mask_of[item];
  int32_t* out = p.out_positions + item * p.stride;
  if (list != p.slot || m < 0) {
    if (rank == 0) p.out_count[item] = 0;
    return;
  }
  const int64_t bs = p.block_size[m];
  const int32_t tail = max(lo, min(hi, p.all_from[m]));
  const int64_t shift = p.shift ? p.shift[m] : 0;
  const HipMaskBlocks mb = hip_mask_blocks(p, m);
  int32_t base = 0;  // positions written so far (the same in every thread of the group)
  for (int64_t i0 = 0; i0 < mb.n; i0 += kGroup) {
    const int64_t i = i0 + rank;
    int32_t first = 0, len = 0;
    if (i < mb.n) {
      const int64_t b = mb.blocks[i];
      const int64_t run_from = i > 0 ? max(b, int64_t(mb.blocks[i - 1]) + shift + 1) : b;
      const int64_t a = max(run_from * bs, int64_t(lo)), e = min((b + shift + 1) * bs, int64_t(tail));
      if (e > a) first = int32_t(a), len = int32_t(e - a);
    }
    int32_t before = 0, total = 0;
    hip_group_scan<kGroup>(len, warp_total, before, total);
    for (int32_t t = 0; t < len; ++t) {
      if (base + before + t < p.stride) out[base + before + t] = first + t;
    }
    base += total;
  }
  for (int32_t j = tail + rank; j < hi; j += kGroup) {
    const int32_t at = base + (j - tail);
    if (at < p.stride) out[at] = j;
  }
  base += max(0, hi - tail);
  if (rank == 0) {
    p.out_count[item] = min(base, p.stride);
    if (base > p.stride) atomicExch(p.overflow, 1);
  }
}

__global__ void __launch_bounds__(kHipThreads) kernel_attention_hip_cache_copy(HipCacheCopyParams p) {
  const int32_t* pair = p.pairs + 3 * int64_t(blockIdx.x);
  const int32_t req = pair[0], row = pair[1];
  const int32_t n = min(p.src_count[req], min(p.src_stride, p.dst_stride));
  const int32_t* src = p.src_blocks + int64_t(req) * p.src_stride;
  int32_t* dst = p.dst_blocks + int64_t(row) * p.dst_stride;
  for (int32_t i = int32_t(threadIdx.x); i < n; i += kHipThreads) dst[i] = src[i];
  if (threadIdx.x == 0) p.dst_count[row] = n;
  if (pair[2] == 0 || p.src_stage == nullptr) return;
  const int32_t ns = min(p.src_stage_count[req], min(p.src_stride, p.dst_stride));  // pieces
  const int32_t* ss = p.src_stage + int64_t(req) * 2 * p.src_stride;
  int32_t* ds = p.dst_stage + int64_t(row) * 2 * p.dst_stride;
  for (int32_t i = int32_t(threadIdx.x); i < 2 * ns; i += kHipThreads) ds[i] = ss[i];
  if (threadIdx.x == 0) p.dst_stage_count[row] = ns;
}

}  // namespace

void launch_attention_hip_cache_copy(const HipCacheCopyParams& p, cudaStream_t stream) {
  if (p.n_pairs == 0) return;
  kernel_attention_hip_cache_copy<<<unsigned(p.n_pairs), kHipThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

void launch_attention_hip_lists(const HipListParams& p, cudaStream_t stream) {
  if (p.n_items == 0) return;
  // Few items (a decode step): a CTA each, so every SM's share of the work is one short scan; many (prefill rows):
  // a warp each.
  if (int64_t(p.n_items) <= 4 * int64_t(cuda_sm_count())) {
    kernel_attention_hip_lists<kHipThreads><<<unsigned(p.n_items), kHipThreads, 0, stream>>>(p);
    CUDA_CHECK_LAUNCH();
    return;
  }
  const int64_t blocks = (int64_t(p.n_items) + kHipWarps - 1) / kHipWarps;
  kernel_attention_hip_lists<32><<<unsigned(blocks), kHipThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lcllm
