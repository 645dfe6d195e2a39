// Causal GQA attention over the paged KV cache (bf16, or fp8 with per-vector scales: kv/kv_quant.h; CSR block
// tables), the semantics of
// src/backend/cpu/cpu_attention.cpp: query row r of sequence s at position pos sees keys j with
// row_begin[r] <= j < row_end[r] (begin = max(0, pos - W + 1) with a sliding window W, end = min(pos + 1,
// kv_len[s])); key j lives in page page_indices[page_indptr[s] + j / page_size], row j % page_size.
// Scores: s = (q·k)·scale, then cap·tanh(s/cap) when softcap > 0. A row that sees no key gets zeros.
//
// The host computes the per-row ranges once per call (they are plain data of the step), so kernels never
// recompute window or causal rules.
#pragma once
#include <cstdint>

#include <cuda_runtime_api.h>

#include "kv/kv_layout.h"

namespace lcllm {

constexpr int32_t kAttentionMaxHeadDim = 256;   // any even head_dim up to this
constexpr int32_t kPrefillTileRows = 16;        // query rows per prefill block of v1 (all from one sequence)
constexpr int32_t kDecodeMaxGroup = 8;          // query heads per decode block (larger GQA groups are chunked)
constexpr int32_t kAttentionMaxKvHeads = 64;    // KV heads per layer the head map below can name

struct AttentionCommon {
  const float* q;                // [n_rows, n_heads, head_dim]
  float* out;                    // [n_rows, n_heads, head_dim]
  // [n_pages, page_size, n_kv_heads, head_dim] one layer, of kv.dtype: bf16 (uint16_t) or fp8 e4m3 (uint8_t)
  const void* k_pool;
  const void* v_pool;            // same
  const uint16_t* kv_scale;      // fp8: [n_pages * page_size, n_kv_heads] K exponent byte | V's << 8; else null
  const int32_t* row_seq;        // [n_rows] sequence of each query row
  const int32_t* row_begin;      // [n_rows] first visible key position
  const int32_t* row_end;        // [n_rows] one past the last visible key position
  const int32_t* page_indptr;    // [n_seq + 1]
  const int32_t* page_indices;   // [nnz] page ids
  int32_t n_rows, n_heads, n_kv_heads, head_dim, page_size;
  float scale, softcap;
  KvLayout kv;                   // offsets of (slot, stored head) in k_pool / v_pool (kv/kv_layout.h)
  // Where each KV head's keys live (kv/kv_window.h). kv_index[h] is head h's index among the heads of its storage:
  // the page pool's stored heads, or — bit h of ring_heads set — the per-sequence rings of windowed (streaming)
  // heads, which hold positions [0, ring_sink) and the latest ones at ring slot ring_sink + (p - ring_sink) %
  // (ring_len - ring_sink). Without windowed heads kv_index[h] = h and ring_heads = 0.
  int8_t kv_index[kAttentionMaxKvHeads];
  uint64_t ring_heads;
  const void* k_ring;            // [ring sequences * ring_len, ring heads, head_dim] of ring_kv.dtype, one layer
  const void* v_ring;            // same
  const uint16_t* ring_scale;    // fp8: [ring sequences * ring_len, ring heads] as kv_scale; else null
  KvLayout ring_kv;              // page_size = ring_len
  const int32_t* ring_base;      // [n_seq] first ring slot of each sequence of the batch
  int32_t ring_sink;
};

// Key sets for prefill tiles (the wgmma kernel only, attention_prefill_wgmma.h): with sets non-null a tile walks its
// rows' KeySets (src/backend/backend.h) for its KV head instead of their ranges. The host makes sure a tile's rows
// share their sink range and that each row's list is the tile's last row's list cut at the row's hi (HiP's rows of
// one query block), with recent_begin not decreasing along the tile.
struct PrefillKeySets {
  const int32_t* sets;           // [n_rows * n_kv_heads, 5] KeySet fields, or null: rows use [row_begin, row_end)
  const int32_t* sel_positions;  // [n_slots, sel_items, sel_stride] ascending selection lists
  const int32_t* sel_count;      // [n_slots, sel_items] entries of each list
  int32_t sel_items, sel_stride;
};

struct PrefillParams {
  AttentionCommon a;
  const int32_t* tile_row0;   // [n_tiles] first query row of each tile
  const int32_t* tile_rows;   // [n_tiles] rows in the tile, 1..attention_prefill_tile_rows(...), one sequence
  int32_t n_tiles;
  PrefillKeySets ks;          // sets == nullptr: dense ranges
};

// Split-KV flash decoding: block (row, kv head, head chunk, split) reduces keys
// [row_begin + split * split_len, min(row_end, row_begin + (split + 1) * split_len)) for up to kDecodeMaxGroup query
// heads sharing the kv head (each K/V element is read once per block), writes an unnormalised partial
// (o, max, sumexp); a merge kernel combines the splits exactly (ARCHITECTURE.md §4.4).
//
// Key sets (src/backend/backend.h KeySet; the step plan's sparse policies): with `sets` non-null the block of
// (row, kv head) walks the logical keys 0..n-1 of its set — [lo, sink_end), then the run of its selection list
// inside [sink_end, recent_begin) (found by binary search: lists are ascending), then [recent_begin, hi) — split
// into the same split_len pieces as a range. A set spelling FULL's range visits the same positions on the same
// lanes in the same order as the range kernel, so both give the same bits when the launch plans the same splits
// (decode steps whose key-set rows all cover FULL's keys; a layer mixing FULL heads with streaming ones plans more
// splits for its FULL heads and so differs from dense attention in the last bits).
struct DecodeKeySets {
  const int32_t* sets;           // [n_rows * n_kv_heads, 5] KeySet fields, or null: rows use [row_begin, row_end)
  const int32_t* sel_positions;  // [n_slots, sel_items, sel_stride] ascending selection lists
  const int32_t* sel_count;      // [n_slots, sel_items] entries of each list
  int32_t sel_items, sel_stride;
  // Top-k selection's input (kernels/attention_select.h): items with select_k > 0 also store their scores in log2
  // units, row r, head h, key i (position row_begin[r] + i) at scores[score_offset[r] + h * span_r + i], span_r =
  // row_end[r] - row_begin[r]; the merge then writes every (row, head)'s log2-sum-exp to lse2.
  const int32_t* select_k;       // [n_rows * n_kv_heads] or null
  float* scores;
  const int64_t* score_offset;   // [n_rows]
  float* lse2;                   // [n_rows, n_heads]
  // The rows this launch computes (ascending row indices into q/out), or null: every row. A step mixing prefill
  // rows (dense, the prefill kernel) with sparse decode rows runs only the latter here. Partials are indexed by the
  // position in this list.
  const int32_t* rows;
  int32_t n_listed_rows;
};

struct DecodeParams {
  AttentionCommon a;
  int32_t n_splits;
  int32_t split_len;
  int32_t tensor_cores;  // 1: the tensor-core kernel runs (DecodePlan::tensor_cores), 0: the CUDA-core one
  float* part_o;    // [n_rows, n_heads, n_splits, head_dim]
  float* part_ml;   // [n_rows, n_heads, n_splits, 2] (running max in log2 units, sum of exp2)
  DecodeKeySets ks; // sets == nullptr: dense ranges
  // 1: every row is its sequence's only query row, so the one key of a row written by the kernel before this one in
  // the stream (rope + KV write) is its last; the tensor-core kernel then copies its first tiles of older keys before
  // griddepcontrol.wait (kernels/pdl.cuh), overlapping that kernel. 0: every copy after the wait.
  int32_t old_keys_early;
};

// Version 2 kernels (vectorised split-KV decode for head_dim 64/128/256; tensor-core prefill for head_dim 64/128/256)
// are used where they apply; other head_dims run the version 1 kernels. (Earlier experiment switches — forcing v1,
// q as bf16 hi + lo in v2 prefill — are retired: tools/bench/dev/README.md.)

// Query rows per prefill tile that launch_attention_prefill expects for this head_dim, GQA group size, cache dtype
// and tile kind (key_sets: PrefillParams::ks.sets set). v2 and v3 pack heads of a group with positions:
// M rows / (largest power of two <= 8 dividing group) rows, M = 128, or 192 for v3's dense tiles at head_dim 64
// over bf16.
int32_t attention_prefill_tile_rows(int32_t head_dim, int32_t group, KvDtype dtype, bool key_sets);

// Key splits for decode. v2: about one wave of resident (row, kv head, split) blocks, each split a multiple of 64
// keys (the kernel's step); v1: ~4 blocks per SM. max_span = the most keys any (row, kv head) has; work_span = the
// largest mean over a row's kv heads (= max_span for dense rows). Splits are sized from work_span, so when some
// heads of a layer have few keys (streaming heads beside full ones) the others get more splits and the wave stays
// full; heads with fewer keys leave their extra splits at once.
// The kernel is chosen here and the splits sized for its occupancy: the tensor-core kernel where it applies
// (attention_decode_tc_applies; stores_scores: a SELECT layer), else v2 (or v1).
struct DecodePlan {
  int32_t n_splits, split_len;
  bool tensor_cores;
};
DecodePlan plan_attention_decode(int32_t n_rows, int32_t n_heads, int32_t n_kv_heads, int32_t head_dim,
                                 int32_t max_span, int32_t work_span, KvDtype dtype = KvDtype::KV_DTYPE_BF16,
                                 bool stores_scores = false);

void launch_attention_prefill(const PrefillParams& p, cudaStream_t stream);
void launch_attention_decode(const DecodeParams& p, cudaStream_t stream);

// Tensor-core split-KV decode (kernels/attention_decode_tc.cu), bf16 and fp8 caches: GQA groups up to 16 heads,
// head_dim 64/128, ranges and key sets; SELECT layers (which store their scores), larger groups and head_dim 256
// keep the CUDA-core v2 kernel.
// plan_attention_decode picks it where it applies (DecodeParams::tensor_cores) and plans for its occupancy.
bool attention_decode_tc_applies(int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, KvDtype dtype,
                                 bool stores_scores);
int attention_decode_tc_occupancy(int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, KvDtype dtype);
void launch_attention_decode_tc(const DecodeParams& p, cudaStream_t stream);

}  // namespace lcllm
