// Sparse attention on the CPU reference backend: attention over explicit key lists, and top-k key selection.
// Both follow cpu_attention.cpp's arithmetic step for step (same accumulation order and precision), so a key list
// that covers the visible range reproduces FULL attention bit for bit (ARCHITECTURE.md §4.1).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention/hip_mask.h"
#include "backend/cpu/cpu_attention_row.h"
#include "backend/cpu/cpu_backend.h"
#include "lcllm/error.h"

namespace lcllm {

void CpuBackend::attention_indexed(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                   const AttentionParams& params, const KeyIndexLists& keys) {
  const int64_t n_rows = batch.query_start[batch.kv_len.size()];
  LCLLM_ASSERT(keys.indptr.size() == size_t(n_rows * n_kv_heads_ + 1), "key lists do not match the batch");
  // An empty key set attends to nothing: zero output (documented in docs/POLICIES.md).
  attend_rows(out, q, layer, batch, params, [&](int64_t r, int32_t s, int64_t kvh) {
    const size_t list = size_t(r * n_kv_heads_ + kvh);
    const int32_t* positions = keys.positions.data() + keys.indptr[list];
    const int32_t kv_len = batch.kv_len[size_t(s)];
    return std::pair{int64_t(keys.indptr[list + 1] - keys.indptr[list]), [positions, kv_len](int64_t i) {
                       const int32_t j = positions[i];
                       LCLLM_ASSERT(j >= 0 && j < kv_len, "key position outside the sequence");
                       return j;
                     }};
  });
}

int32_t CpuBackend::attention_group_mass(const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                         const AttentionParams& params, int64_t r, int32_t s, int32_t kvh,
                                         std::vector<float>& scores, std::vector<double>& mass) const {
  const int64_t n_heads = q.dim(1), hd = q.dim(2);
  const int64_t group = n_heads / n_kv_heads_;
  const float* qd = static_cast<const float*>(q.data);
  const int32_t pos = batch.query_pos[size_t(r)];
  const int32_t visible_end = std::min(pos + 1, batch.kv_len[size_t(s)]);
  const int32_t visible_begin = params.sliding_window > 0 ? std::max(0, pos - params.sliding_window + 1) : 0;
  const int32_t n_vis = std::max(0, visible_end - visible_begin);
  const CpuKvHeadView view = kv_view(layer, batch, s, kvh);
  mass.assign(size_t(n_vis), 0.0);
  for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
    const float* qv = qd + (r * n_heads + h) * hd;
    scores.resize(size_t(n_vis));
    float max_score = -std::numeric_limits<float>::infinity();
    for (int32_t j = visible_begin; j < visible_end; ++j) {
      const float* kv = view.k + view.row_of(j);
      float dotp = 0.f;
      for (int64_t d = 0; d < hd; ++d) dotp += qv[d] * kv[d];
      float sc = dotp * params.scale;
      if (params.softcap > 0) sc = params.softcap * std::tanh(sc / params.softcap);
      scores[size_t(j - visible_begin)] = sc;
      max_score = std::max(max_score, sc);
    }
    double denom = 0;
    for (auto& sc : scores) {
      sc = std::exp(sc - max_score);
      denom += sc;
    }
    for (size_t i = 0; i < scores.size(); ++i) mass[i] += double(scores[i]) / denom;
  }
  return visible_begin;
}

void CpuBackend::attention_select_topk(const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                       const AttentionParams& params, std::span<const int32_t> k_per_row_head,
                                       SelectedKeys& selected) {
  const std::vector<int32_t> row_seq = cpu_row_sequences(batch);
  const int64_t n_rows = int64_t(row_seq.size());
  const int64_t n_items = n_rows * n_kv_heads_;
  LCLLM_ASSERT(k_per_row_head.size() == size_t(n_items), "k_per_row_head does not match the batch");

  std::vector<std::vector<int32_t>> lists(static_cast<size_t>(n_items));  // [n_rows * n_kv_heads]
  pool_.parallel_for(n_items, [&](int64_t b, int64_t e, int32_t) {
    std::vector<float> scores;
    std::vector<double> mass;  // [visible] summed probabilities of the group's query heads
    std::vector<int32_t> order;
    for (int64_t item = b; item < e; ++item) {
      const int32_t k = k_per_row_head[size_t(item)];
      if (k <= 0) continue;
      const int64_t r = item / n_kv_heads_, kvh = item % n_kv_heads_;
      const int32_t s = row_seq[size_t(r)];
      const int32_t visible_begin = attention_group_mass(q, layer, batch, params, r, s, int32_t(kvh), scores, mass);
      const int32_t n_vis = int32_t(mass.size());
      // Top-k by mass, ties to the lower position; then ascending positions.
      order.resize(size_t(n_vis));
      for (int32_t i = 0; i < n_vis; ++i) order[size_t(i)] = i;
      const size_t keep = size_t(std::min(k, n_vis));
      auto better = [&](int32_t a, int32_t c) { return mass[size_t(a)] > mass[size_t(c)] || (mass[size_t(a)] == mass[size_t(c)] && a < c); };
      std::nth_element(order.begin(), order.begin() + std::ptrdiff_t(keep), order.end(), better);
      order.resize(keep);
      std::sort(order.begin(), order.end());
      auto& out = lists[size_t(item)];
      out.resize(keep);
      for (size_t i = 0; i < keep; ++i) out[i] = visible_begin + order[i];
    }
  });
  selected.indptr.assign(size_t(n_items + 1), 0);
  selected.positions.clear();
  for (int64_t i = 0; i < n_items; ++i) {
    selected.positions.insert(selected.positions.end(), lists[size_t(i)].begin(), lists[size_t(i)].end());
    selected.indptr[size_t(i + 1)] = int64_t(selected.positions.size());
  }
}

void CpuBackend::attention_hip_blocks(const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                      const AttentionParams& params, std::span<const HipBlockRequest> requests,
                                      SelectedKeys& blocks) {
  const int64_t n_heads = q.dim(1), hd = q.dim(2);
  const int64_t group = n_heads / n_kv_heads_;
  const float* qd = static_cast<const float*>(q.data);
  const std::vector<int32_t> row_seq = cpu_row_sequences(batch);
  std::vector<std::vector<int32_t>> lists(requests.size());  // [n_requests] block indices
  pool_.parallel_for(int64_t(requests.size()), [&](int64_t b, int64_t e, int32_t) {
    for (int64_t i = b; i < e; ++i) {
      const HipBlockRequest& rq = requests[size_t(i)];
      LCLLM_ASSERT(rq.row_begin < rq.row_end, "HiP request without rows");
      const int32_t s = row_seq[size_t(rq.row_begin)];
      const CpuKvHeadView view = kv_view(layer, batch, s, rq.kv_head);
      // score(j): the largest logit any of the block's query heads gives key j among the rows that see it
      // (softcap is monotonic, so the order of raw scaled logits is the order of the capped ones).
      auto score = [&](int32_t j) {
        const float* kr = view.k + view.row_of(j);
        float best = -std::numeric_limits<float>::infinity();
        for (int32_t r = rq.row_begin; r < rq.row_end; ++r) {
          if (batch.query_pos[size_t(r)] < j) continue;
          for (int64_t h = rq.kv_head * group; h < (rq.kv_head + 1) * group; ++h) {
            const float* qv = qd + (r * n_heads + h) * hd;
            float dotp = 0.f;
            for (int64_t d = 0; d < hd; ++d) dotp += qv[d] * kr[d];
            best = std::max(best, dotp * params.scale);
          }
        }
        return best;
      };
      lists[size_t(i)] = hip_select_blocks(rq.lo, rq.hi, rq.k, rq.block_size_k, score);
    }
  });
  blocks.indptr.assign(requests.size() + 1, 0);
  blocks.positions.clear();
  for (size_t i = 0; i < lists.size(); ++i) {
    blocks.positions.insert(blocks.positions.end(), lists[i].begin(), lists[i].end());
    blocks.indptr[i + 1] = int64_t(blocks.positions.size());
  }
}

}  // namespace lcllm
