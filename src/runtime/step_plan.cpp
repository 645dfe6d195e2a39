#include "runtime/step_plan.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "attention/hip_policy.h"
#include "lcllm/error.h"

namespace lcllm {

namespace {

constexpr int32_t kIntsPerSet = int32_t(sizeof(KeySet) / sizeof(int32_t));

// [lo, sink_end) ∪ gap ∪ [recent_begin, hi) for sinks [0, sink) and the window (pos - recent, pos], clipped to the
// visible range (the rule the CPU reference applied per key before key sets existed).
KeySet sink_recent_set(VisibleKeys v, int32_t pos, int32_t sink, int32_t recent, int32_t list) {
  KeySet s;
  s.lo = v.lo;
  s.hi = v.hi;
  s.sink_end = std::max(v.lo, std::min(sink, v.hi));
  s.recent_begin = std::min(std::max(pos - recent + 1, s.sink_end), v.hi);
  s.list = list;
  return s;
}

KeySet range_set(VisibleKeys v) { return KeySet{v.lo, v.hi, v.hi, v.hi, -1}; }

bool is_range(const KeySet& s) { return s.list < 0 && s.sink_end == s.recent_begin; }

// The SELECT layer whose selection a SPARSE group ultimately reads (chains pass the source's list on unchanged).
int32_t sparse_root(const AttentionPlan& plan, int32_t layer, AttentionPhase phase, int32_t kv_head) {
  int32_t at = attention_plan_group(plan, layer, phase, kv_head).from;
  for (int32_t hops = 0; hops <= int32_t(plan.layers.size()); ++hops) {
    const HeadGroupPolicy& g = attention_plan_group(plan, at, phase, kv_head);
    if (g.policy == AttentionPolicy::ATTENTION_POLICY_SELECT) return at;
    LCLLM_ASSERT(g.policy == AttentionPolicy::ATTENTION_POLICY_SPARSE, "SPARSE source layer selects nothing");
    at = g.from;
  }
  LCLLM_ASSERT(false, "SPARSE chain without a SELECT root");
  return -1;
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

StepPlan step_plan_compile(const AttentionPlan& plan, const ModelConfig& config, const AttentionBatch& batch,
                           std::span<const AttentionPhase> seq_phase, std::span<const int32_t> logit_rows) {
  const std::vector<const AttentionPlan*> seq_plans(batch.kv_len.size(), &plan);  // [n_seq]
  return step_plan_compile(seq_plans, config, batch, seq_phase, logit_rows);
}

StepPlan step_plan_compile(std::span<const AttentionPlan* const> seq_plans, const ModelConfig& config,
                           const AttentionBatch& batch, std::span<const AttentionPhase> seq_phase,
                           std::span<const int32_t> logit_rows) {
  using P = AttentionPolicy;
  const int32_t H = config.n_kv_heads, n_layers = config.n_layers;
  const size_t n_seq = batch.kv_len.size();
  LCLLM_ASSERT(seq_plans.size() == n_seq, "one plan per sequence");
  for (const AttentionPlan* plan : seq_plans) {
    LCLLM_ASSERT(plan && int32_t(plan->layers.size()) == n_layers && plan->n_kv_heads == H,
                 "plan does not match the model");
  }
  StepPlan sp;
  sp.row_phase = attention_row_phases(batch, seq_phase);
  sp.n_rows = int32_t(sp.row_phase.size());
  sp.seq_ends_prompt.assign(n_seq, 0);
  {
    std::vector<uint8_t> is_logit_row(size_t(sp.n_rows), 0);  // [n_rows]
    for (const int32_t r : logit_rows) {
      LCLLM_ASSERT(r >= 0 && r < sp.n_rows, "a logit row is outside the step's rows");
      is_logit_row[size_t(r)] = 1;
    }
    for (size_t s = 0; s < n_seq; ++s) {
      const int32_t qs = batch.query_start[s], qe = batch.query_start[s + 1];
      sp.seq_ends_prompt[s] = qe > qs && sp.row_phase[size_t(qs)] == AttentionPhase::ATTENTION_PHASE_PREFILL &&
                              is_logit_row[size_t(qe - 1)];
    }
  }
  sp.n_kv_heads = H;
  sp.layers.resize(size_t(n_layers));
  const int64_t n_items = int64_t(sp.n_rows) * H;

  std::vector<int32_t> row_seq(size_t(sp.n_rows));
  int32_t max_span = 1;
  for (size_t s = 0; s < n_seq; ++s) {
    for (int32_t r = batch.query_start[s]; r < batch.query_start[s + 1]; ++r) {
      row_seq[size_t(r)] = int32_t(s);
      const VisibleKeys v = attention_visible_keys(batch.query_pos[size_t(r)], batch.kv_len[s], 0);
      max_span = std::max(max_span, v.hi - v.lo);
    }
  }

  // Rows of one sequence share its plan and phase: a row that starts a new (plan, phase) run is all a per-layer
  // question about "some row" needs to look at.
  auto run_start = [&](int32_t r) {
    return r == 0 || sp.row_phase[size_t(r)] != sp.row_phase[size_t(r - 1)] ||
           seq_plans[size_t(row_seq[size_t(r)])] != seq_plans[size_t(row_seq[size_t(r - 1)])];
  };
  // Slots: one per layer that some row's plan selects at in its phase, then HiP's. Slots are per (row, KV head),
  // so sequences with different plans share them: each row writes and reads only its own lists.
  std::vector<int32_t> slot_of(size_t(n_layers), -1);
  int32_t k_max = 0;
  bool any_hip = false;
  int64_t hip_list_max = 0;  // longest list a HIP item can get (see below)
  for (int32_t l = 0; l < n_layers; ++l) {
    for (int32_t r = 0; r < sp.n_rows; ++r) {
      if (!run_start(r)) continue;
      const AttentionPlan& plan = *seq_plans[size_t(row_seq[size_t(r)])];
      for (const HeadGroupPolicy& g : plan.layers[size_t(l)].phase(sp.row_phase[size_t(r)])) {
        if (g.policy == P::ATTENTION_POLICY_SELECT) {
          if (slot_of[size_t(l)] < 0) slot_of[size_t(l)] = sp.n_slots++;
          k_max = std::max(k_max, g.k);
        }
        if (g.policy == P::ATTENTION_POLICY_HIP) {
          any_hip = true;
          hip_list_max = std::max<int64_t>(hip_list_max, hip_list_bound(g.hip));
        }
      }
    }
  }
  if (any_hip) sp.hip_slot = sp.n_slots++;
  sp.slot_stride = std::max(1, std::min(k_max, max_span));
  if (any_hip) sp.slot_stride = std::max<int32_t>(sp.slot_stride, int32_t(std::min<int64_t>(hip_list_max, max_span)));

  // Rows and block tables, once for every layer.
  sp.row_seq_at = sp.data.size();
  sp.data.insert(sp.data.end(), row_seq.begin(), row_seq.end());
  if (batch.pages != nullptr) {
    sp.has_pages = true;
    sp.page_indptr_at = sp.data.size();
    sp.data.insert(sp.data.end(), batch.pages->indptr.begin(), batch.pages->indptr.end());
    sp.page_indices_at = sp.data.size();
    sp.data.insert(sp.data.end(), batch.pages->indices.begin(), batch.pages->indices.end());
    const size_t n = batch.pages->indices.size();
    sp.data.resize(sp.data.size() + (StepPlan::kPageBucket - n % StepPlan::kPageBucket) % StepPlan::kPageBucket, 0);
  }
  std::vector<std::pair<int32_t, size_t>> ranges_of_window;  // window -> offset of its row_begin, row_end arrays

  for (int32_t l = 0; l < n_layers; ++l) {
    StepLayerPlan& lp = sp.layers[size_t(l)];
    const int32_t window = config.layers[size_t(l)].sliding_window;
    auto known = std::find_if(ranges_of_window.begin(), ranges_of_window.end(),
                              [window](const auto& w) { return w.first == window; });
    if (known == ranges_of_window.end()) {
      const size_t at = sp.data.size();
      sp.data.resize(at + 2 * size_t(sp.n_rows));
      for (int32_t r = 0; r < sp.n_rows; ++r) {
        const VisibleKeys v = attention_visible_keys(batch.query_pos[size_t(r)], batch.kv_len[size_t(row_seq[size_t(r)])], window);
        sp.data[at + size_t(r)] = v.lo;
        sp.data[at + size_t(sp.n_rows) + size_t(r)] = v.hi;
      }
      known = ranges_of_window.insert(ranges_of_window.end(), {window, at});
    }
    lp.row_begin_at = known->second;
    lp.row_end_at = known->second + size_t(sp.n_rows);
    lp.window = window;
    // A layer FULL in every phase and plan of the step needs no key sets (the common case, and all of a FULL plan).
    bool all_full = true;
    for (int32_t r = 0; r < sp.n_rows && all_full; ++r) {
      if (!run_start(r)) continue;
      const AttentionPlan& plan = *seq_plans[size_t(row_seq[size_t(r)])];
      for (const HeadGroupPolicy& g : plan.layers[size_t(l)].phase(sp.row_phase[size_t(r)])) {
        all_full = all_full && g.policy == P::ATTENTION_POLICY_FULL;
      }
    }
    if (all_full) continue;
    std::vector<int32_t> sets(size_t(n_items) * kIntsPerSet);  // [n_items, 5] KeySet fields
    std::vector<int32_t> select_k;  // [n_items], filled when some item selects
    std::vector<uint8_t> seq_keyed(n_seq, 0);  // [n_seq] some row of the sequence needs its key sets
    std::vector<int32_t> row_max(size_t(sp.n_rows), 0), row_mean(size_t(sp.n_rows), 0);  // [n_rows] key bounds
    // Tiles of prefill rows (LayerKeySets::prefill_tile_align): sets of FULL, STREAM and HIP groups qualify on layers
    // without a sliding window (so every set starts at 0); HIP's query blocks bound the runs. SELECT and SPARSE
    // sets (per-row selections) do not.
    bool tiles_ok = window == 0;
    int32_t tile_align = 0;  // gcd of the HIP groups' block_size_q (0: none)
    for (int32_t r = 0; r < sp.n_rows; ++r) {
      const int32_t s = row_seq[size_t(r)], pos = batch.query_pos[size_t(r)];
      const AttentionPlan& plan = *seq_plans[size_t(s)];
      int64_t row_keys = 0;  // the row's key counts summed over its KV heads
      const AttentionPhase phase = sp.row_phase[size_t(r)];
      const VisibleKeys v = attention_visible_keys(pos, batch.kv_len[size_t(s)], window);
      const bool chunk_row = batch.query_start[size_t(s) + 1] - batch.query_start[size_t(s)] > 1;
      for (int32_t h = 0; h < H; ++h) {
        const int64_t item = int64_t(r) * H + h;
        const HeadGroupPolicy& g = attention_plan_group(plan, l, phase, h);
        if (chunk_row) {
          if (g.policy == P::ATTENTION_POLICY_SELECT || g.policy == P::ATTENTION_POLICY_SPARSE) tiles_ok = false;
          if (g.policy == P::ATTENTION_POLICY_HIP) tile_align = std::gcd(tile_align, g.hip.block_size_q);
        }
        KeySet set = range_set(v);
        int32_t bound = v.hi - v.lo;
        switch (g.policy) {
          case P::ATTENTION_POLICY_FULL:
            break;
          case P::ATTENTION_POLICY_SELECT:
            if (select_k.empty()) select_k.assign(size_t(n_items), 0);
            select_k[size_t(item)] = g.k;
            break;
          case P::ATTENTION_POLICY_STREAM:
            set = sink_recent_set(v, pos, g.sink, g.recent, -1);
            bound = (set.sink_end - set.lo) + (set.hi - set.recent_begin);
            break;
          case P::ATTENTION_POLICY_SPARSE: {
            const int32_t root = sparse_root(plan, l, phase, h);
            set = sink_recent_set(v, pos, g.sink, g.recent, slot_of[size_t(root)]);
            const int32_t k_root = attention_plan_group(plan, root, phase, h).k;
            bound = (set.sink_end - set.lo) + std::min(set.recent_begin - set.sink_end, k_root) + (set.hi - set.recent_begin);
            break;
          }
          case P::ATTENTION_POLICY_HIP: {
            // The query block decides whether it attends densely (hip_block_attends_densely; as
            // attention_layer_hip cuts blocks: one row alone in a one-row decode step, else block_size_q rows).
            const int32_t qs = batch.query_start[size_t(s)], qe = batch.query_start[size_t(s) + 1];
            const bool decode_one = phase == AttentionPhase::ATTENTION_PHASE_DECODE && qe - qs == 1;
            const int32_t bq = decode_one ? 1 : g.hip.block_size_q;
            const int32_t block_begin = qs + (r - qs) / bq * bq, block_end = std::min(qe, block_begin + bq);
            lp.hip = true;  // forward_step runs attention_layer_hip (it keeps the sequences' HiP state) even when dense
            if (hip_block_attends_densely(g.hip, batch.query_pos[size_t(block_begin)], block_end, qe,
                                          sp.seq_ends_prompt[size_t(s)])) {
              break;  // FULL's set
            }
            set = sink_recent_set(v, pos, g.hip.sink, g.hip.recent, sp.hip_slot);
            // Sinks, the part of the list between them and the recent keys (at most hip_list_bound), recent keys.
            // The decode kernels split max_keys over the GPU: bounded by the whole context (8B, 32k), a cached
            // step's ~3k keys per KV head fell into the first 3 of 32 splits of 1,024 keys, so 24 of 256 CTAs did
            // all the work, 16 tiles per warp one after another (ncu: 37 us per layer, SM active cycles 9.9k at the
            // least and 51k at the most of 59k; docs/KERNEL_NOTES.md 6h). hip_list_bound counts the recent keys too
            // (it sizes the slot, whose lists carry them): an over-estimate by `recent`, which is harmless.
            bound = int32_t((set.sink_end - set.lo) +
                            std::min<int64_t>(set.recent_begin - set.sink_end, hip_list_bound(g.hip)) +
                            (set.hi - set.recent_begin));
            break;
          }
        }
        if (set.list < 0 && set.sink_end == set.recent_begin) set = range_set(v);  // no gap: a plain range
        const bool full_range = is_range(set) && set.lo == v.lo && set.hi == v.hi;
        if (!full_range || g.policy == P::ATTENTION_POLICY_SELECT) seq_keyed[size_t(s)] = 1;
        lp.dense = lp.dense && full_range;
        row_max[size_t(r)] = std::max(row_max[size_t(r)], bound);
        lp.total_keys += double(bound);
        row_keys += bound;
        const int32_t f[kIntsPerSet] = {set.lo, set.sink_end, set.recent_begin, set.hi, set.list};
        std::copy(f, f + kIntsPerSet, sets.begin() + std::ptrdiff_t(size_t(item) * kIntsPerSet));
      }
      row_mean[size_t(r)] = int32_t((row_keys + H - 1) / H);
    }
    if (!select_k.empty()) lp.dense = false;
    if (tiles_ok) lp.prefill_tile_align = tile_align > 0 ? tile_align : std::numeric_limits<int32_t>::max();
    // Name the key rows only when a sequence without any has several rows (a prefill chunk beside sparse decode
    // rows): those run dense, as under FULL. One-row sequences stay with the key-set kernel, whose range sets give
    // the dense decode kernel's bits.
    bool dense_chunk = false;
    for (size_t s = 0; s < n_seq && !lp.dense; ++s) {
      dense_chunk = dense_chunk || (!seq_keyed[s] && batch.query_start[s + 1] - batch.query_start[s] > 1);
    }
    // Split planning covers every row the key-set kernels will walk.
    for (int32_t r = 0; r < sp.n_rows; ++r) {
      if (dense_chunk && !seq_keyed[size_t(row_seq[size_t(r)])]) continue;
      lp.max_keys = std::max(lp.max_keys, row_max[size_t(r)]);
      lp.work_keys = std::max(lp.work_keys, row_mean[size_t(r)]);
    }
    if (!lp.dense) {  // dense layers run Backend::attention: their sets would never be read
      lp.sets_at = sp.data.size();
      sp.data.insert(sp.data.end(), sets.begin(), sets.end());
    }
    if (dense_chunk) {
      lp.key_rows_at = sp.data.size();
      for (int32_t r = 0; r < sp.n_rows; ++r) {
        if (seq_keyed[size_t(row_seq[size_t(r)])]) sp.data.push_back(r);
      }
      lp.n_key_rows = int32_t(sp.data.size() - lp.key_rows_at);
    }
    if (!select_k.empty()) {
      lp.select_slot = slot_of[size_t(l)];
      lp.select_k_at = sp.data.size();
      sp.data.insert(sp.data.end(), select_k.begin(), select_k.end());
    }
    sp.all_dense = sp.all_dense && lp.dense;
  }
  return sp;
}

AttentionBatch step_plan_layer_batch(const StepPlan& step, int32_t layer, const AttentionBatch& base,
                                     const int32_t* step_data) {
  AttentionBatch b = base;
  const StepLayerPlan& lp = step.layers[size_t(layer)];
  b.uploaded.row_seq = step_data + step.row_seq_at;
  b.uploaded.row_begin = step_data + lp.row_begin_at;
  b.uploaded.row_end = step_data + lp.row_end_at;
  b.uploaded.sliding_window = lp.window;
  if (step.has_pages) {
    b.uploaded.page_indptr = step_data + step.page_indptr_at;
    b.uploaded.page_indices = step_data + step.page_indices_at;
  }
  return b;
}

LayerKeySets step_plan_layer_keys(const StepPlan& step, int32_t layer, const int32_t* step_data) {
  const StepLayerPlan& lp = step.layers[size_t(layer)];
  LCLLM_ASSERT(lp.sets_at != StepLayerPlan::kNone, "a dense layer has no key sets");
  LayerKeySets keys;
  keys.sets = reinterpret_cast<const KeySet*>(step_data + lp.sets_at);
  keys.max_keys = lp.max_keys;
  keys.work_keys = lp.work_keys;
  keys.rows_host = step_plan_key_rows(step, layer);
  keys.prefill_tile_align = lp.prefill_tile_align;
  if (!keys.rows_host.empty()) keys.rows = step_data + lp.key_rows_at;
  if (lp.select_k_at != StepLayerPlan::kNone) {
    keys.select_k = step_data + lp.select_k_at;
    keys.select_slot = lp.select_slot;
  }
  return keys;
}

std::span<const int32_t> step_plan_key_rows(const StepPlan& step, int32_t layer) {
  const StepLayerPlan& lp = step.layers[size_t(layer)];
  if (lp.key_rows_at == StepLayerPlan::kNone) return {};
  return {step.data.data() + lp.key_rows_at, size_t(lp.n_key_rows)};
}

std::span<const KeySet> step_plan_sets(const StepPlan& step, int32_t layer) {
  const StepLayerPlan& lp = step.layers[size_t(layer)];
  if (lp.sets_at == StepLayerPlan::kNone) return {};
  return {reinterpret_cast<const KeySet*>(step.data.data() + lp.sets_at), size_t(step.n_rows) * size_t(step.n_kv_heads)};
}

void step_plan_hip_lists(const StepPlan& step, int32_t layer, const HipLayerMasks& masks,
                         std::vector<int64_t>& indptr, std::vector<int32_t>& positions) {
  hip_expand_lists(masks.view(), step_plan_sets(step, layer), masks.any ? step.hip_slot : -1, indptr, positions);
}

}  // namespace lcllm
