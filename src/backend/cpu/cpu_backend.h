// The reference backend: plain, readable fp32 math on the host, multithreaded. It is the truth every other
// path (CUDA kernels, sparse policies) is tested against, so clarity wins over speed here.
#pragma once
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/thread_pool.h"

namespace lcllm {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int32_t n_threads) : pool_(n_threads) {}
  std::string name() const override { return "cpu"; }

  Tensor weight(const TensorView& view) override;
  Tensor alloc(std::initializer_list<int64_t> shape) override;
  void kv_reserve(int32_t n_layers, int32_t n_pages, int32_t page_size, int32_t n_kv_heads, int32_t head_dim) override;
  void kv_copy_pages(std::span<const PageCopy> copies) override;
  void to_host(const Tensor& t, float* dst, int64_t n) override;

  void embed(Tensor out, const Tensor& table, std::span<const int32_t> ids, float scale) override;
  void rmsnorm(Tensor out, const Tensor& x, const Tensor& w, float eps, bool one_plus) override;
  void add_inplace(Tensor x, const Tensor& y) override;
  void matmul(Tensor out, const Tensor& x, const Tensor& w, const Tensor& bias) override;
  void rope(Tensor x, std::span<const int32_t> positions, const RopeConfig& rope) override;
  void kv_write(int32_t layer, const Tensor& k, const Tensor& v, std::span<const int64_t> slots) override;
  void attention(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                 const AttentionParams& params) override;
  void glu(Tensor out, const Tensor& gate, const Tensor& up, Activation act) override;
  void softcap(Tensor x, float cap) override;
  void gather_rows(Tensor out, const Tensor& x, std::span<const int32_t> rows) override;

  // Sparse attention (cpu_sparse_attention.cpp).
  bool supports_indexed_attention() const override { return true; }
  void attention_indexed(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                         const AttentionParams& params, const KeyIndexLists& keys) override;
  void attention_select_topk(const Tensor& q, int32_t layer, const AttentionBatch& batch, const AttentionParams& params,
                             std::span<const int32_t> k_per_row_head, SelectedKeys& selected) override;

  // Read access for tests: layer's K or V pool, [n_pages * page_size, n_kv_heads, head_dim].
  const float* kv_data(int32_t layer, bool value) const;

 private:
  // Every (query row, query head) of the batch attends to the keys keys_of(row, seq, kv_head) names, returned as
  // {count, key_at(i) -> position}; defined in cpu_attention_row.h, shared by dense and indexed attention.
  template <class KeysOf>
  void attend_rows(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                   const AttentionParams& params, const KeysOf& keys_of);

  ThreadPool pool_;
  std::vector<std::unique_ptr<float[]>> buffers_;  // activations handed out by alloc()
  // Per layer: [n_pages * page_size, n_kv_heads, head_dim] each.
  std::vector<std::vector<float>> k_pool_, v_pool_;
  int32_t page_size_ = 0, n_kv_heads_ = 0, head_dim_ = 0;
};

}  // namespace lcllm
