// StepPlan: the AttentionPlan compiled for one step (ARCHITECTURE.md §1, §3). For every (layer, query row, KV
// head) it holds a compact key set (backend.h KeySet: a range, sink + recent ranges, or ranges plus the list of a
// selection slot an earlier layer fills on the device) and, for TidalDecode SELECT layers, the k of every item.
// Everything goes to the backend in one upload per step (Backend::step_upload); layers then read plain data where
// the kernels run and ask the host nothing. Selection state lives in the step's slots (§4.3): slot s belongs to the
// s-th selecting layer, so a SPARSE layer reads its root SELECT layer's slot (reuse chains resolved here, once).
//
// Semantics per policy (docs/POLICIES.md), all clipped to what FULL sees (attention_visible_keys):
//   FULL, SELECT  [lo, hi)                                 (SELECT also keeps its top-k in its slot)
//   STREAM        [lo, sink) ∪ (pos - recent, pos]         (StreamingLLM §3.2)
//   SPARSE        [lo, sink) ∪ root's selection ∪ (pos - recent, pos]   (TidalDecode §3.1, HyLRA reuse)
//   HIP           [lo, sink) ∪ HiP mask blocks ∪ [all_from, pos] ∪ (pos - recent, pos]   (the host writes the list)
// A set whose parts leave no gap is a plain range; a layer where every set is FULL's range and nothing selects is
// `dense` and runs Backend::attention.
#pragma once
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "attention/attention_plan.h"
#include "attention/hip_policy.h"
#include "backend/backend.h"

namespace lcllm {

struct StepLayerPlan {
  static constexpr size_t kNone = std::numeric_limits<size_t>::max();
  bool dense = true;             // every set is FULL's range and nothing selects: Backend::attention runs the layer
  size_t sets_at = kNone;        // int32 offset of the layer's KeySets [n_rows * n_kv_heads] in StepPlan::data
                                 // (kNone for dense layers: they need none)
  int32_t max_keys = 0;          // largest key count any set of the layer can have
  int32_t work_keys = 0;         // largest mean, over one row's KV heads, of the sets' key counts
  size_t select_k_at = kNone;    // int32 offset of the layer's select k [n_rows * n_kv_heads], or kNone
  int32_t select_slot = -1;      // slot the layer's SELECT items write
  bool hip = false;              // some item's group is HIP (dense under dense_below or not): forward_step runs
                                 // attention_layer_hip, whose masks fill slot hip_slot before the layer's attention
  size_t row_begin_at = 0;       // int32 offsets of the layer's [n_rows] visible ranges (shared by equal windows)
  size_t row_end_at = 0;
  int32_t window = 0;            // the layer's sliding window (0: none)
  size_t key_rows_at = kNone;    // int32 offset of the rows whose sequences need key sets (ascending), when not all
  int32_t n_key_rows = 0;
  double total_keys = 0;         // keys the layer's sets visit at most, all rows and KV heads (bytes-read estimate)
  int32_t prefill_tile_align = 0;  // LayerKeySets::prefill_tile_align
};

struct StepPlan {
  int32_t n_rows = 0, n_kv_heads = 0;
  std::vector<AttentionPhase> row_phase;  // [n_rows]
  std::vector<uint8_t> seq_ends_prompt;   // [n_seq] 1: a prefill sequence whose last row this step is a logit row
                                          // (its prompt ends here: HipParams::dense_tail)
  std::vector<StepLayerPlan> layers;      // [n_layers]
  std::vector<int32_t> data;              // every layer's KeySets (5 int32 each) and select k, uploaded once
  int32_t n_slots = 0;                    // selection slots the step needs: one per selecting layer (+ HiP's)
  int32_t slot_stride = 1;                // positions a slot keeps per (row, KV head)
  int32_t hip_slot = -1;
  bool all_dense = true;                  // no layer needs attention_key_sets
  // The rows and block tables every layer reads (AttentionRowsUploaded), in `data` too: uploaded once per step.
  size_t row_seq_at = 0;                  // [n_rows]
  size_t page_indptr_at = 0;              // [n_seq + 1]
  size_t page_indices_at = 0;             // [nnz padded to kPageBucket: the upload's size moves in steps]
  bool has_pages = false;                 // the batch came with block tables
  static constexpr size_t kPageBucket = 4096;
};

// [n_rows] phase of every query row, from the per-sequence phases ([n_seq]; empty: every sequence in prefill).
std::vector<AttentionPhase> attention_row_phases(const AttentionBatch& batch, std::span<const AttentionPhase> seq_phase);

// Compiles the sequences' plans ([n_seq], one each; sequences of one step may run different plans, E11 item 1)
// for the step described by `batch` (rows, positions, kv lengths) and the sequences' phases. Every plan must be
// valid for `config` (attention_plan_validate). logit_rows: the rows whose logits the step returns (a prefill
// sequence whose last row is one ends its prompt in this step); empty: no prompt ends.
StepPlan step_plan_compile(std::span<const AttentionPlan* const> seq_plans, const ModelConfig& config,
                           const AttentionBatch& batch, std::span<const AttentionPhase> seq_phase,
                           std::span<const int32_t> logit_rows = {});
// Every sequence runs `plan`.
StepPlan step_plan_compile(const AttentionPlan& plan, const ModelConfig& config, const AttentionBatch& batch,
                           std::span<const AttentionPhase> seq_phase, std::span<const int32_t> logit_rows = {});

// `base` with its `uploaded` pointers set to layer `layer`'s rows and block tables inside the step's uploaded data
// (`step_data` = Backend::step_upload(step.data)).
AttentionBatch step_plan_layer_batch(const StepPlan& step, int32_t layer, const AttentionBatch& base,
                                     const int32_t* step_data);

// What Backend::attention_key_sets needs for a non-dense layer: pointers into the step's uploaded data
// (`step_data` = Backend::step_upload(step.data)), plus the host copy of its key rows.
LayerKeySets step_plan_layer_keys(const StepPlan& step, int32_t layer, const int32_t* step_data);

// The rows of layer `layer` that attend over key sets, host side (empty: every row) — LayerKeySets::rows_host.
std::span<const int32_t> step_plan_key_rows(const StepPlan& step, int32_t layer);

// The key sets of one layer, host side (tests; the CPU reads the uploaded copy).  [n_rows * n_kv_heads];
// empty for a dense layer.
std::span<const KeySet> step_plan_sets(const StepPlan& step, int32_t layer);

// HiP's middle keys per (row, KV head) of a layer, CSR over [n_rows * n_kv_heads] ascending positions: the mask's
// blocks ∪ [all_from, hi), clipped to the row's visible range (the key set adds sinks and window). Items that are
// not HIP get empty lists.
void step_plan_hip_lists(const StepPlan& step, int32_t layer, const HipLayerMasks& masks,
                         std::vector<int64_t>& indptr, std::vector<int32_t>& positions);

}  // namespace lcllm
