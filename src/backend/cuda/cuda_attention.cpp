// Host side of dense attention: turns the step's AttentionBatch into per-row key ranges (attention_visible_keys),
// prefill tiles or decode splits, uploads them with the CSR block tables in one staged copy, and launches.
#include <algorithm>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "kernels/attention.h"
#include "lcllm/error.h"

namespace lcllm {

CudaAttentionRows CudaBackend::attention_rows(const Tensor& out, const Tensor& q, int32_t layer,
                                              const AttentionBatch& batch, const AttentionParams& params,
                                              bool prefill_tiles, bool row_spans,
                                              std::span<const int32_t> key_rows, int32_t set_tile_align) {
  forget_converted();
  LCLLM_ASSERT(q.dtype == DType::DTYPE_F32 && out.dtype == DType::DTYPE_F32, "attention activations are fp32");
  const int32_t n_heads = int32_t(q.dim(1)), hd = int32_t(q.dim(2));
  LCLLM_ASSERT(hd == head_dim_ && n_heads % n_kv_heads_ == 0, "attention shape does not match the KV pool");
  const CsrPages& pages = *batch.pages;
  const int32_t n_seq = int32_t(batch.kv_len.size());
  LCLLM_ASSERT(batch.query_start.size() == size_t(n_seq) + 1 && pages.indptr.size() == size_t(n_seq) + 1,
               "attention batch arrays disagree on the number of sequences");
  CudaAttentionRows rows;
  const int32_t n_rows = batch.query_start[size_t(n_seq)];
  rows.a = zeroed<AttentionCommon>();
  rows.a.n_rows = n_rows;
  if (n_rows == 0) return rows;

  // Per-row visible key range (attention_visible_keys, the rule the CPU reference and the step plan use).
  std::vector<int32_t> row_seq(static_cast<size_t>(n_rows)), row_begin(row_seq.size()), row_end(row_seq.size());
  for (int32_t s = 0; s < n_seq; ++s) {
    const int32_t r0 = batch.query_start[size_t(s)], r1 = batch.query_start[size_t(s + 1)];
    const int64_t n_pages_seq = pages.indptr[size_t(s + 1)] - pages.indptr[size_t(s)];
    LCLLM_ASSERT(int64_t(batch.kv_len[size_t(s)]) <= n_pages_seq * page_size_, "kv_len exceeds the block table");
    for (int32_t r = r0; r < r1; ++r) {
      const VisibleKeys v = attention_visible_keys(batch.query_pos[size_t(r)], batch.kv_len[size_t(s)], params.sliding_window);
      row_seq[size_t(r)] = s;
      row_begin[size_t(r)] = v.lo;
      row_end[size_t(r)] = v.hi;
      rows.max_span = std::max(rows.max_span, v.hi - v.lo);
    }
  }

  // [n_rows] 1 for key rows (all rows when none are named).
  std::vector<uint8_t> keyed(row_seq.size(), key_rows.empty() ? 1 : 0);
  for (int32_t r : key_rows) {
    LCLLM_ASSERT(r >= 0 && r < n_rows, "key row outside the batch");
    keyed[size_t(r)] = 1;
  }
  // Prefill tiles: runs of rows of one sequence, as many as the kernel packs per block (sequences without key rows).
  std::vector<int32_t> tile_row0, tile_rows;
  if (prefill_tiles) {
    const int32_t tile = attention_prefill_tile_rows(hd, n_heads / n_kv_heads_, kv_layout(layer).dtype, false);
    for (int32_t s = 0; s < n_seq; ++s) {
      const int32_t first = batch.query_start[size_t(s)];
      if (!key_rows.empty() && first < batch.query_start[size_t(s + 1)] && keyed[size_t(first)]) continue;
      for (int32_t r = batch.query_start[size_t(s)]; r < batch.query_start[size_t(s + 1)]; r += tile) {
        tile_row0.push_back(r);
        tile_rows.push_back(std::min(tile, batch.query_start[size_t(s + 1)] - r));
      }
    }
  }
  // Key-set tiles: the key rows of multi-row sequences in runs of at most `tile` rows that never cross a multiple of
  // set_tile_align rows from the sequence's first row; the key rows of one-row sequences go to the split-KV kernels.
  std::vector<int32_t> set_row0, set_rows, single_rows;
  if (set_tile_align > 0) {
    const int32_t tile = attention_prefill_tile_rows(hd, n_heads / n_kv_heads_, kv_layout(layer).dtype, true);
    for (int32_t s = 0; s < n_seq; ++s) {
      const int32_t first = batch.query_start[size_t(s)], end = batch.query_start[size_t(s + 1)];
      if (first == end || !keyed[size_t(first)]) continue;
      if (end - first == 1) {
        single_rows.push_back(first);
        continue;
      }
      for (int32_t r = first; r < end;) {
        const int64_t run_end = first + (int64_t(r - first) / set_tile_align + 1) * set_tile_align;
        const int32_t e = int32_t(std::min<int64_t>({int64_t(r) + tile, int64_t(end), run_end}));
        set_row0.push_back(r);
        set_rows.push_back(e - r);
        r = e;
      }
    }
  }
  std::vector<int32_t> span;  // [n_rows] row_end - row_begin (top-k selection's input)
  std::vector<int64_t> score_offset;  // [n_rows] where each row's scores start (n_heads * span per row)
  if (row_spans) {
    span.resize(row_seq.size());
    score_offset.resize(row_seq.size());
    for (size_t r = 0; r < span.size(); ++r) {
      span[r] = keyed[r] ? row_end[r] - row_begin[r] : 0;
      score_offset[r] = rows.score_elems;
      rows.score_elems += int64_t(n_heads) * span[r];
    }
  }

  // The step plan uploaded rows and block tables once for every layer (batch.uploaded): then only this call's own
  // arrays (prefill tiles, selection spans) are staged. Direct callers get everything staged in one copy (one H2D
  // transfer per call, not seven: at long-context decode the per-copy cost is a visible part of the step).
  const AttentionRowsUploaded& up = batch.uploaded;
  const bool uploaded = up.row_seq != nullptr && up.row_begin != nullptr && up.row_end != nullptr &&
                        up.page_indptr != nullptr && up.page_indices != nullptr;
  LCLLM_ASSERT(!uploaded || up.sliding_window == params.sliding_window,
               "the step plan's row ranges were computed for another sliding window");
  std::vector<int32_t> pack;
  auto append = [&pack](const std::vector<int32_t>& v) {
    const size_t at = pack.size();
    pack.insert(pack.end(), v.begin(), v.end());
    return at;
  };
  size_t o_seq = 0, o_begin = 0, o_end = 0, o_indptr = 0, o_indices = 0;
  if (!uploaded) {
    pack.reserve(3 * row_seq.size() + pages.indptr.size() + pages.indices.size() + 2 * tile_row0.size() + span.size() +
                 2 * set_row0.size() + single_rows.size());
    o_seq = append(row_seq), o_begin = append(row_begin), o_end = append(row_end);
    o_indptr = append(pages.indptr), o_indices = append(pages.indices);
  }
  const size_t o_t0 = append(tile_row0), o_tn = append(tile_rows), o_span = append(span);
  const size_t o_s0 = append(set_row0), o_sn = append(set_rows), o_single = append(single_rows);
  // Windowed heads of this layer read their sequence's ring (cuda_kv_window.cpp): its first slot per sequence.
  int8_t kv_index[64];
  uint64_t ring_heads = 0;
  kv_head_map(layer, kv_index, ring_heads);
  std::vector<int32_t> ring_base;  // [n_seq]
  if (ring_heads != 0) {
    if (batch.seq_ids.size() != size_t(n_seq)) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                  "windowed KV heads need AttentionBatch::seq_ids (one KvCache id per sequence of the step)");
    }
    for (int32_t s = 0; s < n_seq; ++s) ring_base.push_back(ring_of(batch.seq_ids[size_t(s)]) * window_.ring_len);
  }
  const size_t o_ring = append(ring_base);
  if (recording_ && !uploaded) {
    // A recorded decode step's signature contains every staged offset: pad the pack to a bucket so the block
    // tables' growth (one page every page_size steps) does not make each step a new graph. Kernels read only the
    // entries the CSR ranges name.
    constexpr size_t kPackBucket = 4096;
    pack.resize((pack.size() + kPackBucket - 1) / kPackBucket * kPackBucket, 0);
  }
  stage_reserve({pack.size() * sizeof(int32_t), score_offset.size() * sizeof(int64_t)});
  const int32_t* dev = stage(std::span<const int32_t>(pack));
  if (row_spans) rows.score_offset = stage(std::span<const int64_t>(score_offset));

  AttentionCommon& a = rows.a;
  a.q = static_cast<const float*>(q.data);
  a.out = static_cast<float*>(out.data);
  const KvStore pool = pool_store(layer);
  a.k_pool = pool.k;
  a.v_pool = pool.v;
  a.kv_scale = pool.scale;
  a.row_seq = uploaded ? up.row_seq : dev + o_seq;
  a.row_begin = uploaded ? up.row_begin : dev + o_begin;
  a.row_end = uploaded ? up.row_end : dev + o_end;
  a.page_indptr = uploaded ? up.page_indptr : dev + o_indptr;
  a.page_indices = uploaded ? up.page_indices : dev + o_indices;
  a.n_heads = n_heads;
  a.n_kv_heads = n_kv_heads_;
  a.head_dim = hd;
  a.page_size = page_size_;
  a.kv = kv_layout(layer);
  std::copy(std::begin(kv_index), std::end(kv_index), std::begin(a.kv_index));
  a.ring_heads = ring_heads;
  if (ring_heads != 0) {
    const KvStore rings = ring_store(layer);
    a.k_ring = rings.k;
    a.v_ring = rings.v;
    a.ring_scale = rings.scale;
    a.ring_kv = ring_layout(layer);
    a.ring_base = dev + o_ring;
    a.ring_sink = window_.sink;
  }
  a.scale = params.scale;
  a.softcap = params.softcap;
  rows.tile_row0 = dev + o_t0;
  rows.tile_rows = dev + o_tn;
  rows.n_tiles = int32_t(tile_row0.size());
  rows.span = dev + o_span;
  rows.set_tile_row0 = dev + o_s0;
  rows.set_tile_rows = dev + o_sn;
  rows.n_set_tiles = int32_t(set_row0.size());
  rows.single_key_rows = dev + o_single;
  rows.n_single_key_rows = int32_t(single_rows.size());
  return rows;
}

PrefillParams CudaBackend::prefill_params(const CudaAttentionRows& rows) {
  // Windowed heads keep a ring the prefill kernels cannot read: attention() and attention_key_sets() run their
  // layers through the decode kernels only.
  LCLLM_ASSERT(rows.a.ring_heads == 0, "dense prefill over a layer with windowed KV heads");
  auto p = zeroed<PrefillParams>();
  p.a = rows.a;
  p.tile_row0 = rows.tile_row0;
  p.tile_rows = rows.tile_rows;
  p.n_tiles = rows.n_tiles;
  return p;
}

DecodeParams CudaBackend::decode_params(const AttentionCommon& a, int32_t n_rows, int32_t max_keys, int32_t work_keys,
                                        bool stores_scores) {
  // Pick the kernel and split the keys so that rows x kv heads x splits fills the GPU (kernels/attention_decode.cu).
  const DecodePlan plan = plan_attention_decode(n_rows, a.n_heads, n_kv_heads_, a.head_dim, max_keys, work_keys,
                                                a.kv.dtype, stores_scores);
  auto p = zeroed<DecodeParams>();
  p.a = a;
  p.n_splits = plan.n_splits;
  p.split_len = plan.split_len;
  p.tensor_cores = plan.tensor_cores ? 1 : 0;
  const size_t parts = size_t(n_rows) * size_t(a.n_heads) * size_t(plan.n_splits);
  p.part_o = static_cast<float*>(scratch(parts * size_t(a.head_dim) * sizeof(float), kScratchDecodeO));
  p.part_ml = static_cast<float*>(scratch(parts * 2 * sizeof(float), kScratchDecodeMl));
  return p;
}

void CudaBackend::attention(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                            const AttentionParams& params) {
  const int32_t n_rows = batch.query_start[batch.kv_len.size()];
  if (n_rows == 0) return;
  bool use_decode = true;
  for (size_t s = 0; s < batch.kv_len.size(); ++s) use_decode = use_decode && batch.query_start[s + 1] - batch.query_start[s] <= 1;
  const bool one_row_per_sequence = use_decode;  // DecodeParams::old_keys_early
  if (attention_kernel_ == CudaAttentionKernel::CUDA_ATTENTION_PREFILL) use_decode = false;
  if (attention_kernel_ == CudaAttentionKernel::CUDA_ATTENTION_DECODE) use_decode = true;

  // Windowed heads keep a ring, which only the decode kernels read (KvHeadSourceT): their layers run every row there,
  // prefill chunks included (the step plan sends a windowed layer here while its window still covers every key).
  if (has_ring_heads(layer)) use_decode = true;
  const CudaAttentionRows rows = attention_rows(out, q, layer, batch, params, !use_decode, false);
  if (!use_decode) {
    enqueue(launch_attention_prefill, prefill_params(rows));
    return;
  }
  DecodeParams p = decode_params(rows.a, rows.a.n_rows, rows.max_span, rows.max_span);
  p.old_keys_early = one_row_per_sequence ? 1 : 0;
  enqueue(launch_attention_decode, p);
}

}  // namespace lcllm
