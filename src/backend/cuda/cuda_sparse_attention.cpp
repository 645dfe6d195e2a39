// Host side of sparse attention on the GPU (ARCHITECTURE.md §3, §4): the step plan's key sets were uploaded once
// (step_upload); a layer launches the split-KV decode kernels over its sets, and a SELECT layer also stores its
// scores, gets every head's log2-sum-exp from the merge, and keeps the top-k of each selecting (row, kv head) in the
// step's selection slots (kernels/attention_select.cu). Nothing here copies indices to the host, so sparse decode
// steps are recorded and replayed as CUDA graphs like dense ones.
#include <algorithm>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "kernels/attention_prefill_wgmma.h"
#include "kernels/attention_select.h"
#include "kernels/cuda_check.h"
#include "lcllm/error.h"

namespace lcllm {

namespace {

// Scores (and their group mass) of one SELECT layer take 2 x 4 bytes per (row, query head, visible key). In decode
// that is ~0.2% of the KV bytes the rows see; a prefill chunk selecting on every row would need rows x keys of it.
constexpr size_t kMaxSelectScoreBytes = size_t(8) << 30;

}  // namespace

void launch_device_copy(const DeviceCopyParams& p, cudaStream_t stream) {
  CUDA_CHECK(cudaMemcpyAsync(p.dst, p.src, p.bytes, cudaMemcpyDeviceToDevice, stream));
}

const int32_t* CudaBackend::step_upload(std::span<const int32_t> data) {
  // The staging ring may wrap (after waiting for the stream) while later layers stage their rows, so the step's
  // data moves on to its own buffer, where it stays for the whole step. A recorded step keeps the copy as a graph node.
  const size_t bytes = std::max<size_t>(data.size_bytes(), sizeof(int32_t));
  auto* dst = static_cast<int32_t*>(scratch(bytes, kScratchStepData));
  auto p = zeroed<DeviceCopyParams>();
  p.dst = dst;
  p.src = stage(data.data(), data.size_bytes());
  p.bytes = data.size_bytes();
  enqueue(launch_device_copy, p);
  return dst;
}

void CudaBackend::selection_reserve(int32_t n_slots, int32_t n_items, int32_t stride) {
  LCLLM_ASSERT(n_slots > 0 && n_items > 0 && stride > 0, "empty selection slots");
  sel_slots_ = n_slots;
  sel_items_ = n_items;
  sel_stride_ = stride;
  // [n_slots, n_items, stride] positions and [n_slots, n_items] counts; fixed for a fixed batch shape, so decode
  // steps keep the same pointers (and replay their graph).
  scratch(size_t(n_slots) * size_t(n_items) * size_t(stride) * sizeof(int32_t), kScratchSelPositions);
  LCLLM_ASSERT(!recording_, "selection_reserve inside a recorded step (its count reset would not be recorded)");
  void* counts = scratch(size_t(n_slots) * size_t(n_items) * sizeof(int32_t), kScratchSelCount);
  // Lists start empty (items that never select read back as empty; kernels only read lists selected this step).
  if (!recording_) CUDA_CHECK(cudaMemsetAsync(counts, 0, size_t(n_slots) * size_t(n_items) * sizeof(int32_t), stream_));
}

void CudaBackend::attention_key_sets(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                     const AttentionParams& params, const LayerKeySets& keys) {
  const bool selects = keys.select_k != nullptr;
  // With key rows named, the other rows (a prefill chunk batched with sparse decode rows) run the dense prefill
  // kernel as under FULL, and the decode kernels walk the key rows' sets only.
  // Layers with windowed heads (rings) run every row through the decode kernels, which read rings; the other rows'
  // sets are then their full ranges (the step plan fills a set for every row).
  const bool subset = !keys.rows_host.empty() && !has_ring_heads(layer);
  LCLLM_ASSERT(!subset || keys.rows != nullptr, "key rows without their uploaded copy");
  // Prefill chunks whose sets the step plan found tile-compatible run the wgmma prefill kernel over key-set tiles
  // (one set walk per tile of rows instead of one per row); their one-row neighbours keep the split-KV kernels.
  // Runs shorter than kMinSetTileRows would leave most of a tile's 128 M rows empty (and a long prompt past the
  // grid's 65,535 tiles): those keep the split-KV kernels too.
  constexpr int32_t kMinSetTileRows = 8;
  constexpr int32_t kMaxTiles = 65535;
  bool set_tiles = keys.prefill_tile_align >= kMinSetTileRows && !selects && !has_ring_heads(layer) &&
                   attention_prefill_v3_applies(head_dim_, kv_layout(layer).dtype);
  CudaAttentionRows rows = attention_rows(out, q, layer, batch, params, subset, selects,
                                          subset ? keys.rows_host : std::span<const int32_t>(),
                                          set_tiles ? keys.prefill_tile_align : 0);
  if (set_tiles && rows.n_set_tiles > kMaxTiles) {
    set_tiles = false;
    rows = attention_rows(out, q, layer, batch, params, subset, selects,
                          subset ? keys.rows_host : std::span<const int32_t>());
  }
  const int32_t n_rows = rows.a.n_rows;
  if (n_rows == 0) return;
  LCLLM_ASSERT(keys.sets != nullptr, "attention_key_sets without key sets");
  if (subset && rows.n_tiles > 0) enqueue(launch_attention_prefill, prefill_params(rows));
  PrefillKeySets lists{};
  lists.sets = reinterpret_cast<const int32_t*>(keys.sets);
  if (sel_slots_ > 0) {
    lists.sel_positions = static_cast<const int32_t*>(scratch(0, kScratchSelPositions));
    lists.sel_count = static_cast<const int32_t*>(scratch(0, kScratchSelCount));
    lists.sel_items = sel_items_;
    lists.sel_stride = sel_stride_;
  }
  if (set_tiles) {
    if (rows.n_set_tiles > 0) {
      PrefillParams pp = prefill_params(rows);
      pp.tile_row0 = rows.set_tile_row0;
      pp.tile_rows = rows.set_tile_rows;
      pp.n_tiles = rows.n_set_tiles;
      pp.ks = lists;
      enqueue(launch_attention_prefill, pp);
    }
    if (rows.n_single_key_rows == 0) return;
  }
  const int32_t launch_rows = set_tiles ? rows.n_single_key_rows : subset ? int32_t(keys.rows_host.size()) : n_rows;
  DecodeParams p = decode_params(rows.a, launch_rows, keys.max_keys, keys.work_keys, selects);
  p.ks.sets = lists.sets;
  if (set_tiles) {
    p.ks.rows = rows.single_key_rows;
    p.ks.n_listed_rows = launch_rows;
  } else if (subset) {
    p.ks.rows = keys.rows;
    p.ks.n_listed_rows = launch_rows;
  }
  p.ks.sel_positions = lists.sel_positions;
  p.ks.sel_count = lists.sel_count;
  p.ks.sel_items = lists.sel_items;
  p.ks.sel_stride = lists.sel_stride;
  float* mass = nullptr;
  if (selects) {
    LCLLM_ASSERT(keys.select_slot >= 0 && keys.select_slot < sel_slots_ &&
                     sel_items_ == n_rows * n_kv_heads_,
                 "selection slot not reserved for this batch");
    const size_t score_bytes = size_t(rows.score_elems) * sizeof(float);
    if (2 * score_bytes > kMaxSelectScoreBytes) {
      throw Error(ErrorKind::ERROR_KIND_UNSUPPORTED,
                  "SELECT over " + std::to_string(n_rows) + " query rows needs " +
                      std::to_string(2 * score_bytes >> 20) +
                      " MiB of scores on the cuda backend; select in decode only (the presets do) or use --device cpu");
    }
    p.ks.select_k = keys.select_k;
    p.ks.scores = static_cast<float*>(scratch(std::max<size_t>(score_bytes, 4), kScratchScores));
    mass = static_cast<float*>(scratch(std::max<size_t>(score_bytes, 4), kScratchMass));
    p.ks.score_offset = rows.score_offset;
    p.ks.lse2 = static_cast<float*>(scratch(size_t(n_rows) * size_t(rows.a.n_heads) * sizeof(float), kScratchLse));
  }
  enqueue(launch_attention_decode, p);
  if (!selects) return;

  auto sp = zeroed<SelectTopkParams>();
  sp.scores = p.ks.scores;
  sp.score_offset = rows.score_offset;
  sp.lse2 = p.ks.lse2;
  sp.row_lo = rows.a.row_begin;
  sp.row_span = rows.span;
  sp.k = keys.select_k;
  sp.mass = mass;
  const size_t slot_items = size_t(keys.select_slot) * size_t(sel_items_);
  sp.out_positions = static_cast<int32_t*>(scratch(0, kScratchSelPositions)) + slot_items * size_t(sel_stride_);
  sp.out_count = static_cast<int32_t*>(scratch(0, kScratchSelCount)) + slot_items;
  sp.n_rows = n_rows;
  sp.n_heads = rows.a.n_heads;
  sp.n_kv_heads = n_kv_heads_;
  sp.stride = sel_stride_;
  enqueue(launch_attention_select_topk, sp);
}

void CudaBackend::selection_write(int32_t slot, std::span<const int64_t> indptr, std::span<const int32_t> positions) {
  LCLLM_ASSERT(slot >= 0 && slot < sel_slots_, "selection slot not reserved");
  LCLLM_ASSERT(indptr.size() == size_t(sel_items_) + 1, "selection lists do not match the slot");
  const size_t items = size_t(sel_items_), stride = size_t(sel_stride_);
  std::vector<int32_t> counts(items), all(items * stride, 0);
  for (size_t i = 0; i < items; ++i) {
    const int64_t n = indptr[i + 1] - indptr[i];
    LCLLM_ASSERT(n >= 0 && size_t(n) <= stride, "selection list longer than the slot's stride");
    counts[i] = int32_t(n);
    std::copy(positions.begin() + indptr[i], positions.begin() + indptr[i + 1], all.begin() + std::ptrdiff_t(i * stride));
  }
  flush_recorded();
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  auto* count_dev = static_cast<int32_t*>(scratch(0, kScratchSelCount)) + size_t(slot) * items;
  auto* pos_dev = static_cast<int32_t*>(scratch(0, kScratchSelPositions)) + size_t(slot) * items * stride;
  CUDA_CHECK(cudaMemcpy(count_dev, counts.data(), items * sizeof(int32_t), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(pos_dev, all.data(), all.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
}

void CudaBackend::selection_read(int32_t slot, std::vector<int64_t>& indptr, std::vector<int32_t>& positions) {
  LCLLM_ASSERT(slot >= 0 && slot < sel_slots_, "selection slot not reserved");
  flush_recorded();
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  check_hip_overflow();
  const size_t items = size_t(sel_items_), stride = size_t(sel_stride_);
  std::vector<int32_t> counts(items), all(items * stride);
  const auto* count_dev = static_cast<const int32_t*>(scratch(0, kScratchSelCount)) + size_t(slot) * items;
  const auto* pos_dev = static_cast<const int32_t*>(scratch(0, kScratchSelPositions)) + size_t(slot) * items * stride;
  CUDA_CHECK(cudaMemcpy(counts.data(), count_dev, items * sizeof(int32_t), cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(all.data(), pos_dev, all.size() * sizeof(int32_t), cudaMemcpyDeviceToHost));
  indptr.assign(1, 0);
  positions.clear();
  for (size_t i = 0; i < items; ++i) {
    const int32_t n = std::clamp(counts[i], 0, int32_t(stride));
    positions.insert(positions.end(), all.begin() + std::ptrdiff_t(i * stride), all.begin() + std::ptrdiff_t(i * stride + size_t(n)));
    indptr.push_back(int64_t(positions.size()));
  }
}

}  // namespace lcllm
