// Windowed KV heads on the GPU (src/kv/kv_window.h; DuoAttention arXiv 2410.10819 §3.2: streaming heads keep a
// constant-size cache of attention sinks + recent tokens). A head that STREAMs in both phases keeps, per sequence,
// a ring of ring_len positions in a slab sized at configure time (KvWindowLayout::max_sequences rings); the page pool
// of its layer stores only the other heads, which is the memory the plan saves. Ring slots follow the CPU exactly
// (KvWindowLayout::ring_slot), so both backends hold the same window. Writes go through kernels/kv_write.cu with the
// ring's slots; reads through the decode kernels' KvHeadSourceT (kernels/attention_common.cuh).
#include <algorithm>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "kernels/cuda_check.h"
#include "kernels/kv_write.h"
#include "lcllm/error.h"

namespace lcllm {

namespace {

// Rings a backend holds when the layout does not say (one per sequence of a typical serving batch).
constexpr int32_t kDefaultRingSequences = 16;

}  // namespace

void CudaBackend::kv_window_configure(const KvWindowLayout& layout) {
  LCLLM_ASSERT(!kv_pool_, "kv_window_configure after kv_reserve");
  LCLLM_ASSERT(layout.empty() || layout.ring_len > layout.sink, "ring must hold more than the sinks");
  LCLLM_ASSERT(layout.empty() || layout.head_dim > 0, "the window layout needs the head_dim of its rings");
  window_ = layout;
  ring_capacity_ = window_.empty() ? 0 : (layout.max_sequences > 0 ? layout.max_sequences : kDefaultRingSequences);
}

KvLayout CudaBackend::ring_layout(int32_t layer) const {
  return KvLayout{std::max(window_.ring_len, 1), window_.empty() ? 0 : window_.windowed_heads(layer), head_dim_,
                  kv_dtype_};
}

size_t CudaBackend::ring_slab_bytes() const {
  if (window_.empty()) return 0;
  size_t bytes = 0;  // per layer rounded up to 256 bytes, as kv_reserve lays the slab out
  for (int32_t l = 0; l < window_.n_layers; ++l) {
    const size_t layer = 2 * size_t(ring_capacity_) * size_t(window_.ring_len) * size_t(window_.windowed_heads(l)) *
                         size_t(kv_vector_bytes(kv_dtype_, window_.head_dim));
    bytes += (layer + 255) / 256 * 256;
  }
  return bytes;
}

CudaBackend::KvStore CudaBackend::ring_store(int32_t layer) const {
  LCLLM_ASSERT(kv_ring_, "no rings reserved (no windowed heads)");
  return kv_store(kv_ring_ + ring_offset_[size_t(layer)], ring_layout(layer), ring_capacity_);
}

int32_t CudaBackend::ring_of(int32_t seq) {
  auto it = ring_of_seq_.find(seq);
  if (it != ring_of_seq_.end()) return it->second;
  if (free_rings_.empty()) {
    throw Error(ErrorKind::ERROR_KIND_OUT_OF_MEMORY,
                "all " + std::to_string(ring_capacity_) + " windowed-head rings are in use (one per live sequence); "
                "run fewer sequences at once or load the engine with more (EngineOptions::max_window_sequences)");
  }
  const int32_t ring = free_rings_.back();
  free_rings_.pop_back();
  ring_of_seq_.emplace(seq, ring);
  return ring;
}

void CudaBackend::kv_write_window(int32_t layer, const Tensor& k, const Tensor& v, const AttentionBatch& batch) {
  if (window_.empty() || window_.windowed_heads(layer) == 0) return;
  forget_converted();
  const size_t n_seq = batch.kv_len.size();
  if (batch.seq_ids.size() != n_seq) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "windowed KV heads need AttentionBatch::seq_ids (one KvCache id per sequence of the step)");
  }
  // [n_tokens] ring slot of each of the step's tokens (token i = query row i).
  std::vector<int64_t> slots(size_t(batch.query_start[n_seq]));
  for (size_t s = 0; s < n_seq; ++s) {
    const int64_t base = int64_t(ring_of(batch.seq_ids[s])) * window_.ring_len;
    for (int32_t r = batch.query_start[s]; r < batch.query_start[s + 1]; ++r) {
      slots[size_t(r)] = base + window_.ring_slot(batch.query_pos[size_t(r)]);
    }
  }
  auto p = zeroed<KvWriteParams>();
  const KvStore rings = ring_store(layer);
  p.k_store = rings.k;
  p.v_store = rings.v;
  p.scale_store = rings.scale;
  p.k = static_cast<const float*>(k.data);
  p.v = static_cast<const float*>(v.data);
  p.slots = stage(std::span<const int64_t>(slots));
  p.n = int32_t(slots.size());
  p.n_kv_heads = n_kv_heads_;
  p.head_dim = head_dim_;
  p.kv = ring_layout(layer);
  kv_head_map(layer, p.kv_index, p.heads);  // the windowed heads only
  enqueue(launch_kv_write, p);
}

void CudaBackend::kv_window_fork(int32_t src_seq, int32_t dst_seq) {
  if (window_.empty()) return;
  auto it = ring_of_seq_.find(src_seq);
  if (it == ring_of_seq_.end()) return;  // nothing written yet: the fork starts empty too
  const int32_t src = it->second, dst = ring_of(dst_seq);
  flush_recorded();
  for (int32_t l = 0; l < n_layers_; ++l) {
    if (ring_layout(l).page_bytes() == 0) continue;  // no windowed head in this layer
    kv_copy_unit(ring_store(l), src, dst);  // one sequence's ring is one unit of the slab
  }
}

void CudaBackend::kv_window_release(int32_t seq) {
  auto it = ring_of_seq_.find(seq);
  if (it == ring_of_seq_.end()) return;
  free_rings_.push_back(it->second);
  ring_of_seq_.erase(it);
}

size_t CudaBackend::kv_window_bytes() const {
  return ring_capacity_ > 0 ? ring_slab_bytes() / size_t(ring_capacity_) * ring_of_seq_.size() : 0;
}

}  // namespace lcllm
