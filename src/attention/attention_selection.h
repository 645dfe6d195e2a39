// Per-step execution of a plan: which keys each (query row, KV head) attends to in one layer, and the selection
// state that carries top-k positions from SELECT layers to later SPARSE layers (ARCHITECTURE.md §4.3: it lives for
// one step and is passed explicitly — forward_step owns it, nothing global).
//
// Selection granularity: one list per (query row, KV head). In decode a sequence has one query row, so this is one
// list per sequence and KV head (TidalDecode's decode setting). In prefill each query row keeps its own top-k over
// its own causal prefix, so a SPARSE row reads exactly the row with the same position at the source layer; with a
// budget >= the context this is FULL, row for row.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "attention/attention_plan.h"
#include "attention/hip_policy.h"
#include "backend/backend.h"

namespace lcllm {

struct LayerSelection {
  std::vector<int64_t> indptr;     // [n_rows * n_kv_heads + 1]
  std::vector<int32_t> positions;  // [nnz] ascending per (row, KV head)
  std::vector<uint8_t> valid;      // [n_rows * n_kv_heads] 1 where the layer selected or passed a selection on
};

struct SelectionState {
  std::vector<LayerSelection> layers;  // [n_layers]; empty where a layer records nothing
};

// What one layer computes in this step.
struct LayerAttentionWork {
  bool dense = true;                // every (row, head) is FULL or SELECT: Backend::attention computes it
  std::vector<int64_t> indptr;      // !dense: key lists, [n_rows * n_kv_heads + 1]
  std::vector<int32_t> positions;   // !dense: [nnz]
  std::vector<int32_t> select_k;    // [n_rows * n_kv_heads] k of SELECT (row, head)s, else 0; empty: no SELECT
  bool records = false;             // some group of the layer is SELECT or SPARSE: record a LayerSelection
};

// [n_rows] phase of every query row, from the per-sequence phases ([n_seq]; empty: every sequence in prefill).
std::vector<AttentionPhase> attention_row_phases(const AttentionBatch& batch, std::span<const AttentionPhase> seq_phase);

// Builds layer `layer`'s work for the step. sliding_window is the model's window for the layer (0: none); every
// key list is intersected with what FULL would see. `hip` holds the layer's HiP masks (attention_layer_hip) when
// some group is HIP, else may be null.
LayerAttentionWork attention_layer_work(const AttentionPlan& plan, int32_t layer, const AttentionBatch& batch,
                                        std::span<const AttentionPhase> row_phase, int32_t sliding_window,
                                        const SelectionState& state, const HipLayerMasks* hip = nullptr);

// Records what layer `layer` leaves for later layers: the new top-k of SELECT rows/heads (`selected`, from
// Backend::attention_select_topk), the source's selection, unchanged, for SPARSE rows/heads.
void attention_layer_record(SelectionState& state, const AttentionPlan& plan, int32_t layer,
                            std::span<const AttentionPhase> row_phase, const SelectedKeys& selected);

}  // namespace lcllm
