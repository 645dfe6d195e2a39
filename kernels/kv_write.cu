#include "kernels/kv_write.h"

#include <cuda_bf16.h>

#include "kernels/cuda_check.h"

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------

// One block per token; threads stride over the row (n_kv_heads * head_dim elements).
__global__ void kernel_kv_write(KvWriteParams p) {
  const int64_t i = blockIdx.x;
  const int64_t row = p.kv.slot_stride();
  const int64_t dst = p.kv.offset(p.slots[i], 0);
  auto* kd = reinterpret_cast<__nv_bfloat16*>(p.k_pool) + dst;
  auto* vd = reinterpret_cast<__nv_bfloat16*>(p.v_pool) + dst;
  const float* ks = p.k + i * row;
  const float* vs = p.v + i * row;
  for (int64_t j = threadIdx.x; j < row; j += blockDim.x) {
    kd[j] = __float2bfloat16_rn(ks[j]);
    vd[j] = __float2bfloat16_rn(vs[j]);
  }
}

// ---- launchers ----------------------------------------------------------------------------------------------

void launch_kv_write(const KvWriteParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  kernel_kv_write<<<p.n, 256, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lcllm
