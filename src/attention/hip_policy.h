// Running HIP plan entries for one layer of one step (docs/POLICIES.md, HiP): which key blocks every (query row,
// KV head) keeps. Prefill: the rows of each sequence are cut into query blocks of block_size_q rows, and each
// block gets one mask per KV head from Backend::attention_hip_blocks. Decode: the sequence's single row uses the
// mask cached in its SequencePolicyState while its position is within refresh_every - 1 of the one it was computed
// for (and no other step, of any policy, ran on the sequence since; nor did the group's parameters change),
// dilated forward by the steps it has aged (hip_dilate_forward).
//
// What a HIP row at position pos attends: [0, sink) ∪ the mask's blocks ∪ [all_from, pos] ∪ (pos - recent, pos],
// within what FULL sees. The search covers the keys [sink, first_pos - recent + 1) of the query block (sinks and
// the first row's window are kept anyway, so the budget k goes to the rest); all_from is the end of that range,
// so keys that arrived after the mask was computed are always attended. With k >= the searched keys every block
// is kept and the row attends to exactly what FULL attends to.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "attention/attention_plan.h"
#include "attention/sequence_policy_state.h"
#include "backend/backend.h"

namespace lcllm {

// One layer's masks (the layout of backend.h HipMaskLists, owned).
struct HipLayerMasks {
  bool any = false;                 // some (row, head) of the layer is HIP this step
  std::vector<int64_t> indptr;      // [n_masks + 1] CSR of block indices
  std::vector<int32_t> blocks;      // [nnz]
  std::vector<int32_t> block_size;  // [n_masks] block_size_k of each mask
  std::vector<int32_t> all_from;    // [n_masks] keys >= all_from are kept
  std::vector<int32_t> mask_of;     // [n_rows * n_kv_heads] the (row, head)'s mask, -1: not HIP
  std::vector<int32_t> on_device;   // [n_masks] or empty: backend.h HipMaskLists::on_device
  std::vector<int32_t> shift;       // [n_masks] or empty: backend.h HipMaskLists::shift
  std::vector<int32_t> cache_row;   // [n_masks] or empty: backend.h HipMaskLists::cache_row
  HipMaskLists view() const { return {indptr, blocks, block_size, all_from, mask_of, on_device, shift, cache_row}; }
};

// A decode mask reused steps_since steps after the position it was computed for also keeps, after each of its
// blocks, the next ceil(steps_since / block_size_k) blocks. Generation moves attention forward: a head that copies
// a span out of the context (an induction head reading a passkey back) attends at step t + d to the key d positions
// after the one it read at step t, which a mask of 2-key blocks estimated at step t no longer covers. Without this
// a mask reused for 8 steps kept ~37% of full attention's answer probability on Gemma 3 270M at 4k–32k
// (bench/results/kv_dtype_hip_refresh_gemma_gpu_h100_2026-12-06/). InfiniteHiP (arXiv 2502.08910) refreshes its
// finest pruning stage more often than its coarse ones for the same reason; this keeps one search per refresh.
// A mask of k keys grows to at most k * (1 + shift) keys (the step plan's HiP slot stride allows for it).
int32_t hip_reuse_shift_blocks(int32_t steps_since, int32_t block_size_k);
// The longest list a HIP item of these parameters can get (hip_expand_lists, the lists kernel): its mask's blocks
// (<= k keys, or k * (1 + shift) for a cached decode mask dilated forward by the steps it has aged) and the keys from
// the mask's all_from to the row (at most recent plus the rows of a query block, or plus the steps a cached decode
// mask has aged, and coarse_refresh_every - 1 more when its search resumed from a coarse stage, whose end is its
// all_from). The step plan sizes the HiP slot by it and bounds each item's key set with it.
int64_t hip_list_bound(const HipParams& p);
// Whether a query block (a decode row) whose first row is at position first_pos attends densely instead
// (HipParams::dense_below). The step plan (its key sets) and attention_layer_hip (its searches) both ask.
inline bool hip_attends_densely(const HipParams& p, int32_t first_pos) {
  return p.dense_below > 0 && int64_t(first_pos) + 1 <= p.dense_below;
}
// Whether the query block of a sequence's rows [.., block_end) in a step whose rows of that sequence end at seq_end
// attends densely: hip_attends_densely, or the step ends the sequence's prompt and the block holds one of its last
// dense_tail rows (HipParams::dense_tail). Rows are the step's row indices. The step plan and attention_layer_hip
// both ask.
inline bool hip_block_attends_densely(const HipParams& p, int32_t first_pos, int32_t block_end, int32_t seq_end,
                                      bool ends_prompt) {
  return hip_attends_densely(p, first_pos) || (ends_prompt && p.dense_tail > 0 && block_end > seq_end - p.dense_tail);
}
// Appends to out the ascending, distinct union of [b, b + shift] over the ascending blocks.
void hip_dilate_forward(std::span<const int32_t> blocks, int32_t shift, std::vector<int32_t>& out);

// The host rule for HiP's lists (selection slot `slot`): item i with sets[i].list == slot and a mask gets the keys
// of its mask's blocks (dilated forward by the mask's shift) and the keys from its all_from on, clipped to
// [sets[i].lo, sets[i].hi), ascending and distinct; every other item an empty list. indptr [n_items + 1],
// positions [nnz].
void hip_expand_lists(const HipMaskLists& masks, std::span<const KeySet> sets, int32_t slot,
                      std::vector<int64_t>& indptr, std::vector<int32_t>& positions);

// seq_plans: [n_seq] each sequence's plan (all for the same model). seq_state: [n_seq] (entries may be null) or
// empty: without state, decode masks are recomputed every step. seq_ends_prompt: [n_seq] 1 where the step's rows
// of the sequence end its prompt (StepPlan::seq_ends_prompt), or empty: none does. Masks stay on the device where
// the backend allows (on_device); those later steps reuse are kept there too (Backend::hip_cache_keep, when the
// batch names its sequences' ids), else they come to the host.
HipLayerMasks attention_layer_hip(Backend& backend, const Tensor& q, std::span<const AttentionPlan* const> seq_plans,
                                  int32_t layer,
                                  const AttentionBatch& batch, std::span<const AttentionPhase> row_phase,
                                  const AttentionParams& params, std::span<SequencePolicyState* const> seq_state,
                                  std::span<const uint8_t> seq_ends_prompt = {});

}  // namespace lcllm
