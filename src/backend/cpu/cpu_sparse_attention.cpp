// Sparse attention on the CPU reference backend: attention over key sets, top-k key selection into the step's
// slots, and HiP block scoring.
// Both follow cpu_attention.cpp's arithmetic step for step (same accumulation order and precision), so a key list
// that covers the visible range reproduces FULL attention bit for bit (ARCHITECTURE.md §4.1).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention/hip_mask.h"
#include "backend/cpu/cpu_attention_row.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_simd.h"
#include "lcllm/error.h"

namespace lcllm {

void CpuBackend::selection_reserve(int32_t n_slots, int32_t n_items, int32_t stride) {
  slots_.assign(size_t(n_slots), std::vector<std::vector<int32_t>>(size_t(n_items)));
  slot_stride_ = stride;  // the GPU's slots hold no more: the CPU keeps the same contract, so CPU tests check it
}

void CpuBackend::selection_write(int32_t slot, std::span<const int64_t> indptr, std::span<const int32_t> positions) {
  LCLLM_ASSERT(slot >= 0 && size_t(slot) < slots_.size(), "selection slot not reserved");
  auto& lists = slots_[size_t(slot)];
  LCLLM_ASSERT(indptr.size() == lists.size() + 1, "selection lists do not match the slot");
  for (size_t i = 0; i < lists.size(); ++i) {
    LCLLM_ASSERT(indptr[i + 1] - indptr[i] <= slot_stride_, "selection list longer than the slot's stride");
    lists[i].assign(positions.begin() + indptr[i], positions.begin() + indptr[i + 1]);
  }
}

void CpuBackend::selection_read(int32_t slot, std::vector<int64_t>& indptr, std::vector<int32_t>& positions) {
  LCLLM_ASSERT(slot >= 0 && size_t(slot) < slots_.size(), "selection slot not reserved");
  indptr.assign(1, 0);
  positions.clear();
  for (const auto& list : slots_[size_t(slot)]) {
    positions.insert(positions.end(), list.begin(), list.end());
    indptr.push_back(int64_t(positions.size()));
  }
}

void CpuBackend::attention_key_sets(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                    const AttentionParams& params, const LayerKeySets& keys) {
  // Keys in ascending order: [lo, sink_end), the list's entries inside [sink_end, recent_begin) (a contiguous run
  // of the ascending list), [recent_begin, hi). A set covering the visible range therefore visits exactly the keys
  // of attention(), in the same order, and reproduces it bit for bit (ARCHITECTURE.md §4.1). Empty set: zeros.
  attend_rows(out, q, layer, batch, params, [&](int64_t r, int32_t s, int64_t kvh) {
    const size_t item = size_t(r * n_kv_heads_ + kvh);
    const KeySet ks = keys.sets[item];
    const int32_t kv_len = batch.kv_len[size_t(s)];
    LCLLM_ASSERT(ks.lo <= ks.sink_end && ks.sink_end <= ks.recent_begin && ks.recent_begin <= ks.hi && ks.hi <= kv_len,
                 "key set outside the sequence");
    const int32_t* list = nullptr;
    int64_t n_list = 0;
    if (ks.list >= 0) {
      LCLLM_ASSERT(size_t(ks.list) < slots_.size(), "key set names a slot the step did not reserve");
      const std::vector<int32_t>& all = slots_[size_t(ks.list)][item];
      const auto first = std::lower_bound(all.begin(), all.end(), ks.sink_end);
      const auto last = std::lower_bound(first, all.end(), ks.recent_begin);
      list = all.data() + (first - all.begin());
      n_list = last - first;
    }
    const int64_t n_sink = ks.sink_end - ks.lo, n_recent = ks.hi - ks.recent_begin;
    return std::pair{n_sink + n_list + n_recent, [ks, list, n_sink, n_list](int64_t i) {
                       if (i < n_sink) return ks.lo + int32_t(i);
                       if (i < n_sink + n_list) return list[i - n_sink];
                       return ks.recent_begin + int32_t(i - n_sink - n_list);
                     }};
  });
  if (keys.select_k != nullptr) select_topk(q, layer, batch, params, keys);
}

void CpuBackend::attention_group_mass_range(const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                            const AttentionParams& params, int64_t r, int32_t s, int32_t kvh,
                                            int32_t lo, int32_t hi, std::vector<float>& scores,
                                            std::vector<double>& mass, std::vector<int32_t>* head_argmax) const {
  const int64_t n_heads = q.dim(1), hd = q.dim(2);
  const int64_t group = n_heads / n_kv_heads_;
  const float* qd = static_cast<const float*>(q.data);
  const int32_t n_vis = std::max(0, hi - lo);
  const CpuKvHeadView view = kv_view(layer, batch, s, kvh);
  mass.assign(size_t(n_vis), 0.0);
  if (head_argmax) head_argmax->assign(size_t(group), lo);
  for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
    const float* qv = qd + (r * n_heads + h) * hd;
    scores.resize(size_t(n_vis));
    float max_score = -std::numeric_limits<float>::infinity();
    for (int32_t j = lo; j < hi; ++j) {
      float sc = cpu_dot(qv, view.k + view.row_of(j), hd) * params.scale;
      if (params.softcap > 0) sc = params.softcap * std::tanh(sc / params.softcap);
      scores[size_t(j - lo)] = sc;
      if (sc > max_score) {
        max_score = sc;
        if (head_argmax) (*head_argmax)[size_t(h - kvh * group)] = j;
      }
    }
    double denom = 0;
    for (auto& sc : scores) {
      sc = std::exp(sc - max_score);
      denom += sc;
    }
    for (size_t i = 0; i < scores.size(); ++i) mass[i] += double(scores[i]) / denom;
  }
}

int32_t CpuBackend::attention_group_mass(const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                         const AttentionParams& params, int64_t r, int32_t s, int32_t kvh,
                                         std::vector<float>& scores, std::vector<double>& mass,
                                         std::vector<int32_t>* head_argmax) const {
  const VisibleKeys v = attention_visible_keys(batch.query_pos[size_t(r)], batch.kv_len[size_t(s)], params.sliding_window);
  attention_group_mass_range(q, layer, batch, params, r, s, kvh, v.lo, v.hi, scores, mass, head_argmax);
  return v.lo;
}

void CpuBackend::select_topk(const Tensor& q, int32_t layer, const AttentionBatch& batch,
                             const AttentionParams& params, const LayerKeySets& keys) {
  const std::vector<int32_t> row_seq = cpu_row_sequences(batch);
  const int64_t n_items = int64_t(row_seq.size()) * n_kv_heads_;
  LCLLM_ASSERT(keys.select_slot >= 0 && size_t(keys.select_slot) < slots_.size() &&
                   slots_[size_t(keys.select_slot)].size() == size_t(n_items),
               "selection slot not reserved for this batch");
  auto& lists = slots_[size_t(keys.select_slot)];  // [n_rows * n_kv_heads]
  pool_.parallel_for(n_items, [&](int64_t b, int64_t e, int32_t) {
    std::vector<float> scores;
    std::vector<double> mass;  // [set size] summed probabilities of the group's query heads
    std::vector<int32_t> order;
    for (int64_t item = b; item < e; ++item) {
      const int32_t k = keys.select_k[size_t(item)];
      if (k <= 0) continue;
      const int64_t r = item / n_kv_heads_, kvh = item % n_kv_heads_;
      const KeySet ks = keys.sets[size_t(item)];
      LCLLM_ASSERT(ks.list < 0 && ks.sink_end == ks.hi, "a selecting item's key set is a range");
      attention_group_mass_range(q, layer, batch, params, r, row_seq[size_t(r)], int32_t(kvh), ks.lo, ks.hi, scores,
                                 mass);
      const int32_t n_vis = int32_t(mass.size());
      // Top-k by mass, ties to the lower position; then ascending positions.
      order.resize(size_t(n_vis));
      for (int32_t i = 0; i < n_vis; ++i) order[size_t(i)] = i;
      const size_t keep = size_t(std::min(k, n_vis));
      auto better = [&](int32_t a, int32_t c) {
        return mass[size_t(a)] > mass[size_t(c)] || (mass[size_t(a)] == mass[size_t(c)] && a < c);
      };
      std::nth_element(order.begin(), order.begin() + std::ptrdiff_t(keep), order.end(), better);
      order.resize(keep);
      std::sort(order.begin(), order.end());
      auto& out = lists[size_t(item)];
      out.resize(keep);
      for (size_t i = 0; i < keep; ++i) out[i] = ks.lo + order[i];
    }
  });
}

void CpuBackend::attention_hip_blocks(const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                      const AttentionParams& params, std::span<const HipBlockRequest> requests,
                                      HipBlocks& blocks) {
  const int64_t n_heads = q.dim(1), hd = q.dim(2);
  const int64_t group = n_heads / n_kv_heads_;
  const float* qd = static_cast<const float*>(q.data);
  const std::vector<int32_t> row_seq = cpu_row_sequences(batch);
  std::vector<std::vector<int32_t>> lists(requests.size());  // [n_requests] block indices
  std::vector<std::vector<HipPiece>> stages(requests.size());  // [n_requests] coarse stage pieces
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
            best = std::max(best, cpu_dot(qv, kr, hd) * params.scale);
          }
        }
        return best;
      };
      // Stage-wise refresh: resume from the request's (aged) start pieces where they fit the search.
      std::vector<HipPiece> start;
      if (hip_start_usable(rq.start, rq.lo, rq.hi, rq.k, rq.block_size_k)) {
        start = hip_dilate_pieces(rq.start, rq.start_shift, (rq.hi - 1) / rq.block_size_k + 1);
      }
      lists[size_t(i)] = hip_select_blocks_staged(rq.lo, rq.hi, rq.k, rq.block_size_k, rq.descent, score, start,
                                                  rq.stage_round, rq.stage_round >= 0 ? &stages[size_t(i)] : nullptr);
    }
  });
  blocks.indptr.assign(requests.size() + 1, 0);
  blocks.blocks.clear();
  blocks.stage_indptr.clear();
  blocks.stage.clear();
  const bool any_stage =
      std::any_of(requests.begin(), requests.end(), [](const HipBlockRequest& r) { return r.stage_round >= 0; });
  if (any_stage) blocks.stage_indptr.assign(requests.size() + 1, 0);
  for (size_t i = 0; i < lists.size(); ++i) {
    blocks.blocks.insert(blocks.blocks.end(), lists[i].begin(), lists[i].end());
    blocks.indptr[i + 1] = int64_t(blocks.blocks.size());
    if (!any_stage) continue;
    blocks.stage.insert(blocks.stage.end(), stages[i].begin(), stages[i].end());
    blocks.stage_indptr[i + 1] = int64_t(blocks.stage.size());
  }
}

}  // namespace lcllm
