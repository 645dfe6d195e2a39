// out = x · Wᵀ (+ bias) with fp32 accumulation over F32/F16/BF16 weights.
//
// Threads split the output features: each thread converts one weight row to fp32 once and dots it with every
// input row, so each weight byte is read once per call (decode is bound by exactly that read).
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "lcllm/error.h"

namespace lcllm {

namespace {

void load_row_f32(const Tensor& w, int64_t row, int64_t cols, float* dst) {
  const size_t base = size_t(row) * size_t(cols);
  switch (w.dtype) {
    case DType::DTYPE_F32: {
      const float* src = static_cast<const float*>(w.data) + base;
      for (int64_t j = 0; j < cols; ++j) dst[j] = src[j];
      break;
    }
    case DType::DTYPE_F16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + base;
      for (int64_t j = 0; j < cols; ++j) dst[j] = f16_to_f32(src[j]);
      break;
    }
    case DType::DTYPE_BF16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + base;
      for (int64_t j = 0; j < cols; ++j) dst[j] = bf16_to_f32(src[j]);
      break;
    }
  }
}

// Eight independent partial sums let the compiler vectorise without -ffast-math reassociation.
float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += a[j + k] * b[j + k];
  }
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; j < n; ++j) s += a[j] * b[j];
  return s;
}

}  // namespace

void CpuBackend::matmul(Tensor out, const Tensor& x, const Tensor& w, const Tensor& bias) {
  const int64_t n = x.numel() / x.shape[size_t(x.ndim - 1)];
  const int64_t in = w.dim(1), n_out = w.dim(0);
  LCLLM_ASSERT(x.shape[size_t(x.ndim - 1)] == in, "matmul inner dimensions differ");
  const float* xd = static_cast<const float*>(x.data);
  float* od = static_cast<float*>(out.data);
  pool_.parallel_for(n_out, [&](int64_t b, int64_t e, int32_t) {
    std::vector<float> row(static_cast<size_t>(in));
    for (int64_t o = b; o < e; ++o) {
      load_row_f32(w, o, in, row.data());
      const float bo = bias.empty() ? 0.f : dtype_load(bias.data, bias.dtype, size_t(o));
      for (int64_t t = 0; t < n; ++t) od[t * n_out + o] = dot(xd + t * in, row.data(), in) + bo;
    }
  });
}

}  // namespace lcllm
