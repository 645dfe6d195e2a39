// Causal GQA attention over the paged KV cache: the reference every GPU kernel and sparse policy is checked
// against. Keys of sequence s at position j live in page indices[indptr[s] + j / page_size], row j % page_size.
#include <algorithm>
#include <vector>

#include "backend/cpu/cpu_attention_row.h"
#include "backend/cpu/cpu_backend.h"

namespace lcllm {

namespace {

// Query rows of one sequence attended together: their visible ranges overlap, so each 64-key block of K and V is
// read once for all of them (a prefill chunk's rows; a decode row is a block of one).
constexpr int64_t kRowsPerBlock = 8;
constexpr int64_t kScoreBudgetFloats = int64_t(4) << 20;  // 16 MiB of scores per thread

struct RowBlock {
  int32_t seq, row_begin, row_end;
};

}  // namespace

void CpuBackend::attention(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                           const AttentionParams& params) {
  const int64_t n_heads = q.dim(1), hd = q.dim(2);
  const int64_t group = n_heads / n_kv_heads_;
  const float* qd = static_cast<const float*>(q.data);
  float* od = static_cast<float*>(out.data);
  // Rows per block: 8, fewer when the block's scores (rows x group x keys floats per thread) would pass 16 MiB.
  int32_t longest = 1;
  for (int32_t len : batch.kv_len) longest = std::max(longest, len);
  const int32_t rows_per_block =
      int32_t(std::clamp<int64_t>(kScoreBudgetFloats / (group * int64_t(longest)), 1, kRowsPerBlock));
  std::vector<RowBlock> blocks;  // [n_blocks]
  for (size_t s = 0; s < batch.kv_len.size(); ++s) {
    for (int32_t r = batch.query_start[s]; r < batch.query_start[s + 1]; r += rows_per_block) {
      blocks.push_back({int32_t(s), r, std::min(batch.query_start[s + 1], r + rows_per_block)});
    }
  }
  // Few blocks (a decode step): split the group's heads over the threads (cpu_attention_row.h).
  const int64_t split = cpu_attention_head_split(int64_t(blocks.size()) * n_kv_heads_, group, pool_.size());
  const int64_t heads_per_item = group / split;
  pool_.parallel_for(int64_t(blocks.size()) * n_kv_heads_ * split, [&](int64_t b, int64_t e, int32_t) {
    CpuAttentionScratch scratch;
    std::vector<CpuRowSpan> rows;
    std::vector<VisibleKeys> visible;  // [rows of the block]
    for (int64_t item = b; item < e; ++item) {
      const RowBlock& blk = blocks[size_t(item / (n_kv_heads_ * split))];
      const int64_t kvh = item / split % n_kv_heads_, part = item % split;
      const CpuKvHeadView kv = kv_view(layer, batch, blk.seq, kvh);
      // The block's key list is the union [lo, hi) of its rows' visible ranges; each row spans its own part.
      int32_t lo = INT32_MAX, hi = 0;
      visible.clear();
      for (int32_t r = blk.row_begin; r < blk.row_end; ++r) {
        const VisibleKeys v = attention_visible_keys(batch.query_pos[size_t(r)], batch.kv_len[size_t(blk.seq)],
                                                     params.sliding_window);
        if (v.hi > v.lo) lo = std::min(lo, v.lo), hi = std::max(hi, v.hi);
        visible.push_back(v);
      }
      if (hi <= lo) lo = hi = 0;
      rows.clear();
      for (int32_t r = blk.row_begin; r < blk.row_end; ++r) {
        const VisibleKeys v = visible[size_t(r - blk.row_begin)];
        const int64_t at = (int64_t(r) * n_heads + kvh * group + part * heads_per_item) * hd;
        const int64_t first = v.hi > v.lo ? v.lo - lo : 0, last = v.hi > v.lo ? v.hi - lo : 0;
        rows.push_back({qd + at, od + at, first, last});
      }
      cpu_attend_block(std::span<const CpuRowSpan>(rows), heads_per_item, kv, int64_t(hi - lo),
                       [lo](int64_t i) { return lo + int32_t(i); }, params, scratch);
    }
  });
}

}  // namespace lcllm
