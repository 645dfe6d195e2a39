// A Backend that runs everything on the CPU reference backend and, while recording is on, keeps the attention
// distribution of every layer and KV head for single-row (decode) steps: what calibration measures. It wraps
// rather than extends CpuBackend so the reference backend carries no calibration code.
#pragma once
#include <memory>

#include "backend/cpu/cpu_backend.h"
#include "calibrate/attention_stats.h"

namespace lcllm {

class AttentionRecorder final : public Backend {
 public:
  AttentionRecorder(int32_t n_threads, int32_t n_layers, int32_t n_kv_heads);
  std::string name() const override { return "cpu"; }

  // Recording: on for the decode steps of a probe; the last step's attention is in last().
  void set_recording(bool on) { recording_ = on; }
  const StepAttention& last() const { return last_; }

  Tensor weight(const TensorView& v) override { return cpu_.weight(v); }
  Tensor alloc(std::initializer_list<int64_t> s) override { return cpu_.alloc(s); }
  void kv_reserve(int32_t a, int32_t b, int32_t c, int32_t d, int32_t e) override { cpu_.kv_reserve(a, b, c, d, e); }
  void kv_copy_pages(std::span<const PageCopy> c) override { cpu_.kv_copy_pages(c); }
  void to_host(const Tensor& t, float* d, int64_t n) override { cpu_.to_host(t, d, n); }
  void embed(Tensor o, const Tensor& t, std::span<const int32_t> ids, float s) override { cpu_.embed(o, t, ids, s); }
  void rmsnorm(Tensor o, const Tensor& x, const Tensor& w, float e, bool p) override { cpu_.rmsnorm(o, x, w, e, p); }
  void add_inplace(Tensor x, const Tensor& y) override { cpu_.add_inplace(x, y); }
  void matmul(Tensor o, const Tensor& x, const Tensor& w, const Tensor& b) override { cpu_.matmul(o, x, w, b); }
  void rope(Tensor x, std::span<const int32_t> p, const RopeConfig& r) override { cpu_.rope(x, p, r); }
  void kv_write(int32_t l, const Tensor& k, const Tensor& v, std::span<const int64_t> s) override {
    cpu_.kv_write(l, k, v, s);
  }
  void attention(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                 const AttentionParams& params) override;
  void glu(Tensor o, const Tensor& g, const Tensor& u, Activation a) override { cpu_.glu(o, g, u, a); }
  void softcap(Tensor x, float c) override { cpu_.softcap(x, c); }
  void gather_rows(Tensor o, const Tensor& x, std::span<const int32_t> r) override { cpu_.gather_rows(o, x, r); }
  void argmax_rows(Tensor o, const Tensor& x) override { cpu_.argmax_rows(o, x); }

 private:
  CpuBackend cpu_;
  bool recording_ = false;
  StepAttention last_;
  std::vector<float> scores_;
  std::vector<double> mass_;
  std::vector<int32_t> argmax_;  // [group] per query head, the last head group computed
};

}  // namespace lcllm
