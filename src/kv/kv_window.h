// Windowed KV heads: the storage side of DuoAttention-style streaming heads (arXiv 2410.10819 §3.2: streaming
// heads keep a constant-size KV cache of attention sinks + recent tokens). A KV head marked windowed in a layer
// keeps, per sequence, only a ring of ring_len positions instead of its slots in the page pool:
//
//   ring slot of position p = p                                   for p < sink   (the sinks never move)
//                           = sink + (p - sink) % (ring_len - sink) otherwise     (recent positions rotate)
//
// ring_len = sink + recent + max_step_tokens: a step writes up to max_step_tokens positions before any row of it
// attends, and the row at position `pos` reads (pos - recent, pos], so no position a row still needs is
// overwritten within the step (the newest write p' and the oldest read j satisfy p' - j < recent + step).
// Non-windowed heads stay in the page pool, which then stores only them (the memory the plan saves).
// The layout is computed from the plan (src/attention/attention_kv_window.h); backends implement the storage.
#pragma once
#include <cstdint>
#include <vector>

namespace lcllm {

struct KvWindowLayout {
  int32_t n_layers = 0;
  int32_t n_kv_heads = 0;
  std::vector<uint8_t> windowed;  // [n_layers * n_kv_heads] 1: the head keeps only the ring
  int32_t sink = 0;               // ring slots [0, sink) hold positions [0, sink)
  int32_t recent = 0;
  int32_t ring_len = 0;           // slots per (sequence, layer, windowed head)
  // Sizing for backends that reserve rings up front (cuda): rings held at once (0: the backend's default) and the
  // head_dim of a ring entry. The CPU allocates a ring per sequence as it comes and ignores both.
  int32_t max_sequences = 0;
  int32_t head_dim = 0;

  bool empty() const {
    for (uint8_t w : windowed) {
      if (w) return false;
    }
    return true;
  }
  bool is_windowed(int32_t layer, int32_t kv_head) const {
    return !windowed.empty() && windowed[size_t(layer) * size_t(n_kv_heads) + size_t(kv_head)] != 0;
  }
  int32_t windowed_heads(int32_t layer) const {
    int32_t n = 0;
    for (int32_t h = 0; h < n_kv_heads; ++h) n += is_windowed(layer, h) ? 1 : 0;
    return n;
  }
  int32_t ring_slot(int32_t pos) const { return pos < sink ? pos : sink + (pos - sink) % (ring_len - sink); }
};

}  // namespace lcllm
