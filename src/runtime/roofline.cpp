#include "runtime/roofline.h"

#include <algorithm>
#include <vector>

#include "attention/hip_policy.h"
#include "runtime/step_plan.h"

namespace lcllm {

int64_t matmul_params_per_token(const ModelConfig& c) {
  const int64_t H = c.hidden_size;
  const int64_t per_layer = H * c.q_dim() + 2 * H * c.kv_dim() + c.q_dim() * H + 3 * H * int64_t(c.intermediate_size);
  return per_layer * c.n_layers;
}

double attention_key_visits(const ModelConfig& c, int64_t start, int64_t n) {
  double total = 0;
  for (const LayerConfig& l : c.layers) {
    // Σ_{i=start}^{start+n-1} min(i + 1, W): the part below W is an arithmetic series, the rest W each.
    const int64_t w = l.sliding_window > 0 ? l.sliding_window : INT64_MAX;
    const int64_t lo = start, hi = start + n;  // positions [lo, hi)
    const int64_t split = std::clamp<int64_t>(w - 1, lo, hi);  // positions < split see i + 1 keys
    const double below = (double(split) * double(split + 1) - double(lo) * double(lo + 1)) / 2.0;
    const double above = double(hi - split) * double(w == INT64_MAX ? 0 : w);
    total += below + above;
  }
  return total * double(c.n_heads);
}

double prefill_flops(const ModelConfig& c, int64_t start, int64_t n) {
  return 2.0 * double(matmul_params_per_token(c)) * double(n) +
         4.0 * double(c.head_dim) * attention_key_visits(c, start, n) +
         2.0 * double(c.hidden_size) * double(c.vocab_size);
}

int64_t kv_bytes_per_token(const ModelConfig& c, KvDtype dtype) {
  return 2 * int64_t(c.n_layers) * c.n_kv_heads * kv_vector_bytes(dtype, c.head_dim);
}

double decode_bytes(const ModelConfig& c, double weight_bytes, int64_t context, KvDtype kv_dtype) {
  double kv = 0;
  for (const LayerConfig& l : c.layers) {
    const int64_t seen = l.sliding_window > 0 ? std::min<int64_t>(context, l.sliding_window) : context;
    kv += 2.0 * double(seen) * double(c.n_kv_heads) * double(kv_vector_bytes(kv_dtype, c.head_dim));
  }
  return weight_bytes + kv;
}

double decode_kv_bytes_read(const AttentionPlan& plan, const ModelConfig& c, int64_t context, KvDtype kv_dtype) {
  const int32_t pos = int32_t(context - 1), len = int32_t(context);
  const std::vector<int32_t> query_start{0, 1}, query_pos{pos}, kv_len{len};
  const AttentionPhase phase[1] = {AttentionPhase::ATTENTION_PHASE_DECODE};
  const StepPlan step = step_plan_compile(plan, c, AttentionBatch{query_start, query_pos, kv_len, nullptr}, phase);
  double keys = 0;
  for (int32_t l = 0; l < c.n_layers; ++l) {
    // HiP layers read sink + recent + k keys per KV head (its mask is per sequence, outside the step plan): the
    // step plan marks them dense, so they are counted from the plan here. Other groups of such a layer count as
    // their window (FULL) or the whole context.
    const auto& groups = plan.layers[size_t(l)].phase(AttentionPhase::ATTENTION_PHASE_DECODE);
    const bool has_hip = std::any_of(groups.begin(), groups.end(), [](const HeadGroupPolicy& g) {
      return g.policy == AttentionPolicy::ATTENTION_POLICY_HIP;
    });
    if (has_hip) {
      const int32_t window = c.layers[size_t(l)].sliding_window;
      for (const HeadGroupPolicy& g : groups) {
        const double heads = double(g.kv_head_end - g.kv_head_begin);
        // (a HIP group below its dense_below attends the whole context, as FULL: hip_attends_densely)
        const bool sparse = g.policy == AttentionPolicy::ATTENTION_POLICY_HIP && !hip_attends_densely(g.hip, pos);
        const int64_t per_head = sparse ? std::min<int64_t>(context, int64_t(g.hip.sink) + g.hip.recent + g.hip.k)
                                        : (window > 0 ? std::min<int64_t>(context, window) : context);
        keys += double(per_head) * heads;
      }
      continue;
    }
    const StepLayerPlan& lp = step.layers[size_t(l)];
    if (lp.dense) {  // FULL's range for every KV head
      keys += double(step.data[lp.row_end_at] - step.data[lp.row_begin_at]) * double(c.n_kv_heads);
      continue;
    }
    keys += lp.total_keys;  // sink + recent + min(gap, the root SELECT's k) per set
  }
  return keys * 2.0 * double(kv_vector_bytes(kv_dtype, c.head_dim));
}

}  // namespace lcllm
