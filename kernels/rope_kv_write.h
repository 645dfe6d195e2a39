// RoPE fused with the K/V write into the paged cache (E3 item 1): one kernel rotates q and k in place (the same
// angles as kernels/rope.cu: pos·inv_freq[i] in fp32, cos/sin in double) and writes the rotated k and v into their
// slots, rounded to bf16 or to fp8 under the vector's scale (kv/kv_quant.h) — three launches of a decode layer
// become one.
#pragma once
#include <cstdint>

#include <cuda_runtime_api.h>

#include "kv/kv_layout.h"

namespace lcllm {

struct RopeKvWriteParams {
  float* q;                  // [n, n_heads, head_dim] rotated in place
  float* k;                  // [n, n_kv_heads, head_dim] rotated in place (windowed KV heads read it afterwards)
  const float* v;            // [n, n_kv_heads, head_dim]
  void* k_pool;              // [n_pages * page_size, stored heads, head_dim] of kv.dtype, one layer
  void* v_pool;              // same
  uint16_t* scale_pool;      // fp8: [n_pages * page_size, stored heads] K exponent byte | V's << 8; else null
  const int32_t* positions;  // [n]
  const int64_t* slots;      // [n] global slot = page * page_size + offset
  const float* inv_freq;     // [head_dim / 2]
  int32_t n, n_heads, n_kv_heads, head_dim;
  KvLayout kv;               // the pool's layout (kv/kv_layout.h)
  int8_t kv_index[64];       // [n_kv_heads] stored index of each KV head in the pool
  uint64_t ring_heads;       // bit h: KV head h is windowed (its ring is written by CudaBackend::kv_write_window), not stored here
};

void launch_rope_kv_write(const RopeKvWriteParams& p, cudaStream_t stream);

}  // namespace lcllm
