// One query head attending to a set of keys of one sequence in the paged KV cache: the arithmetic shared by dense
// attention (cpu_attention.cpp) and attention over explicit key lists (cpu_sparse_attention.cpp), so that a key
// list covering the visible range reproduces dense attention bit for bit (ARCHITECTURE.md §4.1).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"

namespace lcllm {

// [n_rows] the sequence each query row of the batch belongs to, so work can be split over (row, head) pairs.
inline std::vector<int32_t> cpu_row_sequences(const AttentionBatch& batch) {
  const size_t n_seq = batch.kv_len.size();
  std::vector<int32_t> row_seq(size_t(batch.query_start[n_seq]));
  for (size_t s = 0; s < n_seq; ++s) {
    for (int32_t r = batch.query_start[s]; r < batch.query_start[s + 1]; ++r) row_seq[size_t(r)] = int32_t(s);
  }
  return row_seq;
}

// Scratch reused across rows by one thread.
struct CpuAttentionScratch {
  std::vector<float> scores;
  std::vector<size_t> rows;
};

// out[head_dim] = softmax(scale · q·k_j, softcapped) · v_j over the keys key_at(0..n_keys); zeros when n_keys == 0.
template <class KeyAt>
void cpu_attend_row(const float* q, const CpuKvHeadView& kv, int64_t n_keys, KeyAt key_at,
                    const AttentionParams& params, CpuAttentionScratch& scratch, float* out) {
  const int64_t hd = kv.head_dim;
  scratch.scores.clear();
  scratch.rows.clear();
  float max_score = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n_keys; ++i) {
    const size_t row = kv.row_of(key_at(i));
    const float* kr = kv.k + row;
    float dotp = 0.f;
    for (int64_t d = 0; d < hd; ++d) dotp += q[d] * kr[d];
    float sc = dotp * params.scale;
    if (params.softcap > 0) sc = params.softcap * std::tanh(sc / params.softcap);
    scratch.scores.push_back(sc);
    scratch.rows.push_back(row);
    max_score = std::max(max_score, sc);
  }
  std::fill(out, out + hd, 0.f);
  if (scratch.scores.empty()) return;
  double denom = 0;
  for (auto& sc : scratch.scores) {
    sc = std::exp(sc - max_score);
    denom += sc;
  }
  const float inv = float(1.0 / denom);
  for (size_t k = 0; k < scratch.scores.size(); ++k) {
    const float p = scratch.scores[k] * inv;
    const float* vr = kv.v + scratch.rows[k];
    for (int64_t d = 0; d < hd; ++d) out[d] += p * vr[d];
  }
}

template <class KeysOf>
void CpuBackend::attend_rows(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                             const AttentionParams& params, const KeysOf& keys_of) {
  const int64_t n_heads = q.dim(1), hd = q.dim(2);
  const int64_t group = n_heads / n_kv_heads_;
  const float* qd = static_cast<const float*>(q.data);
  float* od = static_cast<float*>(out.data);
  const std::vector<int32_t> row_seq = cpu_row_sequences(batch);
  const int64_t n_rows = int64_t(row_seq.size());

  pool_.parallel_for(n_rows * n_heads, [&](int64_t b, int64_t e, int32_t) {
    CpuAttentionScratch scratch;
    for (int64_t item = b; item < e; ++item) {
      const int64_t r = item / n_heads, h = item % n_heads, kvh = h / group;
      const int32_t s = row_seq[size_t(r)];
      const CpuKvHeadView kv = kv_view(layer, batch, s, kvh);
      const auto [n_keys, key_at] = keys_of(r, s, kvh);
      cpu_attend_row(qd + (r * n_heads + h) * hd, kv, n_keys, key_at, params, scratch, od + (r * n_heads + h) * hd);
    }
  });
}

}  // namespace lcllm
