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

}  // namespace lcllm
