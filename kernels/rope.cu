#include "kernels/rope.h"

#include "kernels/cuda_check.h"
#include "kernels/rope_pair.cuh"

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------

// One thread per (token, head, pair) (rope_pair: cos/sin in double like the CPU reference; cheap: rope is a tiny
// fraction of a step).
__global__ void kernel_rope(RopeParams p) {
  const int32_t half = p.head_dim / 2;
  const int64_t total = int64_t(p.n) * p.heads * half;
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const int32_t i = int32_t(idx % half);
  const int64_t th = idx / half;  // token * heads + head
  const int64_t t = th / p.heads;
  float* v = p.x + th * p.head_dim;
  const float2 r = rope_pair(float(p.positions[t]), p.inv_freq[i], v[i], v[i + half]);
  v[i] = r.x;
  v[i + half] = r.y;
}

// ---- launchers ----------------------------------------------------------------------------------------------

void launch_rope(const RopeParams& p, cudaStream_t stream) {
  const int64_t total = int64_t(p.n) * p.heads * (p.head_dim / 2);
  if (total == 0) return;
  kernel_rope<<<unsigned((total + 255) / 256), 256, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lcllm
