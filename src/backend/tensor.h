// A plain tensor handle the forward pass hands to a backend: pointer + dtype + shape (row-major, last dim
// contiguous). The pointer is host memory for the CPU backend and device memory for the CUDA backend; the
// forward pass never dereferences it.
#pragma once
#include <array>
#include <span>
#include <cstdint>
#include <string>

#include "io/dtype.h"

namespace lcllm {

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::DTYPE_F32;
  std::array<int64_t, 4> shape{};  // unused dims are 0
  int32_t ndim = 0;

  int64_t numel() const {
    if (ndim == 0) return 0;
    int64_t n = 1;
    for (int32_t i = 0; i < ndim; ++i) n *= shape[size_t(i)];
    return n;
  }
  int64_t dim(int32_t i) const { return shape[size_t(i)]; }
  bool empty() const { return data == nullptr; }
  std::string shape_string() const;
};

// A tensor header of the given dtype and 1..4 dims, no data yet (backends fill `data`). Aborts on other ranks:
// callers pass shapes the engine built or the loader validated.
Tensor tensor_of_shape(DType dtype, std::span<const int64_t> shape);

}  // namespace lcllm
