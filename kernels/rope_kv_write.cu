#include "kernels/rope_kv_write.h"

#include <cuda_bf16.h>

#include "kernels/cuda_check.h"

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------

constexpr int kRopeKvThreads = 256;

// One block per token. Work items: (n_heads + n_kv_heads) * head_dim / 2 rotation pairs, then n_kv_heads *
// head_dim values of v. Each pair is owned by one thread, which also stores the rotated k pair into the pool, so no
// barrier is needed between rotating and writing.
__global__ void __launch_bounds__(kRopeKvThreads) kernel_rope_kv_write(RopeKvWriteParams p) {
  const int64_t t = blockIdx.x;
  const int32_t half = p.head_dim / 2;
  const int32_t q_pairs = p.n_heads * half, k_pairs = p.n_kv_heads * half;
  const int32_t kv_row = p.n_kv_heads * p.head_dim;
  const float pos = float(p.positions[t]);
  const int64_t dst = p.slots[t] * kv_row;
  auto* kd = reinterpret_cast<__nv_bfloat16*>(p.k_pool) + dst;
  auto* vd = reinterpret_cast<__nv_bfloat16*>(p.v_pool) + dst;
  for (int32_t w = threadIdx.x; w < q_pairs + k_pairs + kv_row; w += kRopeKvThreads) {
    if (w >= q_pairs + k_pairs) {
      const int32_t j = w - q_pairs - k_pairs;
      vd[j] = __float2bfloat16_rn(p.v[t * kv_row + j]);
      continue;
    }
    const bool is_k = w >= q_pairs;
    const int32_t pair = is_k ? w - q_pairs : w;
    const int32_t head = pair / half, i = pair % half;
    float* row = is_k ? p.k + (t * p.n_kv_heads + head) * p.head_dim : p.q + (t * p.n_heads + head) * p.head_dim;
    double s, c;
    sincos(double(pos * p.inv_freq[i]), &s, &c);
    const float cf = float(c), sf = float(s);
    const float a = row[i], b = row[i + half];
    const float ra = a * cf - b * sf, rb = b * cf + a * sf;
    row[i] = ra;
    row[i + half] = rb;
    if (is_k) {
      kd[head * p.head_dim + i] = __float2bfloat16_rn(ra);
      kd[head * p.head_dim + i + half] = __float2bfloat16_rn(rb);
    }
  }
}

// ---- launchers ----------------------------------------------------------------------------------------------

void launch_rope_kv_write(const RopeKvWriteParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  kernel_rope_kv_write<<<unsigned(p.n), kRopeKvThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lcllm
