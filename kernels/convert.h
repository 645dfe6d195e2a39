// Element type conversions on the device: weights to bf16 (or fp32 for 1-D tensors) at upload, fp32
// activations to bf16 before a cuBLAS GEMM, bf16 back to fp32 for to_host.
#pragma once
#include <cstdint>

#include <cuda_runtime_api.h>

namespace lcllm {

enum class ElemType : int32_t { ELEM_F32 = 0, ELEM_F16 = 1, ELEM_BF16 = 2 };

struct ConvertParams {
  void* dst;
  const void* src;
  int64_t n;
  ElemType dst_type;
  ElemType src_type;
};

// Any of the 9 (dst, src) pairs; same types is a plain copy.
void launch_convert(const ConvertParams& p, cudaStream_t stream);

}  // namespace lcllm
