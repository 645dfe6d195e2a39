#include "kernels/embed.h"

#include <cuda_bf16.h>

#include "kernels/cuda_check.h"

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------

// One block per token row.
__global__ void kernel_embed(EmbedParams p) {
  const int64_t i = blockIdx.x;
  int32_t id = p.ids[i];
  if (p.from_argmax != nullptr && p.from_argmax[i] >= 0) id = max(0, int32_t(p.argmax[p.from_argmax[i]]));
  const auto* row = reinterpret_cast<const __nv_bfloat16*>(p.table) + int64_t(id) * p.d;
  float* out = p.out + i * p.d;
  for (int64_t j = threadIdx.x; j < p.d; j += blockDim.x) out[j] = __bfloat162float(row[j]) * p.scale;
}

// ---- launchers ----------------------------------------------------------------------------------------------

void launch_embed(const EmbedParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  kernel_embed<<<p.n, 256, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lcllm
