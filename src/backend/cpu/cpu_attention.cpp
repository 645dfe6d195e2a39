// Causal GQA attention over the paged KV cache: the reference every GPU kernel and sparse policy is checked
// against. Keys of sequence s at position j live in page indices[indptr[s] + j / page_size], row j % page_size.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/cpu_attention_row.h"
#include "backend/cpu/cpu_backend.h"

namespace lcllm {

void CpuBackend::attention(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                           const AttentionParams& params) {
  const int64_t n_heads = q.dim(1), hd = q.dim(2);
  const int64_t group = n_heads / n_kv_heads_;
  const size_t kv_row = size_t(n_kv_heads_) * size_t(hd);
  const float* kd = k_pool_[size_t(layer)].data();
  const float* vd = v_pool_[size_t(layer)].data();
  const float* qd = static_cast<const float*>(q.data);
  float* od = static_cast<float*>(out.data);
  const std::vector<int32_t> row_seq = cpu_row_sequences(batch);
  const int64_t n_rows = int64_t(row_seq.size());

  pool_.parallel_for(n_rows * n_heads, [&](int64_t b, int64_t e, int32_t) {
    CpuAttentionScratch scratch;
    for (int64_t item = b; item < e; ++item) {
      const int64_t r = item / n_heads, h = item % n_heads, kvh = h / group;
      const int32_t s = row_seq[size_t(r)];
      const int32_t pos = batch.query_pos[size_t(r)];
      const int32_t visible_end = std::min(pos + 1, batch.kv_len[size_t(s)]);
      const int32_t visible_begin = params.sliding_window > 0 ? std::max(0, pos - params.sliding_window + 1) : 0;
      const CpuKvHeadView kv{kd, vd, batch.pages->indices.data() + batch.pages->indptr[size_t(s)], page_size_,
                             kv_row, size_t(kvh) * size_t(hd), hd};
      cpu_attend_row(qd + (r * n_heads + h) * hd, kv, std::max(0, visible_end - visible_begin),
                     [&](int64_t i) { return visible_begin + int32_t(i); }, params, scratch,
                     od + (r * n_heads + h) * hd);
    }
  });
}

}  // namespace lcllm
