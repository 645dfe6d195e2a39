#include "backend/tensor.h"

#include "lcllm/error.h"

namespace lcllm {

Tensor tensor_of_shape(DType dtype, std::span<const int64_t> shape) {
  LCLLM_ASSERT(!shape.empty() && shape.size() <= 4, "tensors have 1..4 dims");
  Tensor t;
  t.dtype = dtype;
  t.ndim = int32_t(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) t.shape[i] = shape[i];
  return t;
}

std::string Tensor::shape_string() const {
  std::string s = "[";
  for (int32_t i = 0; i < ndim; ++i) s += (i ? ", " : "") + std::to_string(shape[size_t(i)]);
  return s + "]";
}

}  // namespace lcllm
