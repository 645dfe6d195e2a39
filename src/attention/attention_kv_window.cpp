#include "attention/attention_kv_window.h"

namespace lcllm {

namespace {

const HeadGroupPolicy* group_of(const std::vector<HeadGroupPolicy>& groups, int32_t h) {
  for (const auto& g : groups) {
    if (g.kv_head_begin <= h && h < g.kv_head_end) return &g;
  }
  return nullptr;
}

}  // namespace

KvWindowLayout attention_kv_window_layout(const AttentionPlan& plan, int32_t max_step_tokens) {
  KvWindowLayout w;
  w.n_layers = int32_t(plan.layers.size());
  w.n_kv_heads = plan.n_kv_heads;
  w.windowed.assign(size_t(w.n_layers) * size_t(w.n_kv_heads), 0);
  bool have_window = false;
  for (int32_t l = 0; l < w.n_layers; ++l) {
    for (int32_t h = 0; h < w.n_kv_heads; ++h) {
      const HeadGroupPolicy* pre = group_of(plan.layers[size_t(l)].prefill, h);
      const HeadGroupPolicy* dec = group_of(plan.layers[size_t(l)].decode, h);
      if (!pre || !dec || pre->policy != AttentionPolicy::ATTENTION_POLICY_STREAM ||
          dec->policy != AttentionPolicy::ATTENTION_POLICY_STREAM || pre->sink != dec->sink ||
          pre->recent != dec->recent) {
        continue;
      }
      if (!have_window) {
        w.sink = pre->sink;
        w.recent = pre->recent;
        have_window = true;
      }
      if (pre->sink == w.sink && pre->recent == w.recent) w.windowed[size_t(l) * size_t(w.n_kv_heads) + size_t(h)] = 1;
    }
  }
  w.ring_len = w.sink + w.recent + max_step_tokens;
  return w;
}

KvMemoryEstimate attention_kv_memory(const ModelConfig& c, const KvWindowLayout& w, int64_t context_tokens,
                                     int32_t n_sequences, KvDtype storage) {
  KvMemoryEstimate m;
  const size_t per_head_pos = 2 * size_t(kv_vector_bytes(storage, c.head_dim));  // K and V of one head at one position
  int64_t windowed = 0, total = int64_t(c.n_layers) * c.n_kv_heads;
  for (int32_t l = 0; l < c.n_layers; ++l) windowed += w.empty() ? 0 : w.windowed_heads(l);
  m.full_bytes = size_t(context_tokens) * size_t(total) * per_head_pos;
  m.ring_bytes_per_sequence = size_t(windowed) * size_t(w.ring_len) * per_head_pos;
  m.plan_bytes = size_t(context_tokens) * size_t(total - windowed) * per_head_pos +
                 size_t(n_sequences) * m.ring_bytes_per_sequence;
  return m;
}

}  // namespace lcllm
