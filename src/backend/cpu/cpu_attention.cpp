// Causal GQA attention over the paged KV cache: the reference every GPU kernel and sparse policy is checked
// against. Keys of sequence s at position j live in page indices[indptr[s] + j / page_size], row j % page_size.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

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
  const int64_t n_seq = int64_t(batch.kv_len.size());
  const int64_t n_rows = batch.query_start[size_t(n_seq)];

  // Row -> sequence lookup so work can be split over (row, head) pairs.
  std::vector<int32_t> row_seq(static_cast<size_t>(n_rows));
  for (int64_t s = 0; s < n_seq; ++s) {
    for (int32_t r = batch.query_start[size_t(s)]; r < batch.query_start[size_t(s + 1)]; ++r) row_seq[size_t(r)] = int32_t(s);
  }

  pool_.parallel_for(n_rows * n_heads, [&](int64_t b, int64_t e, int32_t) {
    std::vector<float> scores;
    std::vector<int64_t> key_slot;
    for (int64_t item = b; item < e; ++item) {
      const int64_t r = item / n_heads, h = item % n_heads, kvh = h / group;
      const int32_t s = row_seq[size_t(r)];
      const int32_t pos = batch.query_pos[size_t(r)];
      const int32_t visible_end = std::min(pos + 1, batch.kv_len[size_t(s)]);
      const int32_t visible_begin = params.sliding_window > 0 ? std::max(0, pos - params.sliding_window + 1) : 0;
      const int32_t* pages = batch.pages->indices.data() + batch.pages->indptr[size_t(s)];
      const float* qv = qd + (r * n_heads + h) * hd;
      scores.clear();
      key_slot.clear();
      float max_score = -std::numeric_limits<float>::infinity();
      for (int32_t j = visible_begin; j < visible_end; ++j) {
        const int64_t slot = int64_t(pages[j / page_size_]) * page_size_ + j % page_size_;
        const float* kv = kd + size_t(slot) * kv_row + size_t(kvh) * size_t(hd);
        float dotp = 0.f;
        for (int64_t d = 0; d < hd; ++d) dotp += qv[d] * kv[d];
        float sc = dotp * params.scale;
        if (params.softcap > 0) sc = params.softcap * std::tanh(sc / params.softcap);
        scores.push_back(sc);
        key_slot.push_back(slot);
        max_score = std::max(max_score, sc);
      }
      float* ov = od + (r * n_heads + h) * hd;
      std::fill(ov, ov + hd, 0.f);
      if (scores.empty()) continue;  // cannot happen for a causal row (it sees itself); kept for safety
      double denom = 0;
      for (auto& sc : scores) {
        sc = std::exp(sc - max_score);
        denom += sc;
      }
      const float inv = float(1.0 / denom);
      for (size_t k = 0; k < scores.size(); ++k) {
        const float p = scores[k] * inv;
        const float* vv = vd + size_t(key_slot[k]) * kv_row + size_t(kvh) * size_t(hd);
        for (int64_t d = 0; d < hd; ++d) ov[d] += p * vv[d];
      }
    }
  });
}

}  // namespace lcllm
