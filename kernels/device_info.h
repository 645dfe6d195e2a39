// Device properties the launchers size their grids by, queried once per device.
#pragma once
#include <cuda_runtime_api.h>

#include "kernels/cuda_check.h"

namespace lcllm {

// An attribute of the current device, cached per device ordinal (the query costs microseconds per launch).
template <cudaDeviceAttr kAttribute>
inline int cuda_cached_attribute() {
  static int cached[64] = {};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  int& c = cached[device & 63];
  if (c == 0) CUDA_CHECK(cudaDeviceGetAttribute(&c, kAttribute, device));
  return c;
}

// Streaming multiprocessors of the current device.
inline int cuda_sm_count() { return cuda_cached_attribute<cudaDevAttrMultiProcessorCount>(); }

// Dynamic shared memory one block may opt in to on the current device.
inline int cuda_smem_optin_bytes() { return cuda_cached_attribute<cudaDevAttrMaxSharedMemoryPerBlockOptin>(); }

}  // namespace lcllm
