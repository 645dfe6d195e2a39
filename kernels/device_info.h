// Device properties the launchers size their grids by, queried once per device.
#pragma once
#include <cuda_runtime_api.h>

#include "kernels/cuda_check.h"

namespace lcllm {

// Streaming multiprocessors of the current device (cached: the query costs microseconds per launch).
inline int cuda_sm_count() {
  static int cached[64] = {};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  int& c = cached[device & 63];
  if (c == 0) CUDA_CHECK(cudaDeviceGetAttribute(&c, cudaDevAttrMultiProcessorCount, device));
  return c;
}

// Dynamic shared memory one block may opt in to on the current device (cached as above).
inline int cuda_smem_optin_bytes() {
  static int cached[64] = {};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  int& c = cached[device & 63];
  if (c == 0) CUDA_CHECK(cudaDeviceGetAttribute(&c, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return c;
}

}  // namespace lcllm
