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
#include "backend/cpu/cpu_simd.h"

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
  std::vector<size_t> rows;          // [n_keys] each key's offset in the K and V storage
  std::vector<const float*> v_rows;  // [n_keys] each key's V vector
};

// out[head_dim] = softmax(scale · q·k_j, softcapped) · v_j over the keys key_at(0..n_keys); zeros when n_keys == 0.
// Scores come four keys at a time (cpu_dot4); each is cpu_dot's sum, so the grouping never changes a bit.
template <class KeyAt>
void cpu_attend_row(const float* q, const CpuKvHeadView& kv, int64_t n_keys, KeyAt key_at,
                    const AttentionParams& params, CpuAttentionScratch& scratch, float* out) {
  const int64_t hd = kv.head_dim;
  scratch.scores.resize(size_t(n_keys));
  scratch.rows.resize(size_t(n_keys));
  for (int64_t i = 0; i < n_keys; ++i) scratch.rows[size_t(i)] = kv.row_of(key_at(i));
  int64_t i = 0;
  for (; i + 4 <= n_keys; i += 4) {
    const float* const k4[4] = {kv.k + scratch.rows[size_t(i)], kv.k + scratch.rows[size_t(i + 1)],
                                kv.k + scratch.rows[size_t(i + 2)], kv.k + scratch.rows[size_t(i + 3)]};
    cpu_dot4(q, k4, hd, scratch.scores.data() + i);
  }
  for (; i < n_keys; ++i) scratch.scores[size_t(i)] = cpu_dot(q, kv.k + scratch.rows[size_t(i)], hd);
  float max_score = -std::numeric_limits<float>::infinity();
  for (auto& sc : scratch.scores) {
    sc *= params.scale;
    if (params.softcap > 0) sc = params.softcap * std::tanh(sc / params.softcap);
    max_score = std::max(max_score, sc);
  }
  if (scratch.scores.empty()) {
    std::fill(out, out + hd, 0.f);
    return;
  }
  double denom = 0;
  for (auto& sc : scratch.scores) {
    sc = std::exp(sc - max_score);
    denom += sc;
  }
  const float inv = float(1.0 / denom);
  scratch.v_rows.resize(scratch.rows.size());
  for (size_t k = 0; k < scratch.scores.size(); ++k) {
    scratch.scores[k] *= inv;
    scratch.v_rows[k] = kv.v + scratch.rows[k];
  }
  cpu_weighted_sum(out, scratch.scores.data(), scratch.v_rows.data(), n_keys, hd);
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
