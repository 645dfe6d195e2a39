#include "kernels/activation.h"

#include <cuda_bf16.h>

#include "kernels/cuda_check.h"
#include "kernels/glu_activation.cuh"

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------

namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) { return unsigned((n + kThreads - 1) / kThreads); }

}  // namespace

__global__ void kernel_glu(GluParams p) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= p.n) return;
  const float o = glu_activate(p.gate[i], p.act) * p.up[i];
  p.out[i] = o;
  if (p.out_bf16) reinterpret_cast<__nv_bfloat16*>(p.out_bf16)[i] = __float2bfloat16_rn(o);
}

__global__ void kernel_glu_bf16(GluBf16Params p) {
  const int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * 8;
  if (i >= p.n) return;
  const uint4 g = *reinterpret_cast<const uint4*>(p.gate + i), u = *reinterpret_cast<const uint4*>(p.up + i);
  const uint32_t gw[4] = {g.x, g.y, g.z, g.w}, uw[4] = {u.x, u.y, u.z, u.w};
  uint32_t ow[4];
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const float2 gf = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&gw[k]));
    const float2 uf = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&uw[k]));
    const __nv_bfloat162 o = __floats2bfloat162_rn(glu_activate(gf.x, p.act) * uf.x, glu_activate(gf.y, p.act) * uf.y);
    ow[k] = *reinterpret_cast<const uint32_t*>(&o);
  }
  *reinterpret_cast<uint4*>(p.out_bf16 + i) = make_uint4(ow[0], ow[1], ow[2], ow[3]);
}

__global__ void kernel_softcap(SoftcapParams p) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < p.n) p.x[i] = p.cap * tanhf(p.x[i] / p.cap);
}

__global__ void kernel_add(AddParams p) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < p.n) p.x[i] += p.y[i];
}

__global__ void kernel_bias_add(BiasAddParams p) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < p.rows * p.cols) p.x[i] += p.bias[i % p.cols];
}

// One block per gathered row.
__global__ void kernel_gather_rows(GatherRowsParams p) {
  const int64_t i = blockIdx.x;
  const float* src = p.x + int64_t(p.rows[i]) * p.d;
  float* dst = p.out + i * p.d;
  for (int64_t j = threadIdx.x; j < p.d; j += blockDim.x) dst[j] = src[j];
}

// ---- launchers ----------------------------------------------------------------------------------------------

void launch_glu(const GluParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  kernel_glu<<<blocks_for(p.n), kThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

void launch_glu_bf16(const GluBf16Params& p, cudaStream_t stream) {
  if (p.n == 0) return;
  kernel_glu_bf16<<<blocks_for(p.n / 8), kThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

void launch_softcap(const SoftcapParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  kernel_softcap<<<blocks_for(p.n), kThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

void launch_add(const AddParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  kernel_add<<<blocks_for(p.n), kThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

void launch_bias_add(const BiasAddParams& p, cudaStream_t stream) {
  if (p.rows * p.cols == 0) return;
  kernel_bias_add<<<blocks_for(p.rows * p.cols), kThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

void launch_gather_rows(const GatherRowsParams& p, cudaStream_t stream) {
  if (p.n_rows == 0) return;
  kernel_gather_rows<<<p.n_rows, kThreads, 0, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lcllm
