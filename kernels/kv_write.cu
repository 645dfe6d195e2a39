#include "kernels/kv_write.h"

#include <cuda_bf16.h>

#include "kernels/cuda_check.h"
#include "kernels/kv_fp8_store.cuh"
#include "kernels/kv_rotation.cuh"

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------

// Block (token, KV head); threads stride over head_dim. Heads of the other store leave at once (the whole block).
__global__ void kernel_kv_write(KvWriteParams p) {
  const int64_t i = blockIdx.x;
  const int32_t h = int32_t(blockIdx.y);
  if (!((p.heads >> h) & 1ull)) return;
  const int64_t dst = p.kv.offset(p.slots[i], p.kv_index[h]);
  const float* ks = p.k + (i * p.n_kv_heads + h) * p.head_dim;
  const float* vs = p.v + (i * p.n_kv_heads + h) * p.head_dim;
  if (p.kv.dtype == KvDtype::KV_DTYPE_FP8_E4M3) {
    if (kv_rotated(p.kv.dtype, p.head_dim)) {  // the cache keeps H k and H v (kv/kv_rotation.h): rotate a copy
      __shared__ float rot[2][kMaxRotatedDim];  // [k | v][head_dim]
      for (int32_t j = threadIdx.x; j < p.head_dim; j += blockDim.x) {
        rot[0][j] = ks[j];
        rot[1][j] = vs[j];
      }
      float* const kv[2] = {rot[0], rot[1]};
      block_rotate(kv, p.head_dim);
      ks = rot[0];
      vs = rot[1];
    }
    float k_abs = 0.f, v_abs = 0.f;
    for (int32_t j = threadIdx.x; j < p.head_dim; j += blockDim.x) {
      k_abs = fmaxf(k_abs, fabsf(ks[j]));
      v_abs = fmaxf(v_abs, fabsf(vs[j]));
    }
    const Fp8PairScale sc = fp8_pair_scale(block_max_abs2(k_abs, v_abs));
    uint8_t* kd = static_cast<uint8_t*>(p.k_store) + dst;
    uint8_t* vd = static_cast<uint8_t*>(p.v_store) + dst;
    for (int32_t j = threadIdx.x; j < p.head_dim; j += blockDim.x) {
      kd[j] = fp8_e4m3_encode(ks[j] * sc.k_inv);
      vd[j] = fp8_e4m3_encode(vs[j] * sc.v_inv);
    }
    if (threadIdx.x == 0) p.scale_store[p.kv.scale_index(p.slots[i], p.kv_index[h])] = sc.stored;
    return;
  }
  auto* kd = static_cast<__nv_bfloat16*>(p.k_store) + dst;
  auto* vd = static_cast<__nv_bfloat16*>(p.v_store) + dst;
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
