#include "kernels/kv_write.h"

#include <cuda_bf16.h>

#include "kernels/cuda_check.h"

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------

// Block (token, KV head); threads stride over head_dim. Heads of the other store leave at once.
__global__ void kernel_kv_write(KvWriteParams p) {
  const int64_t i = blockIdx.x;
  const int32_t h = int32_t(blockIdx.y);
  if (!((p.heads >> h) & 1ull)) return;
  const int64_t dst = p.kv.offset(p.slots[i], p.kv_index[h]);
  auto* kd = reinterpret_cast<__nv_bfloat16*>(p.k_store) + dst;
  auto* vd = reinterpret_cast<__nv_bfloat16*>(p.v_store) + dst;
  const float* ks = p.k + (i * p.n_kv_heads + h) * p.head_dim;
  const float* vs = p.v + (i * p.n_kv_heads + h) * p.head_dim;
  for (int32_t j = threadIdx.x; j < p.head_dim; j += blockDim.x) {
    kd[j] = __float2bfloat16_rn(ks[j]);
    vd[j] = __float2bfloat16_rn(vs[j]);
  }
}

// ---- launchers ----------------------------------------------------------------------------------------------

void launch_kv_write(const KvWriteParams& p, cudaStream_t stream) {
  if (p.n == 0 || p.heads == 0) return;
  kernel_kv_write<<<dim3(unsigned(p.n), unsigned(p.n_kv_heads)), 128, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lcllm
