// The reference backend: plain, readable fp32 math on the host, multithreaded. It is the truth every other
// path (CUDA kernels, sparse policies) is tested against, so clarity wins over speed here.
#pragma once
#include <cstdlib>
#include <memory>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/thread_pool.h"
#include "kv/kv_layout.h"

namespace lcllm {

// Where one KV head of one layer's keys and values live for one sequence: the page pool (block table) or, for a
// windowed head, the sequence's ring (src/kv/kv_window.h).
struct CpuKvHeadView {
  const float* k;        // K storage: pool [n_pages * page_size, heads, head_dim] or ring [ring_len, heads, head_dim]
  const float* v;        // V storage, same shape
  const int32_t* pages;  // [n_pages_of_sequence] the sequence's block table (pool only)
  KvLayout layout;       // the storage's layout (a ring is one page of ring_len slots)
  int32_t head;          // index of the head among the heads its storage keeps
  int64_t head_dim;
  const KvWindowLayout* ring = nullptr;  // non-null: k, v are the sequence's ring

  size_t row_of(int32_t pos) const {
    return size_t(layout.offset(ring ? int64_t(ring->ring_slot(pos)) : layout.slot_of(pages, pos), head));
  }
};

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int32_t n_threads) : pool_(n_threads) {}
  std::string name() const override { return "cpu"; }

  Tensor weight(const TensorView& view) override;
  Tensor alloc(std::initializer_list<int64_t> shape) override;
  void kv_reserve(int32_t n_layers, int32_t n_pages, int32_t page_size, int32_t n_kv_heads, int32_t head_dim) override;
  void kv_copy_pages(std::span<const PageCopy> copies) override;
  // fp32 storage; bf16 and fp8 are emulated exactly by rounding each vector as it is written (kv/kv_quant.h).
  bool kv_dtype_supported(KvDtype) const override { return true; }
  void kv_set_dtype(KvDtype dtype) override { kv_dtype_ = dtype; }
  KvDtype kv_dtype() const override { return kv_dtype_; }
  void to_host(const Tensor& t, float* dst, int64_t n) override;

  void embed(Tensor out, const Tensor& table, std::span<const int32_t> ids, float scale) override;
  void rmsnorm(Tensor out, const Tensor& x, const Tensor& w, float eps, bool one_plus) override;
  void add_inplace(Tensor x, const Tensor& y) override;
  void matmul(Tensor out, const Tensor& x, const Tensor& w, const Tensor& bias) override;
  void rope(Tensor x, std::span<const int32_t> positions, const RopeConfig& rope) override;
  void kv_write(int32_t layer, const Tensor& k, const Tensor& v, std::span<const int64_t> slots) override;
  void rope_kv_write(Tensor q, Tensor k, const Tensor& v, std::span<const int32_t> positions,
                     const RopeConfig& rope_config, int32_t layer, std::span<const int64_t> slots) override;
  void attention(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                 const AttentionParams& params) override;
  void glu(Tensor out, const Tensor& gate, const Tensor& up, Activation act) override;
  void softcap(Tensor x, float cap) override;
  void gather_rows(Tensor out, const Tensor& x, std::span<const int32_t> rows) override;
  void argmax_rows(Tensor out, const Tensor& x) override;

  // Sparse attention over key sets (cpu_sparse_attention.cpp). Selection slots are host CSR lists.
  bool supports_key_sets() const override { return true; }
  bool supports_hip() const override { return true; }
  void selection_reserve(int32_t n_slots, int32_t n_items, int32_t stride) override;
  void attention_key_sets(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                          const AttentionParams& params, const LayerKeySets& keys) override;
  void selection_write(int32_t slot, std::span<const int64_t> indptr, std::span<const int32_t> positions) override;
  void selection_read(int32_t slot, std::vector<int64_t>& indptr, std::vector<int32_t>& positions) override;
  void attention_hip_blocks(const Tensor& q, int32_t layer, const AttentionBatch& batch, const AttentionParams& params,
                            std::span<const HipBlockRequest> requests, HipBlocks& blocks) override;

  // Windowed KV heads (cpu_kv.cpp).
  bool supports_kv_window() const override { return true; }
  void kv_window_configure(const KvWindowLayout& layout) override;
  bool kv_window_active() const override { return !window_.empty(); }
  void kv_write_window(int32_t layer, const Tensor& k, const Tensor& v, const AttentionBatch& batch) override;
  void kv_window_fork(int32_t src_seq, int32_t dst_seq) override;
  void kv_window_release(int32_t seq) override;
  size_t kv_window_bytes() const override;

  // Row r (of sequence s) and KV head kvh: the group's summed softmax probabilities over the keys the row sees
  // under FULL rules, mass [visible] (the quantity SELECT ranks by); returns the first visible position. scores is
  // scratch. Used by calibration (src/calibrate).
  int32_t attention_group_mass(const Tensor& q, int32_t layer, const AttentionBatch& batch,
                               const AttentionParams& params, int64_t r, int32_t s, int32_t kvh,
                               std::vector<float>& scores, std::vector<double>& mass,
                               std::vector<int32_t>* head_argmax = nullptr) const;
  // The same over the keys [lo, hi) (a SELECT item's key set). `head_argmax`, when given, receives each of the
  // group's query heads' arg-max position ([group], absolute, ties to the lower): calibration's copy rule.
  void attention_group_mass_range(const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                  const AttentionParams& params, int64_t r, int32_t s, int32_t kvh, int32_t lo,
                                  int32_t hi, std::vector<float>& scores, std::vector<double>& mass,
                                  std::vector<int32_t>* head_argmax = nullptr) const;

  // Read access for tests: layer's K or V pool, [n_pages * page_size, n_kv_heads, head_dim] (without windowed heads).
  const float* kv_data(int32_t layer, bool value) const;
  // Bytes of the page pool's K and V storage, all layers.
  size_t kv_pool_bytes() const;
  // Where (layer, KV head) of sequence s of the batch lives.
  CpuKvHeadView kv_view(int32_t layer, const AttentionBatch& batch, int32_t s, int64_t kv_head) const;

 private:
  // Every (query row, query head) of the batch attends to the keys keys_of(row, seq, kv_head) names, returned as
  // {count, key_at(i) -> position}; defined in cpu_attention_row.h, shared by dense and indexed attention.
  // The layer's SELECT items: top-k of their sets into slot keys.select_slot (cpu_sparse_attention.cpp).
  void select_topk(const Tensor& q, int32_t layer, const AttentionBatch& batch, const AttentionParams& params,
                   const LayerKeySets& keys);
  template <class KeysOf>
  void attend_rows(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                   const AttentionParams& params, const KeysOf& keys_of);

  ThreadPool pool_;
  struct FreeBuffer {
    void operator()(float* p) const { std::free(p); }
  };
  std::vector<std::unique_ptr<float, FreeBuffer>> buffers_;  // activations handed out by alloc() (calloc'd)
  // Per layer: [n_pages * page_size, pool_heads_[layer], head_dim] each: every KV head that is not windowed.
  std::vector<std::vector<float>> k_pool_, v_pool_;
  int32_t page_size_ = 0, n_kv_heads_ = 0, head_dim_ = 0;
  std::vector<int32_t> pool_heads_;  // [n_layers] heads stored in the pool
  // [n_layers] the pool's layout per layer (its heads: those not windowed) and the rings' (one ring_len-slot page).
  std::vector<KvLayout> pool_layout_, ring_layout_;
  std::vector<int32_t> head_index_;  // [n_layers * n_kv_heads] the head's index in its pool or ring rows
  KvWindowLayout window_;            // empty: every head in the pool
  KvDtype kv_dtype_ = KvDtype::KV_DTYPE_F32;  // the precision written vectors are rounded to
  // Rounds the vectors just written at kd / vd (n_vectors of head_dim each, `stride` apart) to kv_dtype_.
  void kv_round(float* kd, float* vd, int64_t n_vectors, int64_t stride) const;
  struct Ring {
    std::vector<std::vector<float>> k, v;  // per layer [ring_len, windowed_heads(layer), head_dim]
  };
  std::unordered_map<int32_t, Ring> rings_;  // per sequence id, created at the sequence's first write
  // The step's selection slots: [n_slots][n_items] ascending positions, each at most slot_stride_ long.
  std::vector<std::vector<std::vector<int32_t>>> slots_;
  int64_t slot_stride_ = 0;  // positions a list may hold (selection_reserve's stride)
};

}  // namespace lcllm
