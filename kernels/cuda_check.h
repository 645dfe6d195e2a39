// Device-error checking shared by kernels/ and src/backend/cuda/ (ARCHITECTURE.md §5.5, tier 1): a failed CUDA or
// cuBLAS call is a programmer or device error, so it aborts with the call, the message and file:line.
#pragma once
#include <cstdio>
#include <cstdlib>

#include <cuda_runtime_api.h>

namespace lcllm {

[[noreturn]] inline void cuda_fail(const char* expr, const char* what, const char* file, int line) {
  std::fprintf(stderr, "lcllm: CUDA error at %s:%d: %s (%s)\n", file, line, what, expr);
  std::abort();
}

}  // namespace lcllm

#define CUDA_CHECK(expr)                                                                     \
  do {                                                                                       \
    const cudaError_t cuda_check_err_ = (expr);                                              \
    if (cuda_check_err_ != cudaSuccess)                                                      \
      ::lcllm::cuda_fail(#expr, cudaGetErrorString(cuda_check_err_), __FILE__, __LINE__);    \
  } while (0)

// After a kernel launch: catches bad launch configurations at once (execution errors surface at the next sync).
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
