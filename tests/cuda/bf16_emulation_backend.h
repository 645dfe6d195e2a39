// The CPU reference with the CUDA backend's bf16 roundings and nothing else: weights of 2+ dims stored as bf16, GEMM
// inputs rounded to bf16, K and V rounded to bf16 when written to the cache, and the MLP's gate and up projections
// kept in bf16 where CudaBackend::gated_mlp_in_bf16 says the GPU does. Everything else is the CPU reference's fp32
// math. The CUDA forward must match this closely; what separates either of them from an fp32
// reference (transformers) is the cost of bf16 storage, not a kernel error.
#pragma once
#include <deque>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "io/dtype.h"

namespace lcllm::test {

class Bf16EmulationBackend final : public Backend {
 public:
  std::string name() const override { return "cpu-bf16-emulation"; }

  Tensor weight(const TensorView& v) override {
    Tensor t = cpu_.weight(v);
    if (t.ndim < 2) return t;  // 1-D weights stay in their checkpoint precision (fp32 on the GPU)
    auto& bits = bf16_weights_.emplace_back(size_t(t.numel()));
    for (size_t i = 0; i < bits.size(); ++i) bits[i] = f32_to_bf16(dtype_load(t.data, t.dtype, i));
    t.data = bits.data();
    t.dtype = DType::DTYPE_BF16;
    return t;
  }
  Tensor alloc(std::initializer_list<int64_t> shape) override { return cpu_.alloc(shape); }
  void kv_reserve(int32_t layers, int32_t pages, int32_t page_size, int32_t kv_heads, int32_t head_dim) override {
    cpu_.kv_reserve(layers, pages, page_size, kv_heads, head_dim);
  }
  void kv_copy_pages(std::span<const PageCopy> copies) override { cpu_.kv_copy_pages(copies); }
  void to_host(const Tensor& t, float* dst, int64_t n) override { cpu_.to_host(t, dst, n); }

  void embed(Tensor out, const Tensor& table, std::span<const int32_t> ids, float scale) override {
    cpu_.embed(out, table, ids, scale);
  }
  void rmsnorm(Tensor out, const Tensor& x, const Tensor& w, float eps, bool one_plus) override {
    cpu_.rmsnorm(out, x, w, eps, one_plus);
  }
  void add_inplace(Tensor x, const Tensor& y) override { cpu_.add_inplace(x, y); }
  void matmul(Tensor out, const Tensor& x, const Tensor& w, const Tensor& bias) override {
    std::vector<float> rounded = round_copy(x);
    Tensor xr = x;
    xr.data = rounded.data();
    cpu_.matmul(out, xr, w, bias);
  }
  void rope(Tensor x, std::span<const int32_t> positions, const RopeConfig& rope) override {
    cpu_.rope(x, positions, rope);
  }
  void kv_write(int32_t layer, const Tensor& k, const Tensor& v, std::span<const int64_t> slots) override {
    std::vector<float> kr = round_copy(k), vr = round_copy(v);
    Tensor kt = k, vt = v;
    kt.data = kr.data();
    vt.data = vr.data();
    cpu_.kv_write(layer, kt, vt, slots);
  }
  void attention(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                 const AttentionParams& params) override {
    cpu_.attention(out, q, layer, batch, params);
  }
  void glu(Tensor out, const Tensor& gate, const Tensor& up, Activation act) override { cpu_.glu(out, gate, up, act); }
  void gated_mlp_hidden(const Tensor& x, const Tensor* norm_w, float eps, bool one_plus, Tensor normed,
                        std::span<const MatmulTarget> gate_up, Tensor out, Activation act) override {
    if (norm_w != nullptr) {
      norm_matmul_group(x, *norm_w, eps, one_plus, normed, gate_up);
    } else {
      matmul_group(x, gate_up);
    }
    if (CudaBackend::gated_mlp_in_bf16(x.numel() / x.dim(x.ndim - 1), gate_up)) {
      for (const MatmulTarget& t : gate_up) round_in_place(t.out);
    }
    glu(out, gate_up[0].out, gate_up[1].out, act);
  }
  void softcap(Tensor x, float cap) override { cpu_.softcap(x, cap); }
  void argmax_rows(Tensor out, const Tensor& x) override { cpu_.argmax_rows(out, x); }
  void gather_rows(Tensor out, const Tensor& x, std::span<const int32_t> rows) override {
    cpu_.gather_rows(out, x, rows);
  }

 private:
  static void round_in_place(const Tensor& t) {
    float* x = static_cast<float*>(t.data);
    for (int64_t i = 0; i < t.numel(); ++i) x[i] = bf16_to_f32(f32_to_bf16(x[i]));
  }
  static std::vector<float> round_copy(const Tensor& t) {
    std::vector<float> r(size_t(t.numel()));
    const float* src = static_cast<const float*>(t.data);
    for (size_t i = 0; i < r.size(); ++i) r[i] = bf16_to_f32(f32_to_bf16(src[i]));
    return r;
  }

  CpuBackend cpu_{0};
  std::deque<std::vector<uint16_t>> bf16_weights_;  // stable addresses for the weight views
};

}  // namespace lcllm::test
