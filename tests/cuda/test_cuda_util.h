// Helpers of the CUDA backend tests: device detection, random bf16-exact data, tensors on both backends, errors.
#pragma once
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <cuda_runtime_api.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "io/dtype.h"

namespace lcllm::test {

inline bool cuda_device_present() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return n > 0;
}

// Every TEST_CASE starts with this: without a GPU the binary passes (with a warning) so CI can run it.
#define LCLLM_REQUIRE_GPU()                                   \
  do {                                                        \
    if (!::lcllm::test::cuda_device_present()) {              \
      WARN("no CUDA device: test skipped");                   \
      return;                                                 \
    }                                                         \
  } while (0)

// Fresh inputs every run; the seed is printed with every failure so a run can be replayed (LCLLM_TEST_SEED).
inline std::mt19937& rng() {
  static std::mt19937 g([] {
    if (const char* s = std::getenv("LCLLM_TEST_SEED")) return uint32_t(std::stoul(s));
    return uint32_t(std::random_device{}());
  }());
  return g;
}
inline uint32_t& seed_used() {
  static uint32_t s = [] {
    const uint32_t v = rng()();
    rng().seed(v);
    return v;
  }();
  return s;
}

inline float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

// Normal(0, scale) values, rounded to bf16 so both backends start from identical numbers.
inline std::vector<float> random_bf16(size_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = round_bf16(d(rng()));
  return v;
}

// ‖got − ref‖ / ‖ref‖; +inf when got holds a NaN (an unwritten poisoned element).
inline double relative_error(const float* got, const float* ref, size_t n) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(got[i])) return std::numeric_limits<double>::infinity();
    diff += double(got[i] - ref[i]) * double(got[i] - ref[i]);
    norm += double(ref[i]) * double(ref[i]);
  }
  return std::sqrt(diff / std::max(norm, 1e-30));
}
inline double relative_error(const std::vector<float>& got, const std::vector<float>& ref) {
  REQUIRE(got.size() == ref.size());
  return relative_error(got.data(), ref.data(), got.size());
}

inline size_t count_nonfinite(const std::vector<float>& v) {
  size_t n = 0;
  for (float f : v) n += std::isfinite(f) ? 0 : 1;
  return n;
}

// A tensor with the same contents on the CPU and the GPU backend.
struct TensorPair {
  Tensor cpu, gpu;
};

inline void fill(CpuBackend&, const Tensor& t, const std::vector<float>& v) {
  std::memcpy(t.data, v.data(), v.size() * sizeof(float));
}
inline void fill(CudaBackend& be, const Tensor& t, const std::vector<float>& v) {
  be.from_host(t, v.data(), int64_t(v.size()));
}
inline void poison(CudaBackend& be, const Tensor& t) {
  fill(be, t, std::vector<float>(size_t(t.numel()), std::numeric_limits<float>::quiet_NaN()));
}

inline TensorPair make_pair(CpuBackend& cpu, CudaBackend& gpu, std::initializer_list<int64_t> shape,
                            const std::vector<float>& v) {
  TensorPair p{cpu.alloc(shape), gpu.alloc(shape)};
  REQUIRE(size_t(p.cpu.numel()) == v.size());
  fill(cpu, p.cpu, v);
  fill(gpu, p.gpu, v);
  return p;
}

// Output buffers: zeros on the CPU, NaN on the GPU (so an element the kernel skips fails the comparison).
inline TensorPair make_output(CpuBackend& cpu, CudaBackend& gpu, std::initializer_list<int64_t> shape) {
  TensorPair p{cpu.alloc(shape), gpu.alloc(shape)};
  poison(gpu, p.gpu);
  return p;
}

inline std::vector<float> read(Backend& be, const Tensor& t) {
  std::vector<float> v(size_t(t.numel()));
  be.to_host(t, v.data(), t.numel());
  return v;
}

// A checkpoint tensor held in host memory (what an mmap would give), in the requested dtype.
struct HostWeight {
  std::vector<uint8_t> bytes;
  TensorView view;
  HostWeight(const std::string& name, DType dt, std::vector<int64_t> shape, const std::vector<float>& v) {
    bytes.resize(v.size() * dtype_size(dt));
    for (size_t i = 0; i < v.size(); ++i) {
      if (dt == DType::DTYPE_F32) {
        std::memcpy(bytes.data() + 4 * i, &v[i], 4);
      } else {
        uint16_t h = dt == DType::DTYPE_BF16 ? f32_to_bf16(v[i]) : f32_to_f16_exact(v[i]);
        std::memcpy(bytes.data() + 2 * i, &h, 2);
      }
    }
    view.name = name;
    view.dtype = dt;
    view.shape = std::move(shape);
    view.data = reinterpret_cast<const std::byte*>(bytes.data());
    view.nbytes = bytes.size();
    view.file = "(test)";
  }
  // Only for values exactly representable in f16 (the tests use k/64 with small k): no rounding needed.
  static uint16_t f32_to_f16_exact(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    const uint32_t sign = (b >> 16) & 0x8000u;
    if ((b & 0x7fffffffu) == 0) return uint16_t(sign);
    const int32_t exp = int32_t((b >> 23) & 0xff) - 127 + 15;
    REQUIRE(exp > 0);
    REQUIRE(exp < 31);
    REQUIRE((b & 0x1fffu) == 0);
    return uint16_t(sign | uint32_t(exp) << 10 | ((b >> 13) & 0x3ffu));
  }
};

inline std::filesystem::path source_dir() {
  // On the GPU machine the tree is copied elsewhere: prefer the working directory when it is a checkout.
  if (std::filesystem::exists("tests/cuda")) return std::filesystem::current_path();
  return LCLLM_SOURCE_DIR;
}

}  // namespace lcllm::test
