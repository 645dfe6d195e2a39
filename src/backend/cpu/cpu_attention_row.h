// The query heads of one GQA group attending to a set of keys of one sequence in the paged KV cache: the arithmetic
// shared by dense attention (cpu_attention.cpp) and attention over explicit key lists (cpu_sparse_attention.cpp),
// so that a key list covering the visible range reproduces dense attention bit for bit (ARCHITECTURE.md §4.1).
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
  std::vector<float> scores;         // [group, n_keys] scores, then probabilities
  std::vector<size_t> rows;          // [n_keys] each key's offset in the K and V storage
  std::vector<const float*> v_rows;  // [n_keys] each key's V vector
};

// Keys per pass of the group's heads: 64 keys of K (or V) rows stay in L2 while every head of the group reads
// them, so K and V come from memory once per (row, KV head) instead of once per query head.
constexpr int64_t kCpuAttentionKeyBlock = 64;

// For each of the group's heads h < group: out[h][head_dim] = softmax(scale · q[h]·k_j, softcapped) · v_j over the
// keys key_at(0..n_keys); zeros when n_keys == 0. q and out: [group, head_dim], contiguous.
// Each score is cpu_dot's sum (four keys at a time through cpu_dot4, which gives the same bits), and each output
// adds p_j · v_j in ascending j (cpu_weighted_sum_add, block after block): the grouping never changes a bit.
template <class KeyAt>
void cpu_attend_group(const float* q, int64_t group, const CpuKvHeadView& kv, int64_t n_keys, KeyAt key_at,
                      const AttentionParams& params, CpuAttentionScratch& scratch, float* out) {
  const int64_t hd = kv.head_dim;
  std::fill(out, out + group * hd, 0.f);
  if (n_keys == 0) return;
  scratch.scores.resize(size_t(group * n_keys));
  scratch.rows.resize(size_t(n_keys));
  scratch.v_rows.resize(size_t(n_keys));
  for (int64_t i = 0; i < n_keys; ++i) {
    scratch.rows[size_t(i)] = kv.row_of(key_at(i));
    scratch.v_rows[size_t(i)] = kv.v + scratch.rows[size_t(i)];
  }
  for (int64_t kb = 0; kb < n_keys; kb += kCpuAttentionKeyBlock) {
    const int64_t ke = std::min(n_keys, kb + kCpuAttentionKeyBlock);
    for (int64_t h = 0; h < group; ++h) {
      float* sc = scratch.scores.data() + h * n_keys;
      int64_t i = kb;
      for (; i + 4 <= ke; i += 4) {
        const float* const k4[4] = {kv.k + scratch.rows[size_t(i)], kv.k + scratch.rows[size_t(i + 1)],
                                    kv.k + scratch.rows[size_t(i + 2)], kv.k + scratch.rows[size_t(i + 3)]};
        cpu_dot4(q + h * hd, k4, hd, sc + i);
      }
      for (; i < ke; ++i) sc[i] = cpu_dot(q + h * hd, kv.k + scratch.rows[size_t(i)], hd);
    }
  }
  for (int64_t h = 0; h < group; ++h) {
    float* sc = scratch.scores.data() + h * n_keys;
    float max_score = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n_keys; ++i) {
      sc[i] *= params.scale;
      if (params.softcap > 0) sc[i] = params.softcap * std::tanh(sc[i] / params.softcap);
      max_score = std::max(max_score, sc[i]);
    }
    double denom = 0;
    for (int64_t i = 0; i < n_keys; ++i) {
      sc[i] = std::exp(sc[i] - max_score);
      denom += sc[i];
    }
    const float inv = float(1.0 / denom);
    for (int64_t i = 0; i < n_keys; ++i) sc[i] *= inv;
  }
  for (int64_t kb = 0; kb < n_keys; kb += kCpuAttentionKeyBlock) {
    const int64_t ke = std::min(n_keys, kb + kCpuAttentionKeyBlock);
    for (int64_t h = 0; h < group; ++h) {
      cpu_weighted_sum_add(out + h * hd, scratch.scores.data() + h * n_keys + kb, scratch.v_rows.data() + kb, ke - kb, hd);
    }
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

  // One item per (row, KV head): the group's query heads share every K and V load.
  pool_.parallel_for(n_rows * n_kv_heads_, [&](int64_t b, int64_t e, int32_t) {
    CpuAttentionScratch scratch;
    for (int64_t item = b; item < e; ++item) {
      const int64_t r = item / n_kv_heads_, kvh = item % n_kv_heads_;
      const int32_t s = row_seq[size_t(r)];
      const CpuKvHeadView kv = kv_view(layer, batch, s, kvh);
      const auto [n_keys, key_at] = keys_of(r, s, kvh);
      const int64_t first_head = (r * n_heads + kvh * group) * hd;
      cpu_attend_group(qd + first_head, group, kv, n_keys, key_at, params, scratch, od + first_head);
    }
  });
}

}  // namespace lcllm
