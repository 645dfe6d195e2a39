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
    const VisibleKeys v = attention_visible_keys(batch.query_pos[size_t(r)], batch.kv_len[size_t(s)], params.sliding_window);
    return std::pair{int64_t(v.hi - v.lo), [lo = v.lo](int64_t i) { return lo + int32_t(i); }};
  });
}

}  // namespace lcllm
