#include "attention/attention_selection.h"

#include <algorithm>

#include "lcllm/error.h"

namespace lcllm {

namespace {

// Appends the ascending union of [0, sink), (pos - recent, pos] and `extra` (ascending), clipped to [lo, hi).
void append_keys(std::vector<int32_t>& out, int32_t lo, int32_t hi, int32_t sink, int32_t recent, int32_t pos,
                 std::span<const int32_t> extra) {
  const int32_t sink_end = std::max(lo, std::min(sink, hi));                      // sinks: [lo, sink_end)
  const int32_t recent_begin = std::min(std::max(pos - recent + 1, sink_end), hi);  // window: [recent_begin, hi)
  for (int32_t j = lo; j < sink_end; ++j) out.push_back(j);
  for (int32_t j : extra) {
    if (j >= sink_end && j < recent_begin) out.push_back(j);
  }
  for (int32_t j = recent_begin; j < hi; ++j) out.push_back(j);
}

}  // namespace

std::vector<AttentionPhase> attention_row_phases(const AttentionBatch& batch, std::span<const AttentionPhase> seq_phase) {
  const size_t n_seq = batch.kv_len.size();
  LCLLM_ASSERT(seq_phase.empty() || seq_phase.size() == n_seq, "one phase per sequence");
  std::vector<AttentionPhase> rows(size_t(batch.query_start[n_seq]), AttentionPhase::ATTENTION_PHASE_PREFILL);
  if (seq_phase.empty()) return rows;
  for (size_t s = 0; s < n_seq; ++s) {
    for (int32_t r = batch.query_start[s]; r < batch.query_start[s + 1]; ++r) rows[size_t(r)] = seq_phase[s];
  }
  return rows;
}

LayerAttentionWork attention_layer_work(const AttentionPlan& plan, int32_t layer, const AttentionBatch& batch,
                                        std::span<const AttentionPhase> row_phase, int32_t sliding_window,
                                        const SelectionState& state, const HipLayerMasks* hip) {
  const int32_t H = plan.n_kv_heads;
  const size_t n_seq = batch.kv_len.size();
  const int64_t n_rows = batch.query_start[n_seq];
  const LayerPlan& L = plan.layers[size_t(layer)];
  LayerAttentionWork w;
  for (const auto* groups : {&L.prefill, &L.decode}) {
    for (const auto& g : *groups) {
      if (g.policy == AttentionPolicy::ATTENTION_POLICY_SELECT || g.policy == AttentionPolicy::ATTENTION_POLICY_SPARSE)
        w.records = true;
    }
  }
  // Which policy every (row, head) uses this step.
  std::vector<const HeadGroupPolicy*> pol(size_t(n_rows * H));
  bool any_select = false;
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int32_t h = 0; h < H; ++h) {
      const HeadGroupPolicy& g = attention_plan_group(plan, layer, row_phase[size_t(r)], h);
      pol[size_t(r * H + h)] = &g;
      if (g.policy == AttentionPolicy::ATTENTION_POLICY_SELECT) any_select = true;
      if (g.policy != AttentionPolicy::ATTENTION_POLICY_FULL && g.policy != AttentionPolicy::ATTENTION_POLICY_SELECT)
        w.dense = false;
    }
  }
  if (any_select) {
    w.select_k.assign(size_t(n_rows * H), 0);
    for (size_t i = 0; i < pol.size(); ++i) {
      if (pol[i]->policy == AttentionPolicy::ATTENTION_POLICY_SELECT) w.select_k[i] = pol[i]->k;
    }
  }
  if (w.dense) return w;

  w.indptr.assign(size_t(n_rows * H + 1), 0);
  std::vector<int32_t> scratch;  // a HIP row's extra keys, ascending
  for (size_t s = 0; s < n_seq; ++s) {
    for (int32_t r = batch.query_start[s]; r < batch.query_start[s + 1]; ++r) {
      const int32_t pos = batch.query_pos[size_t(r)];
      // What FULL sees (cpu_attention.cpp): causal, within the sequence, within the model's sliding window.
      const int32_t hi = std::min(pos + 1, batch.kv_len[s]);
      const int32_t lo = sliding_window > 0 ? std::max(0, pos - sliding_window + 1) : 0;
      for (int32_t h = 0; h < H; ++h) {
        const size_t item = size_t(int64_t(r) * H + h);
        const HeadGroupPolicy& g = *pol[item];
        switch (g.policy) {
          case AttentionPolicy::ATTENTION_POLICY_FULL:
          case AttentionPolicy::ATTENTION_POLICY_SELECT:
            for (int32_t j = lo; j < hi; ++j) w.positions.push_back(j);
            break;
          case AttentionPolicy::ATTENTION_POLICY_STREAM:  // StreamingLLM §3.2: sinks + rolling window
            append_keys(w.positions, lo, hi, g.sink, g.recent, pos, {});
            break;
          case AttentionPolicy::ATTENTION_POLICY_SPARSE: {
            const LayerSelection& src = state.layers[size_t(g.from)];
            LCLLM_ASSERT(!src.valid.empty() && src.valid[item], "SPARSE source layer recorded no selection");
            const std::span<const int32_t> sel(src.positions.data() + src.indptr[item],
                                               size_t(src.indptr[item + 1] - src.indptr[item]));
            append_keys(w.positions, lo, hi, g.sink, g.recent, pos, sel);
            break;
          }
          case AttentionPolicy::ATTENTION_POLICY_HIP: {  // HiP: sinks ∪ mask blocks ∪ unsearched keys ∪ window
            LCLLM_ASSERT(hip && hip->any, "HIP layer without masks (call attention_layer_hip first)");
            const HipParams& p = g.hip;
            scratch.clear();
            const int32_t bs = hip->block_size[item];
            for (int64_t i = hip->indptr[item]; i < hip->indptr[item + 1]; ++i) {
              // Block b = keys [b * bs, (b + 1) * bs), clipped to what the row sees (64-bit: bs may be huge).
              const int64_t b = hip->blocks[size_t(i)];
              const int64_t end = std::min<int64_t>((b + 1) * bs, hi);
              for (int64_t j = std::max<int64_t>(b * bs, lo); j < end; ++j) scratch.push_back(int32_t(j));
            }
            for (int32_t j = std::max(lo, hip->all_from[item]); j < hi; ++j) scratch.push_back(j);
            std::sort(scratch.begin(), scratch.end());
            scratch.erase(std::unique(scratch.begin(), scratch.end()), scratch.end());
            append_keys(w.positions, lo, hi, p.sink, p.recent, pos, scratch);
            break;
          }
        }
        w.indptr[item + 1] = int64_t(w.positions.size());
      }
    }
  }
  return w;
}

void attention_layer_record(SelectionState& state, const AttentionPlan& plan, int32_t layer,
                            std::span<const AttentionPhase> row_phase, const SelectedKeys& selected) {
  const int32_t H = plan.n_kv_heads;
  const int64_t n_rows = int64_t(row_phase.size());
  LayerSelection& out = state.layers[size_t(layer)];
  out.indptr.assign(size_t(n_rows * H + 1), 0);
  out.positions.clear();
  out.valid.assign(size_t(n_rows * H), 0);
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int32_t h = 0; h < H; ++h) {
      const size_t item = size_t(r * H + h);
      const HeadGroupPolicy& g = attention_plan_group(plan, layer, row_phase[size_t(r)], h);
      if (g.policy == AttentionPolicy::ATTENTION_POLICY_SELECT) {
        out.positions.insert(out.positions.end(), selected.positions.begin() + selected.indptr[item],
                             selected.positions.begin() + selected.indptr[item + 1]);
        out.valid[item] = 1;
      } else if (g.policy == AttentionPolicy::ATTENTION_POLICY_SPARSE) {
        // Reuse chains pass the source's indices on unchanged (not the sink/recent additions of this layer).
        const LayerSelection& src = state.layers[size_t(g.from)];
        LCLLM_ASSERT(!src.valid.empty() && src.valid[item], "SPARSE source layer recorded no selection");
        out.positions.insert(out.positions.end(), src.positions.begin() + src.indptr[item],
                             src.positions.begin() + src.indptr[item + 1]);
        out.valid[item] = 1;
      }
      out.indptr[item + 1] = int64_t(out.positions.size());
    }
  }
}

}  // namespace lcllm
