#include "kernels/convert.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda_check.h"

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------

namespace {

__device__ float load_as_float(const void* src, ElemType t, int64_t i) {
  switch (t) {
    case ElemType::ELEM_F32: return static_cast<const float*>(src)[i];
    case ElemType::ELEM_F16: return __half2float(static_cast<const __half*>(src)[i]);
    case ElemType::ELEM_BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(src)[i]);
  }
  return 0.f;
}

}  // namespace

// Grid-stride: weight tensors can exceed 2^31 elements.
__global__ void kernel_convert(ConvertParams p) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < p.n; i += stride) {
    if (p.dst_type == ElemType::ELEM_BF16 && p.src_type == ElemType::ELEM_BF16) {
      static_cast<uint16_t*>(p.dst)[i] = static_cast<const uint16_t*>(p.src)[i];
      continue;
    }
    const float f = load_as_float(p.src, p.src_type, i);
    switch (p.dst_type) {
      case ElemType::ELEM_F32: static_cast<float*>(p.dst)[i] = f; break;
      case ElemType::ELEM_F16: static_cast<__half*>(p.dst)[i] = __float2half_rn(f); break;
      case ElemType::ELEM_BF16: static_cast<__nv_bfloat16*>(p.dst)[i] = __float2bfloat16_rn(f); break;
    }
  }
}

// ---- launchers ----------------------------------------------------------------------------------------------

void launch_convert(const ConvertParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  const int64_t blocks = (p.n + 255) / 256;
  kernel_convert<<<unsigned(blocks < 65536 ? blocks : 65536), 256, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lcllm
