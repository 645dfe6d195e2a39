// Which KV heads a plan lets the engine store as a window only (src/kv/kv_window.h), and the KV memory that saves.
//
// Rule: KV head h of layer l is windowed when its policy is STREAM{sink, recent} in BOTH phases with the plan's
// window — the {sink, recent} of the first such head in (layer, head) order; heads streaming with another window
// keep their full KV (correct, just not smaller). Any other policy may look at any past key, so it keeps all.
// This is DuoAttention's streaming-head cache (arXiv 2410.10819 §3.2) and the "KV outside the window is not kept"
// rule of the retrieval preset.
#pragma once
#include <cstddef>
#include <cstdint>

#include "attention/attention_plan.h"
#include "kv/kv_quant.h"
#include "kv/kv_window.h"

namespace lcllm {

// ring_len = sink + recent + max_step_tokens (kv_window.h). Empty layout (no windowed head) when nothing qualifies.
KvWindowLayout attention_kv_window_layout(const AttentionPlan& plan, int32_t max_step_tokens);

struct KvMemoryEstimate {
  size_t full_bytes = 0;   // every head keeps every position: context * n_layers * n_kv_heads * 2 * vector bytes
  size_t plan_bytes = 0;   // pool for the non-windowed heads + one ring per sequence
  size_t ring_bytes_per_sequence = 0;
  size_t saved() const { return full_bytes > plan_bytes ? full_bytes - plan_bytes : 0; }
};

// `storage`: what the pool stores per (position, head) vector (kv_vector_bytes, fp8 scales included).
KvMemoryEstimate attention_kv_memory(const ModelConfig& config, const KvWindowLayout& layout, int64_t context_tokens,
                                     int32_t n_sequences, KvDtype storage);

}  // namespace lcllm
