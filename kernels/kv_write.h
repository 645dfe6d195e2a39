// Writes this step's keys and values (fp32) into their slots of the bf16 paged pool.
#pragma once
#include <cstdint>

#include <cuda_runtime_api.h>

#include "kv/kv_layout.h"

namespace lcllm {

struct KvWriteParams {
  uint16_t* k_pool;       // [n_pages * page_size, n_kv_heads, head_dim] bf16 (one layer)
  uint16_t* v_pool;       // same
  const float* k;         // [n, n_kv_heads, head_dim]
  const float* v;         // [n, n_kv_heads, head_dim]
  const int64_t* slots;   // [n] global slot = page * page_size + offset
  int32_t n;
  KvLayout kv;            // the pool's layout: every stored head of a slot is written (slot_stride elements)
};

void launch_kv_write(const KvWriteParams& p, cudaStream_t stream);

}  // namespace lcllm
