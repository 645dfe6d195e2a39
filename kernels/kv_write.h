// Writes this step's keys and values (fp32) into their slots of a KV store of kv.dtype — bf16, or fp8 with one
// scale pair per (slot, head) (kv/kv_quant.h) — the paged pool (slots = page * page_size + offset) or the rings of
// windowed heads (slots = ring slots, kv/kv_window.h). Heads not in `heads` belong to the other store and are skipped.
#pragma once
#include <cstdint>

#include <cuda_runtime_api.h>

#include "kv/kv_layout.h"

namespace lcllm {

struct KvWriteParams {
  void* k_store;          // [n_slots, stored heads, head_dim] of kv.dtype (one layer)
  void* v_store;          // same
  uint16_t* scale_store;  // fp8: [n_slots, stored heads] K exponent byte | V's << 8; else null
  const float* k;         // [n, n_kv_heads, head_dim]
  const float* v;         // [n, n_kv_heads, head_dim]
  const int64_t* slots;   // [n] slot of each token in this store
  int32_t n, n_kv_heads, head_dim;
  KvLayout kv;            // the store's layout
  uint64_t heads;         // bit h: KV head h is written (to stored index kv_index[h])
  int8_t kv_index[64];    // [n_kv_heads]
};

void launch_kv_write(const KvWriteParams& p, cudaStream_t stream);

}  // namespace lcllm
