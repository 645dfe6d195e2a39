// KV storage of the CPU backend: the page pool (per layer, the heads that are not windowed) and the per-sequence
// rings of windowed heads (src/kv/kv_window.h: streaming heads keep only sink + recent positions).
#include <algorithm>
#include <cstring>

#include "backend/cpu/cpu_backend.h"
#include "kv/kv_rotation.h"
#include "lcllm/error.h"

namespace lcllm {

void CpuBackend::kv_window_configure(const KvWindowLayout& layout) {
  LCLLM_ASSERT(layout.empty() || layout.ring_len > layout.sink, "ring must hold more than the sinks");
  window_ = layout;
  rings_.clear();
}

void CpuBackend::kv_reserve(int32_t n_layers, int32_t n_pages, int32_t page_size, int32_t n_kv_heads,
                            int32_t head_dim) {
  page_size_ = page_size;
  n_kv_heads_ = n_kv_heads;
  head_dim_ = head_dim;
  if (!window_.empty()) {
    LCLLM_ASSERT(window_.n_layers == n_layers && window_.n_kv_heads == n_kv_heads, "window layout does not match");
  }
  pool_heads_.assign(size_t(n_layers), 0);
  pool_layout_.clear();
  ring_layout_.clear();
  head_index_.assign(size_t(n_layers) * size_t(n_kv_heads), 0);
  k_pool_.assign(size_t(n_layers), {});
  v_pool_.assign(size_t(n_layers), {});
  for (int32_t l = 0; l < n_layers; ++l) {
    int32_t in_pool = 0, in_ring = 0;
    for (int32_t h = 0; h < n_kv_heads; ++h) {
      head_index_[size_t(l) * size_t(n_kv_heads) + size_t(h)] = window_.is_windowed(l, h) ? in_ring++ : in_pool++;
    }
    pool_heads_[size_t(l)] = in_pool;
    pool_layout_.push_back(KvLayout{page_size, in_pool, head_dim, KvDtype::KV_DTYPE_F32});
    ring_layout_.push_back(KvLayout{std::max(window_.ring_len, 1), in_ring, head_dim, KvDtype::KV_DTYPE_F32});
    const size_t per_layer = size_t(n_pages) * size_t(pool_layout_.back().page_elems());
    k_pool_[size_t(l)].assign(per_layer, 0.f);
    v_pool_[size_t(l)].assign(per_layer, 0.f);
  }
  rings_.clear();
}

size_t CpuBackend::kv_pool_bytes() const {
  size_t n = 0;
  for (size_t l = 0; l < k_pool_.size(); ++l) n += (k_pool_[l].size() + v_pool_[l].size()) * sizeof(float);
  return n;
}

void CpuBackend::kv_copy_pages(std::span<const PageCopy> copies) {
  for (auto* pools : {&k_pool_, &v_pool_}) {
    for (size_t l = 0; l < pools->size(); ++l) {
      const size_t page_elems = size_t(pool_layout_[l].page_elems());
      float* data = (*pools)[l].data();
      for (const auto& c : copies) {
        std::memcpy(data + size_t(c.dst_page) * page_elems, data + size_t(c.src_page) * page_elems,
                    page_elems * sizeof(float));
      }
    }
  }
}

const float* CpuBackend::kv_data(int32_t layer, bool value) const {
  return (value ? v_pool_ : k_pool_)[size_t(layer)].data();
}

void CpuBackend::kv_write(int32_t layer, const Tensor& k, const Tensor& v, std::span<const int64_t> slots) {
  const size_t hd = size_t(head_dim_);
  const KvLayout& pool = pool_layout_[size_t(layer)];
  const size_t src_row = size_t(n_kv_heads_) * hd;  // [n, n_kv_heads, head_dim] input rows
  const float* ks = static_cast<const float*>(k.data);
  const float* vs = static_cast<const float*>(v.data);
  float* kd = k_pool_[size_t(layer)].data();
  float* vd = v_pool_[size_t(layer)].data();
  for (size_t i = 0; i < slots.size(); ++i) {
    if (pool.n_heads == n_kv_heads_) {  // no windowed head in this layer: the whole row
      std::memcpy(kd + pool.offset(slots[i], 0), ks + i * src_row, src_row * sizeof(float));
      std::memcpy(vd + pool.offset(slots[i], 0), vs + i * src_row, src_row * sizeof(float));
      kv_round(kd + pool.offset(slots[i], 0), vd + pool.offset(slots[i], 0), n_kv_heads_, int64_t(hd));
      continue;
    }
    for (int32_t h = 0; h < n_kv_heads_; ++h) {
      if (window_.is_windowed(layer, h)) continue;  // kv_write_window stores it
      const size_t dst = size_t(pool.offset(slots[i], head_index_[size_t(layer) * size_t(n_kv_heads_) + size_t(h)]));
      std::memcpy(kd + dst, ks + i * src_row + size_t(h) * hd, hd * sizeof(float));
      std::memcpy(vd + dst, vs + i * src_row + size_t(h) * hd, hd * sizeof(float));
      kv_round(kd + dst, vd + dst, 1, int64_t(hd));
    }
  }
}

void CpuBackend::rope_kv_write(Tensor q, Tensor k, const Tensor& v, std::span<const int32_t> positions,
                               const RopeConfig& rope_config, int32_t layer, std::span<const int64_t> slots) {
  rope(q, positions, rope_config);
  rope(k, positions, rope_config);
  kv_write(layer, k, v, slots);
  const int32_t hd = int32_t(q.dim(2));
  if (!kv_rotated(kv_dtype_, hd)) return;
  // The cache keeps H k (kv_round): attention takes H q, whose scores equal q's (kv/kv_rotation.h).
  float* data = static_cast<float*>(q.data);  // [n, n_heads, head_dim]
  pool_.parallel_for(q.dim(0) * q.dim(1), [&](int64_t b, int64_t e, int32_t) {
    for (int64_t i = b; i < e; ++i) kv_rotate_vector(data + i * hd, hd);
  });
}

void CpuBackend::kv_write_window(int32_t layer, const Tensor& k, const Tensor& v, const AttentionBatch& batch) {
  const int32_t n_ring = window_.windowed_heads(layer);
  if (n_ring == 0) return;
  const size_t n_seq = batch.kv_len.size();
  if (batch.seq_ids.size() != n_seq) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "windowed KV heads need AttentionBatch::seq_ids (one KvCache id per sequence of the step)");
  }
  const size_t hd = size_t(head_dim_), src_row = size_t(n_kv_heads_) * hd;
  const KvLayout& ring_layout = ring_layout_[size_t(layer)];
  const float* ks = static_cast<const float*>(k.data);
  const float* vs = static_cast<const float*>(v.data);
  for (size_t s = 0; s < n_seq; ++s) {
    Ring& ring = rings_[batch.seq_ids[s]];
    if (ring.k.empty()) {  // first write of this sequence: one ring per layer with windowed heads
      ring.k.resize(size_t(window_.n_layers));
      ring.v.resize(size_t(window_.n_layers));
      for (int32_t l = 0; l < window_.n_layers; ++l) {
        const size_t elems = size_t(ring_layout_[size_t(l)].page_elems());
        ring.k[size_t(l)].assign(elems, 0.f);
        ring.v[size_t(l)].assign(elems, 0.f);
      }
    }
    float* kd = ring.k[size_t(layer)].data();
    float* vd = ring.v[size_t(layer)].data();
    for (int32_t r = batch.query_start[s]; r < batch.query_start[s + 1]; ++r) {
      const int64_t slot = window_.ring_slot(batch.query_pos[size_t(r)]);
      for (int32_t h = 0; h < n_kv_heads_; ++h) {
        if (!window_.is_windowed(layer, h)) continue;
        const size_t dst = size_t(ring_layout.offset(slot, head_index_[size_t(layer) * size_t(n_kv_heads_) + size_t(h)]));
        std::memcpy(kd + dst, ks + size_t(r) * src_row + size_t(h) * hd, hd * sizeof(float));
        std::memcpy(vd + dst, vs + size_t(r) * src_row + size_t(h) * hd, hd * sizeof(float));
        kv_round(kd + dst, vd + dst, 1, int64_t(hd));
      }
    }
  }
}

void CpuBackend::kv_round(float* kd, float* vd, int64_t n_vectors, int64_t stride) const {
  if (kv_dtype_ == KvDtype::KV_DTYPE_F32) return;
  const bool rotate = kv_rotated(kv_dtype_, int32_t(head_dim_));  // the cache keeps H k and H v (kv/kv_rotation.h)
  for (int64_t i = 0; i < n_vectors; ++i) {
    if (rotate) {
      kv_rotate_vector(kd + i * stride, int32_t(head_dim_));
      kv_rotate_vector(vd + i * stride, int32_t(head_dim_));
    }
    kv_round_vector(kd + i * stride, int32_t(head_dim_), kv_dtype_);
    kv_round_vector(vd + i * stride, int32_t(head_dim_), kv_dtype_);
  }
}

void CpuBackend::kv_window_fork(int32_t src_seq, int32_t dst_seq) {
  auto it = rings_.find(src_seq);
  if (it == rings_.end()) return;
  const Ring copy = it->second;  // the fork continues from the same window
  rings_[dst_seq] = copy;
}

void CpuBackend::kv_window_release(int32_t seq) { rings_.erase(seq); }

size_t CpuBackend::kv_window_bytes() const {
  size_t n = 0;
  for (const auto& [seq, ring] : rings_) {
    for (size_t l = 0; l < ring.k.size(); ++l) n += (ring.k[l].size() + ring.v[l].size()) * sizeof(float);
  }
  return n;
}

CpuKvHeadView CpuBackend::kv_view(int32_t layer, const AttentionBatch& batch, int32_t s, int64_t kv_head) const {
  const int64_t hd = head_dim_;
  const int32_t index = head_index_[size_t(layer) * size_t(n_kv_heads_) + size_t(kv_head)];
  if (window_.is_windowed(layer, int32_t(kv_head))) {
    LCLLM_ASSERT(batch.seq_ids.size() == batch.kv_len.size(), "windowed KV heads need AttentionBatch::seq_ids");
    auto it = rings_.find(batch.seq_ids[size_t(s)]);
    LCLLM_ASSERT(it != rings_.end(), "no ring for the sequence (nothing written yet)");
    return CpuKvHeadView{it->second.k[size_t(layer)].data(), it->second.v[size_t(layer)].data(), nullptr,
                         ring_layout_[size_t(layer)], index, hd, &window_};
  }
  return CpuKvHeadView{k_pool_[size_t(layer)].data(), v_pool_[size_t(layer)].data(),
                       batch.pages->indices.data() + batch.pages->indptr[size_t(s)], pool_layout_[size_t(layer)], index,
                       hd, nullptr};
}

}  // namespace lcllm
