// HiP's hierarchical key-block mask estimation on the GPU (arXiv 2406.09827 §3.1, with InfiniteHiP's descent
// representative, arXiv 2502.08910 §4; E9 item 3). One CTA (prefill) or one cluster of CTAs (decode) per mask
// request runs the rule of src/attention/hip_mask.h (hip_select_blocks) with the score of src/backend/backend.h
// Backend::attention_hip_blocks: score(j) = the largest scaled logit q·k_j over the request's query rows that see j
// (query_pos >= j) and the query heads of its KV head. The CPU backend is the reference (tests/cuda).
//
//   1. the candidate blocks [lo / bs, (hi - 1) / bs + 1) are cut into keep = k / bs nearly equal chunks;
//   2. every chunk of more than one block splits into halves; each piece is scored at its centre key, or (descent,
//      decode rows) by the better of its halves' centre keys, recursively, down to one key: the best centre met
//      (InfiniteHiP §4);
//   3. the keep best pieces stay (score descending, ties to the lower block), until every piece is one block.
// A request with at most keep blocks keeps them all (the mask is exact: k >= context equals FULL).
#pragma once
#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

#include "kernels/attention.h"

namespace lcllm {

// row_begin, row_end, kv_head, lo, hi, k, block_size_k, descent (0/1), start_row (-1: step 1's chunks), start_shift,
// stage_round (-1: none): backend.h HipBlockRequest.
constexpr int32_t kHipRequestInts = 11;
constexpr int32_t kHipMaxKeep = 4096;     // k / block_size_k per request (shared memory bounds the sort)

struct HipMaskParams {
  AttentionCommon a;             // q, the layer's pools and block tables, row_seq (HiP heads are never windowed)
  const int32_t* requests;       // [n_requests, kHipRequestInts]
  const int32_t* query_pos;      // [n_rows] position of every query row
  int32_t* out_blocks;           // [n_requests, max_keep] ascending block indices
  int32_t* out_count;            // [n_requests] blocks kept
  // Stage-wise refresh (InfiniteHiP §4; src/attention/hip_mask.h hip_select_blocks_staged). A request with
  // start_row >= 0 starts from that row's pieces, each end aged start_shift blocks (hip_dilate_pieces), when the row
  // holds exactly keep of them, ascending, disjoint and inside its candidate blocks (else from step 1's chunks).
  const int32_t* start_pieces;   // [rows, 2 * start_stride] (begin, end) block pairs, or null
  const int32_t* start_count;    // [rows] pieces of each row
  int32_t start_stride;          // pieces per row
  // A request with stage_round >= 0 stores the pieces kept after that many rounds (count 0: the search was exact
  // or ended before). Null when no request stores one.
  int32_t* stage_out;            // [n_requests, 2 * max_keep] (begin, end) block pairs
  int32_t* stage_count;          // [n_requests]
  int32_t n_requests;
  int32_t max_keep;              // the largest k / block_size_k of the requests (<= kHipMaxKeep)
  int32_t max_rows;              // the most query rows (row_end - row_begin) of a request
  // Set by prepare_attention_hip_mask, on the host before the launch is enqueued (so that a recorded step's graph
  // capture makes no occupancy query, and the launch's shape is part of its parameters):
  int32_t cluster_size;          // CTAs per request: > 1 the decode shape in clusters, 1 the prefill shape
  int32_t q_stage_rows;          // prefill shape: (row, head) pairs of staged query fragments a CTA holds
  size_t smem_bytes;             // dynamic shared memory per CTA
};

// HiP's lists into a selection slot (backend.h Backend::selection_write_hip; the host rule is hip_expand_lists):
// one warp per item writes its mask's block keys below the tail (each block dilated forward by the mask's shift)
// and then [tail, hi), tail = max(lo, min(hi, all_from)), ascending. Lists are cut at `stride` (the step plan sizes the slot so that none is).
struct HipListParams {
  const int64_t* indptr;       // [n_masks + 1]
  const int32_t* blocks;       // [nnz] ascending per mask
  const int32_t* block_size;   // [n_masks]
  const int32_t* all_from;     // [n_masks]
  const int32_t* mask_of;      // [n_items] -1: none
  const int32_t* on_device;    // [n_masks] or null: >= 0: the mask's blocks are device_blocks row on_device[m]
  const int32_t* device_blocks;  // [requests, device_stride] a HiP search's output (HipMaskParams::out_blocks)
  const int32_t* device_count;   // [requests] (HipMaskParams::out_count)
  int32_t device_stride;
  const int32_t* shift;        // [n_masks] or null: a reused mask's forward dilation in blocks (hip_dilate_forward:
                               // block b stands for blocks [b, b + shift])
  const int32_t* cache_row;    // [n_masks] or null: >= 0: the mask's blocks are row cache_row[m] of the cache
  const int32_t* cache_blocks; // [rows, cache_stride] the backend's cached decode masks (HipCacheCopyParams::dst_*)
  const int32_t* cache_count;  // [rows]
  int32_t cache_stride;
  const int32_t* sets;         // [n_items, 5] the layer's KeySet fields (lo, sink_end, recent_begin, hi, list)
  int32_t* out_positions;      // [n_items, stride] the slot's lists
  int32_t* out_count;          // [n_items]
  int32_t* overflow;           // set to 1 when a list was longer than stride (a bug in the slot's sizing)
  int32_t n_items, stride, slot;
};
void launch_attention_hip_lists(const HipListParams& p, cudaStream_t stream);

// Copies search requests' blocks into cached-mask rows (Backend::hip_cache_keep): entry i = (request, row, stage)
// copies src row `request` (count src_count[request]) into dst row `row`, and with stage != 0 also the request's
// stored stage into the row's stage. One CTA per entry.
struct HipCacheCopyParams {
  const int32_t* pairs;        // [n_pairs, 3] (request, row, stage)
  const int32_t* src_blocks;   // [requests, src_stride] a search's output (HipMaskParams::out_blocks)
  const int32_t* src_count;    // [requests]
  int32_t* dst_blocks;         // [rows, dst_stride]
  int32_t* dst_count;          // [rows]
  const int32_t* src_stage;    // [requests, 2 * src_stride] (HipMaskParams::stage_out), or null
  const int32_t* src_stage_count;  // [requests]
  int32_t* dst_stage;          // [rows, 2 * dst_stride] (begin, end) pairs
  int32_t* dst_stage_count;    // [rows]
  int32_t src_stride, dst_stride, n_pairs;
};
void launch_attention_hip_cache_copy(const HipCacheCopyParams& p, cudaStream_t stream);

// Dynamic shared memory one block needs for masks of up to max_keep blocks: alone, and in a cluster of several
// CTAs per request (decode; launch_attention_hip_mask falls back to one CTA where that does not fit).
size_t hip_mask_smem_bytes(int32_t max_keep);
size_t hip_mask_cluster_smem_bytes(int32_t max_keep);
// Chooses the launch's shape (cluster_size, q_stage_rows, smem_bytes) for the current device: host work only (the
// kernel's attribute opt-ins and occupancy queries, once per shape), to be called before the launch is enqueued.
void prepare_attention_hip_mask(HipMaskParams& p);
void launch_attention_hip_mask(const HipMaskParams& p, cudaStream_t stream);

}  // namespace lcllm
