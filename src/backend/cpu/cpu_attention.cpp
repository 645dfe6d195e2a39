// Causal GQA attention over the paged KV cache: the reference every GPU kernel and sparse policy is checked
// against. Keys of sequence s at position j live in page indices[indptr[s] + j / page_size], row j % page_size.
#include <algorithm>
#include <utility>

#include "backend/cpu/cpu_attention_row.h"
#include "backend/cpu/cpu_backend.h"

namespace lcllm {

void CpuBackend::attention(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                           const AttentionParams& params) {
  attend_rows(out, q, layer, batch, params, [&](int64_t r, int32_t s, int64_t) {
    const int32_t pos = batch.query_pos[size_t(r)];
    const int32_t visible_end = std::min(pos + 1, batch.kv_len[size_t(s)]);
    const int32_t visible_begin = params.sliding_window > 0 ? std::max(0, pos - params.sliding_window + 1) : 0;
    return std::pair{int64_t(std::max(0, visible_end - visible_begin)),
                     [visible_begin](int64_t i) { return visible_begin + int32_t(i); }};
  });
}

}  // namespace lcllm
