// The query heads of one GQA group attending to a set of keys of one sequence in the paged KV cache: the arithmetic
// shared by dense attention (cpu_attention.cpp) and attention over explicit key lists (cpu_sparse_attention.cpp),
// so that a key list covering the visible range reproduces dense attention bit for bit (ARCHITECTURE.md §4.1).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
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
  std::vector<float> scores;         // per row [group, span] scores, then probabilities
  std::vector<size_t> rows;          // [n_keys] each key's offset in the K and V storage
  std::vector<const float*> v_rows;  // [n_keys] each key's V vector
  std::vector<int64_t> offsets;      // [rows + 1] where each row's scores start
};

// Keys per pass: 64 keys of K (or V) rows stay in L2 while every (row, head) of a block reads them, so K and V come
// from memory once per block of rows and KV head instead of once per query head.
constexpr int64_t kCpuAttentionKeyBlock = 64;

// How many parts to split each GQA group into so that `items` (row, KV head) items keep `threads` busy: 1 when
// there are enough items, else the smallest divisor of group that gives at least `threads` items (or group).
inline int64_t cpu_attention_head_split(int64_t items, int64_t group, int64_t threads) {
  if (items >= threads) return 1;
  for (int64_t split = 2; split < group; ++split) {
    if (group % split == 0 && items * split >= threads) return split;
  }
  return std::max<int64_t>(group, 1);
}

// One query row of a block: its group's heads attend to keys [first, last) of the block's key list.
struct CpuRowSpan {
  const float* q;  // [group, head_dim] the row's query heads of the KV head
  float* out;      // [group, head_dim]
  int64_t first = 0, last = 0;
};

// For each row and each of the group's heads h: out[h] = softmax(scale · q[h]·k_j, softcapped) · v_j over the
// keys key_at(first..last) of the shared list key_at(0..n_keys); zeros when the span is empty.
// Each score is cpu_dot's sum (four keys at a time through cpu_dot4, which gives the same bits), and each output
// adds p_j · v_j in ascending j from its span's first key (cpu_weighted_sum_add, block after block): neither the
// rows sharing the list nor the blocking changes a bit, so one row alone over exactly its keys gives the same
// output (dense attention vs a covering key set, ARCHITECTURE.md §4.1).
template <class KeyAt>
void cpu_attend_block(std::span<const CpuRowSpan> rows, int64_t group, const CpuKvHeadView& kv, int64_t n_keys,
                      KeyAt key_at, const AttentionParams& params, CpuAttentionScratch& scratch) {
  const int64_t hd = kv.head_dim;
  // Scores of row i, head h at scratch.scores[offset[i] + h * span_i + (j - first_i)].
  std::vector<int64_t>& offset = scratch.offsets;
  offset.assign(rows.size() + 1, 0);
  for (size_t i = 0; i < rows.size(); ++i) {
    std::fill(rows[i].out, rows[i].out + group * hd, 0.f);
    offset[i + 1] = offset[i] + group * (rows[i].last - rows[i].first);
  }
  if (offset.back() == 0) return;
  scratch.scores.resize(size_t(offset.back()));
  scratch.rows.resize(size_t(n_keys));
  scratch.v_rows.resize(size_t(n_keys));
  for (int64_t j = 0; j < n_keys; ++j) {
    scratch.rows[size_t(j)] = kv.row_of(key_at(j));
    scratch.v_rows[size_t(j)] = kv.v + scratch.rows[size_t(j)];
  }
  // Every 64-key block [kb, ke), every row's part [a, e) of it (non-empty), in ascending blocks.
  auto for_each_block_part = [&](auto&& fn) {
    for (int64_t kb = 0; kb < n_keys; kb += kCpuAttentionKeyBlock) {
      const int64_t ke = std::min(n_keys, kb + kCpuAttentionKeyBlock);
      for (size_t i = 0; i < rows.size(); ++i) {
        const int64_t a = std::max(kb, rows[i].first), e = std::min(ke, rows[i].last);
        if (a < e) fn(i, a, e);
      }
    }
  };
  for_each_block_part([&](size_t i, int64_t a, int64_t e) {
    const CpuRowSpan& row = rows[i];
    const int64_t span = row.last - row.first;
    for (int64_t h = 0; h < group; ++h) {
      float* sc = scratch.scores.data() + offset[i] + h * span;  // key j at sc[j - row.first]
      const float* qh = row.q + h * hd;
      int64_t j = a;
      for (; j + 4 <= e; j += 4) {
        const float* const k4[4] = {kv.k + scratch.rows[size_t(j)], kv.k + scratch.rows[size_t(j + 1)],
                                    kv.k + scratch.rows[size_t(j + 2)], kv.k + scratch.rows[size_t(j + 3)]};
        cpu_dot4(qh, k4, hd, sc + (j - row.first));
      }
      for (; j < e; ++j) sc[j - row.first] = cpu_dot(qh, kv.k + scratch.rows[size_t(j)], hd);
    }
  });
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t span = rows[i].last - rows[i].first;
    for (int64_t h = 0; h < group && span > 0; ++h) {
      float* sc = scratch.scores.data() + offset[i] + h * span;
      float max_score = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < span; ++j) {
        sc[j] *= params.scale;
        if (params.softcap > 0) sc[j] = params.softcap * std::tanh(sc[j] / params.softcap);
        max_score = std::max(max_score, sc[j]);
      }
      double denom = 0;
      for (int64_t j = 0; j < span; ++j) {
        sc[j] = std::exp(sc[j] - max_score);
        denom += sc[j];
      }
      const float inv = float(1.0 / denom);
      for (int64_t j = 0; j < span; ++j) sc[j] *= inv;
    }
  }
  for_each_block_part([&](size_t i, int64_t a, int64_t e) {
    const CpuRowSpan& row = rows[i];
    const int64_t span = row.last - row.first;
    for (int64_t h = 0; h < group; ++h) {
      const float* p = scratch.scores.data() + offset[i] + h * span + (a - row.first);
      cpu_weighted_sum_add(row.out + h * hd, p, scratch.v_rows.data() + a, e - a, hd);
    }
  });
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

  // One item per (row, KV head): the group's query heads share every K and V load. With fewer items than threads
  // (a decode step of few sequences) each query head is its own item, so every thread has work; a head's output
  // does not depend on the split.
  const int64_t split = cpu_attention_head_split(n_rows * n_kv_heads_, group, pool_.size());
  const int64_t heads_per_item = group / split;
  pool_.parallel_for(n_rows * n_kv_heads_ * split, [&](int64_t b, int64_t e, int32_t) {
    CpuAttentionScratch scratch;
    for (int64_t item = b; item < e; ++item) {
      const int64_t r = item / (n_kv_heads_ * split), kvh = item / split % n_kv_heads_, part = item % split;
      const int32_t s = row_seq[size_t(r)];
      const CpuKvHeadView kv = kv_view(layer, batch, s, kvh);
      const auto [n_keys, key_at] = keys_of(r, s, kvh);
      const int64_t first_head = (r * n_heads + kvh * group + part * heads_per_item) * hd;
      const CpuRowSpan row{qd + first_head, od + first_head, 0, n_keys};
      cpu_attend_block(std::span<const CpuRowSpan>(&row, 1), heads_per_item, kv, n_keys, key_at, params, scratch);
    }
  });
}

}  // namespace lcllm
