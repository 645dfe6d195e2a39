#include "backend/tensor.h"

namespace lcllm {

std::string Tensor::shape_string() const {
  std::string s = "[";
  for (int32_t i = 0; i < ndim; ++i) s += (i ? ", " : "") + std::to_string(shape[size_t(i)]);
  return s + "]";
}

}  // namespace lcllm
