// Host side of attention: turns the step's AttentionBatch into per-row key ranges (the causal + sliding-window rule
// of cpu_attention.cpp), prefill tiles or decode splits, uploads them with the CSR block tables, and launches.
#include <algorithm>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "kernels/attention.h"
#include "lcllm/error.h"

namespace lcllm {

void CudaBackend::attention(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                            const AttentionParams& params) {
  forget_converted();
  LCLLM_ASSERT(q.dtype == DType::DTYPE_F32 && out.dtype == DType::DTYPE_F32, "attention activations are fp32");
  const int32_t n_heads = int32_t(q.dim(1)), hd = int32_t(q.dim(2));
  LCLLM_ASSERT(hd == head_dim_ && n_heads % n_kv_heads_ == 0, "attention shape does not match the KV pool");
  const CsrPages& pages = *batch.pages;
  const int32_t n_seq = int32_t(batch.kv_len.size());
  LCLLM_ASSERT(batch.query_start.size() == size_t(n_seq) + 1 && pages.indptr.size() == size_t(n_seq) + 1,
               "attention batch arrays disagree on the number of sequences");
  const int32_t n_rows = batch.query_start[size_t(n_seq)];
  if (n_rows == 0) return;

  // Per-row visible key range, exactly the CPU reference's rule.
  std::vector<int32_t> row_seq(static_cast<size_t>(n_rows)), row_begin(row_seq.size()), row_end(row_seq.size());
  int32_t max_rows_per_seq = 0, max_span = 0;
  for (int32_t s = 0; s < n_seq; ++s) {
    const int32_t r0 = batch.query_start[size_t(s)], r1 = batch.query_start[size_t(s + 1)];
    max_rows_per_seq = std::max(max_rows_per_seq, r1 - r0);
    const int64_t n_pages_seq = pages.indptr[size_t(s + 1)] - pages.indptr[size_t(s)];
    LCLLM_ASSERT(int64_t(batch.kv_len[size_t(s)]) <= n_pages_seq * page_size_, "kv_len exceeds the block table");
    for (int32_t r = r0; r < r1; ++r) {
      const int32_t pos = batch.query_pos[size_t(r)];
      const int32_t end = std::min(pos + 1, batch.kv_len[size_t(s)]);
      const int32_t begin = params.sliding_window > 0 ? std::max(0, pos - params.sliding_window + 1) : 0;
      row_seq[size_t(r)] = s;
      row_begin[size_t(r)] = begin;
      row_end[size_t(r)] = std::max(begin, end);
      max_span = std::max(max_span, row_end[size_t(r)] - begin);
    }
  }

  bool use_decode = max_rows_per_seq <= 1;
  if (attention_kernel_ == CudaAttentionKernel::CUDA_ATTENTION_PREFILL) use_decode = false;
  if (attention_kernel_ == CudaAttentionKernel::CUDA_ATTENTION_DECODE) use_decode = true;

  // Prefill tiles: runs of rows of one sequence, as many as the kernel packs per block.
  std::vector<int32_t> tile_row0, tile_rows;
  if (!use_decode) {
    const int32_t tile = attention_prefill_tile_rows(hd, n_heads / n_kv_heads_);
    for (int32_t s = 0; s < n_seq; ++s) {
      for (int32_t r = batch.query_start[size_t(s)]; r < batch.query_start[size_t(s + 1)]; r += tile) {
        tile_row0.push_back(r);
        tile_rows.push_back(std::min(tile, batch.query_start[size_t(s + 1)] - r));
      }
    }
  }

  // Everything this call uploads goes in one staged copy (one H2D transfer per call, not seven: at long-context
  // decode the per-copy cost is a visible part of the step).
  std::vector<int32_t> pack;
  pack.reserve(3 * row_seq.size() + pages.indptr.size() + pages.indices.size() + 2 * tile_row0.size());
  auto append = [&pack](const std::vector<int32_t>& v) {
    const size_t at = pack.size();
    pack.insert(pack.end(), v.begin(), v.end());
    return at;
  };
  const size_t o_seq = append(row_seq), o_begin = append(row_begin), o_end = append(row_end);
  const size_t o_indptr = append(pages.indptr), o_indices = append(pages.indices);
  const size_t o_t0 = append(tile_row0), o_tn = append(tile_rows);
  if (recording_) {
    // A recorded decode step's signature contains every staged offset: pad the pack to a bucket so the block
    // tables' growth (one page every page_size steps) does not make each step a new graph. Kernels read only the
    // entries the CSR ranges name.
    constexpr size_t kPackBucket = 4096;
    pack.resize((pack.size() + kPackBucket - 1) / kPackBucket * kPackBucket, 0);
  }
  const int32_t* dev = stage(std::span<const int32_t>(pack));

  auto a = zeroed<AttentionCommon>();
  a.q = static_cast<const float*>(q.data);
  a.out = static_cast<float*>(out.data);
  a.k_pool = k_layer(layer);
  a.v_pool = v_layer(layer);
  a.row_seq = dev + o_seq;
  a.row_begin = dev + o_begin;
  a.row_end = dev + o_end;
  a.page_indptr = dev + o_indptr;
  a.page_indices = dev + o_indices;
  a.n_rows = n_rows;
  a.n_heads = n_heads;
  a.n_kv_heads = n_kv_heads_;
  a.head_dim = hd;
  a.page_size = page_size_;
  a.scale = params.scale;
  a.softcap = params.softcap;

  if (!use_decode) {
    auto p = zeroed<PrefillParams>();
    p.a = a;
    p.tile_row0 = dev + o_t0;
    p.tile_rows = dev + o_tn;
    p.n_tiles = int32_t(tile_row0.size());
    enqueue(launch_attention_prefill, p);
    return;
  }

  // Split the longest row's keys so that rows x kv heads x splits fills the GPU (kernels/attention_decode.cu).
  const DecodePlan plan = plan_attention_decode(n_rows, n_heads, n_kv_heads_, hd, max_span);
  auto p = zeroed<DecodeParams>();
  p.a = a;
  p.n_splits = plan.n_splits;
  p.split_len = plan.split_len;
  const size_t parts = size_t(n_rows) * size_t(n_heads) * size_t(plan.n_splits);
  p.part_o = static_cast<float*>(scratch(parts * size_t(hd) * sizeof(float), 1));
  p.part_ml = static_cast<float*>(scratch(parts * 2 * sizeof(float), 2));
  enqueue(launch_attention_decode, p);
}

}  // namespace lcllm
