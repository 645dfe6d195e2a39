// A Backend that forwards every op to a CPU reference backend, for tests that watch or measure what the forward
// pass asks of a backend (override the ops of interest and call the base).
#pragma once
#include "backend/cpu/cpu_backend.h"

namespace policy_test {

class DelegatingBackend : public lcllm::Backend {
 public:
  lcllm::CpuBackend cpu{2};

  std::string name() const override { return "delegating"; }
  lcllm::Tensor weight(const lcllm::TensorView& v) override { return cpu.weight(v); }
  lcllm::Tensor alloc(std::initializer_list<int64_t> s) override { return cpu.alloc(s); }
  void kv_reserve(int32_t a, int32_t b, int32_t c, int32_t d, int32_t e) override { cpu.kv_reserve(a, b, c, d, e); }
  void kv_copy_pages(std::span<const lcllm::PageCopy> c) override { cpu.kv_copy_pages(c); }
  void to_host(const lcllm::Tensor& t, float* d, int64_t n) override { cpu.to_host(t, d, n); }
  void embed(lcllm::Tensor o, const lcllm::Tensor& t, std::span<const int32_t> ids, float s) override {
    cpu.embed(o, t, ids, s);
  }
  void rmsnorm(lcllm::Tensor o, const lcllm::Tensor& x, const lcllm::Tensor& w, float e, bool p) override {
    cpu.rmsnorm(o, x, w, e, p);
  }
  void add_inplace(lcllm::Tensor x, const lcllm::Tensor& y) override { cpu.add_inplace(x, y); }
  void matmul(lcllm::Tensor o, const lcllm::Tensor& x, const lcllm::Tensor& w, const lcllm::Tensor& b) override {
    cpu.matmul(o, x, w, b);
  }
  void rope(lcllm::Tensor x, std::span<const int32_t> p, const lcllm::RopeConfig& r) override { cpu.rope(x, p, r); }
  void kv_write(int32_t l, const lcllm::Tensor& k, const lcllm::Tensor& v, std::span<const int64_t> s) override {
    cpu.kv_write(l, k, v, s);
  }
  void attention(lcllm::Tensor o, const lcllm::Tensor& q, int32_t l, const lcllm::AttentionBatch& b,
                 const lcllm::AttentionParams& p) override {
    cpu.attention(o, q, l, b, p);
  }
  void glu(lcllm::Tensor o, const lcllm::Tensor& g, const lcllm::Tensor& u, lcllm::Activation a) override {
    cpu.glu(o, g, u, a);
  }
  void softcap(lcllm::Tensor x, float c) override { cpu.softcap(x, c); }
  void argmax_rows(lcllm::Tensor o, const lcllm::Tensor& x) override { cpu.argmax_rows(o, x); }
  void gather_rows(lcllm::Tensor o, const lcllm::Tensor& x, std::span<const int32_t> r) override {
    cpu.gather_rows(o, x, r);
  }
  bool supports_key_sets() const override { return true; }
  bool supports_hip() const override { return true; }
  void selection_reserve(int32_t n, int32_t items, int32_t stride) override { cpu.selection_reserve(n, items, stride); }
  void attention_key_sets(lcllm::Tensor o, const lcllm::Tensor& q, int32_t l, const lcllm::AttentionBatch& b,
                          const lcllm::AttentionParams& p, const lcllm::LayerKeySets& keys) override {
    cpu.attention_key_sets(o, q, l, b, p, keys);
  }
  void selection_write(int32_t slot, std::span<const int64_t> indptr, std::span<const int32_t> positions) override {
    cpu.selection_write(slot, indptr, positions);
  }
  void selection_read(int32_t slot, std::vector<int64_t>& indptr, std::vector<int32_t>& positions) override {
    cpu.selection_read(slot, indptr, positions);
  }
  void attention_hip_blocks(const lcllm::Tensor& q, int32_t l, const lcllm::AttentionBatch& b,
                            const lcllm::AttentionParams& p, std::span<const lcllm::HipBlockRequest> r,
                            lcllm::HipBlocks& out) override {
    cpu.attention_hip_blocks(q, l, b, p, r, out);
  }
  bool supports_kv_window() const override { return true; }
  void kv_window_configure(const lcllm::KvWindowLayout& w) override { cpu.kv_window_configure(w); }
  bool kv_window_active() const override { return cpu.kv_window_active(); }
  void kv_write_window(int32_t l, const lcllm::Tensor& k, const lcllm::Tensor& v,
                       const lcllm::AttentionBatch& b) override {
    cpu.kv_write_window(l, k, v, b);
  }
  void kv_window_fork(int32_t s, int32_t d) override { cpu.kv_window_fork(s, d); }
  void kv_window_release(int32_t s) override { cpu.kv_window_release(s); }
  size_t kv_window_bytes() const override { return cpu.kv_window_bytes(); }
};

}  // namespace policy_test
