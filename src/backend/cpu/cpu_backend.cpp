// Memory management and the elementwise ops of the CPU backend (matmul and attention have their own files).
#include "backend/cpu/cpu_backend.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "backend/rope_freq.h"
#include "lcllm/error.h"

namespace lcllm {

std::unique_ptr<Backend> backend_create_cpu(int32_t n_threads) { return std::make_unique<CpuBackend>(n_threads); }

Tensor CpuBackend::weight(const TensorView& view) {
  // Zero-copy: the mmapped bytes are used as they are, F32/F16/BF16 converted on the fly with fp32 accumulation.
  Tensor t = tensor_of_shape(view.dtype, view.shape);
  t.data = const_cast<std::byte*>(view.data);
  return t;
}

Tensor CpuBackend::alloc(std::initializer_list<int64_t> shape) {
  Tensor t = tensor_of_shape(DType::DTYPE_F32, std::span<const int64_t>(shape.begin(), shape.size()));
  // calloc: large buffers come as untouched zero pages, so memory is spent only on the rows a step writes (a
  // prefill chunk of a few rows touches little of buffers sized for max_step_tokens).
  float* data = static_cast<float*>(std::calloc(size_t(t.numel()), sizeof(float)));
  if (data == nullptr && t.numel() > 0) throw std::bad_alloc();
  buffers_.emplace_back(data);
  t.data = data;
  return t;
}

void CpuBackend::to_host(const Tensor& t, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = dtype_load(t.data, t.dtype, size_t(i));
}

void CpuBackend::embed(Tensor out, const Tensor& table, std::span<const int32_t> ids, float scale) {
  const int64_t d = table.dim(1);
  float* o = static_cast<float*>(out.data);
  for (size_t i = 0; i < ids.size(); ++i) {
    LCLLM_ASSERT(ids[i] >= 0 && ids[i] < table.dim(0), "token id out of range (validated by the engine)");
    const size_t base = size_t(ids[i]) * size_t(d);
    for (int64_t j = 0; j < d; ++j) o[int64_t(i) * d + j] = dtype_load(table.data, table.dtype, base + size_t(j)) * scale;
  }
}

void CpuBackend::rmsnorm(Tensor out, const Tensor& x, const Tensor& w, float eps, bool one_plus) {
  const int64_t d = x.shape[size_t(x.ndim - 1)];
  const int64_t rows = x.numel() / d;
  const float* xi = static_cast<const float*>(x.data);
  float* o = static_cast<float*>(out.data);
  std::vector<float> weight(static_cast<size_t>(d));
  for (int64_t j = 0; j < d; ++j) {
    float wj = dtype_load(w.data, w.dtype, size_t(j));
    weight[size_t(j)] = one_plus ? 1.0f + wj : wj;
  }
  pool_.parallel_for(rows, [&](int64_t b, int64_t e, int32_t) {
    for (int64_t r = b; r < e; ++r) {
      const float* row = xi + r * d;
      double ss = 0;
      for (int64_t j = 0; j < d; ++j) ss += double(row[j]) * row[j];
      const float inv = 1.0f / std::sqrt(float(ss / double(d)) + eps);
      for (int64_t j = 0; j < d; ++j) o[r * d + j] = row[j] * inv * weight[size_t(j)];
    }
  });
}

void CpuBackend::add_inplace(Tensor x, const Tensor& y) {
  float* a = static_cast<float*>(x.data);
  const float* b = static_cast<const float*>(y.data);
  const int64_t n = x.numel();
  for (int64_t i = 0; i < n; ++i) a[i] += b[i];
}

void CpuBackend::rope(Tensor x, std::span<const int32_t> positions, const RopeConfig& rope) {
  const int64_t n = x.dim(0), heads = x.dim(1), hd = x.dim(2), half = hd / 2;
  const std::vector<float> inv = rope_inv_freq(rope, int32_t(hd));
  float* data = static_cast<float*>(x.data);
  pool_.parallel_for(n, [&](int64_t b, int64_t e, int32_t) {
    std::vector<float> cos_t(static_cast<size_t>(half)), sin_t(static_cast<size_t>(half));
    for (int64_t t = b; t < e; ++t) {
      for (int64_t i = 0; i < half; ++i) {
        const float angle = float(positions[size_t(t)]) * inv[size_t(i)];  // fp32 product, as transformers
        cos_t[size_t(i)] = float(std::cos(double(angle)));
        sin_t[size_t(i)] = float(std::sin(double(angle)));
      }
      for (int64_t h = 0; h < heads; ++h) {
        float* v = data + (t * heads + h) * hd;
        for (int64_t i = 0; i < half; ++i) {
          const float a = v[i], c = v[i + half];
          v[i] = a * cos_t[size_t(i)] - c * sin_t[size_t(i)];
          v[i + half] = c * cos_t[size_t(i)] + a * sin_t[size_t(i)];
        }
      }
    }
  });
}

namespace {
float activate(float x, Activation act) {
  switch (act) {
    case Activation::ACTIVATION_SILU: return x / (1.0f + std::exp(-x));
    case Activation::ACTIVATION_GELU_TANH: {
      const float k = 0.7978845608028654f;  // sqrt(2/pi)
      return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
    }
    case Activation::ACTIVATION_GELU: return 0.5f * x * (1.0f + std::erf(x * 0.7071067811865476f));
  }
  return x;
}
}  // namespace

void CpuBackend::glu(Tensor out, const Tensor& gate, const Tensor& up, Activation act) {
  const int64_t n = out.numel();
  const float* g = static_cast<const float*>(gate.data);
  const float* u = static_cast<const float*>(up.data);
  float* o = static_cast<float*>(out.data);
  pool_.parallel_for(n, [&](int64_t b, int64_t e, int32_t) {
    for (int64_t i = b; i < e; ++i) o[i] = activate(g[i], act) * u[i];
  });
}

void CpuBackend::softcap(Tensor x, float cap) {
  float* d = static_cast<float*>(x.data);
  const int64_t n = x.numel();
  for (int64_t i = 0; i < n; ++i) d[i] = cap * std::tanh(d[i] / cap);
}

void CpuBackend::argmax_rows(Tensor out, const Tensor& x) {
  LCLLM_ASSERT(out.dtype == DType::DTYPE_F32 && x.dtype == DType::DTYPE_F32, "argmax_rows reads and writes fp32");
  const int64_t rows = x.dim(0), d = x.numel() / rows;
  LCLLM_ASSERT(out.numel() >= rows && d < (int64_t(1) << 24), "argmax_rows: out too short or rows too long");
  const float* src = static_cast<const float*>(x.data);
  float* dst = static_cast<float*>(out.data);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = src + r * d;
    int64_t best = -1;
    bool nan = false;
    for (int64_t j = 0; j < d; ++j) {
      if (std::isnan(row[j])) nan = true;
      else if (row[j] > -INFINITY && (best < 0 || row[j] > row[best])) best = j;  // strict: the lowest index on ties
    }
    dst[r] = nan ? -1.f : float(best);
  }
}

void CpuBackend::gather_rows(Tensor out, const Tensor& x, std::span<const int32_t> rows) {
  const int64_t d = x.numel() / x.dim(0);
  const float* src = static_cast<const float*>(x.data);
  float* dst = static_cast<float*>(out.data);
  for (size_t i = 0; i < rows.size(); ++i) std::memcpy(dst + int64_t(i) * d, src + rows[i] * d, size_t(d) * sizeof(float));
}

}  // namespace lcllm
