#include "backend/cuda/cuda_roofline.h"

#include <algorithm>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "kernels/cuda_check.h"

namespace lcllm {
namespace {

// Times `fn` with CUDA events; the best of `reps` after one warm-up.
template <class F>
float best_ms(int reps, F&& fn) {
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  fn();
  float best = 1e30f;
  for (int i = 0; i < reps; ++i) {
    CUDA_CHECK(cudaEventRecord(a));
    fn();
    CUDA_CHECK(cudaEventRecord(b));
    CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    best = std::min(best, ms);
  }
  CUDA_CHECK(cudaEventDestroy(a));
  CUDA_CHECK(cudaEventDestroy(b));
  return best;
}

}  // namespace

CudaDeviceInfo cuda_device_info() {
  CudaDeviceInfo info;
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  info.name = prop.name;
  size_t free_b = 0, total_b = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  info.total_bytes = total_b;
  info.used_bytes = total_b - free_b;
  return info;
}

double cuda_copy_bandwidth_gbps(size_t bytes, int reps) {
  void *src = nullptr, *dst = nullptr;
  CUDA_CHECK(cudaMalloc(&src, bytes));
  CUDA_CHECK(cudaMalloc(&dst, bytes));
  CUDA_CHECK(cudaMemset(src, 1, bytes));
  float ms = best_ms(reps, [&] { CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice)); });
  CUDA_CHECK(cudaFree(src));
  CUDA_CHECK(cudaFree(dst));
  return 2.0 * double(bytes) / (double(ms) * 1e-3) / 1e9;
}

double cuda_bf16_gemm_tflops(int n, int reps) {
  cublasHandle_t h = nullptr;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) cuda_fail("cublasCreate", "failed", __FILE__, __LINE__);
  const size_t elems = size_t(n) * size_t(n);
  void *a = nullptr, *b = nullptr, *c = nullptr;
  CUDA_CHECK(cudaMalloc(&a, elems * 2));
  CUDA_CHECK(cudaMalloc(&b, elems * 2));
  CUDA_CHECK(cudaMalloc(&c, elems * 2));
  CUDA_CHECK(cudaMemset(a, 0, elems * 2));
  CUDA_CHECK(cudaMemset(b, 0, elems * 2));
  const float alpha = 1.0f, beta = 0.0f;
  float ms = best_ms(reps, [&] {
    cublasStatus_t st = cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a, CUDA_R_16BF, n, b, CUDA_R_16BF,
                                     n, &beta, c, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) cuda_fail("cublasGemmEx", cublasGetStatusString(st), __FILE__, __LINE__);
  });
  CUDA_CHECK(cudaFree(a));
  CUDA_CHECK(cudaFree(b));
  CUDA_CHECK(cudaFree(c));
  cublasDestroy(h);
  return 2.0 * double(n) * double(n) * double(n) / (double(ms) * 1e-3) / 1e12;
}

}  // namespace lcllm
