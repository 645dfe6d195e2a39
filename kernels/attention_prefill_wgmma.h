// Prefill attention v3: wgmma (Hopper) flash attention for head_dim 64 / 128 over a bf16 or fp8 cache
// (attention_prefill_wgmma.cu). launch_attention_prefill (attention.h) picks it where it applies; the tiles are v2's
// (attention_prefill_tile_rows), packed 2^hp_log2 query heads of one KV head per block.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "kernels/attention.h"

namespace lcllm {

bool attention_prefill_v3_applies(int32_t head_dim, KvDtype dtype);
// M rows ((position, query head) pairs) of one v3 tile: 192 for dense tiles at head_dim 64 over bf16, else 128.
int32_t attention_prefill_v3_m_rows(int32_t head_dim, KvDtype dtype, bool key_sets);
void launch_attention_prefill_v3(const PrefillParams& p, int32_t hp_log2, cudaStream_t stream);

}  // namespace lcllm
