// The two rates the end-to-end benchmarks divide by, measured on the card in the same run (docs/PERFORMANCE.md):
// device-to-device copy bandwidth (the decode floor: every weight and K/V byte read once per token) and the bf16
// GEMM rate of cuBLAS on a large square problem (the prefill floor: FLOPs ÷ this rate).
#pragma once
#include <cstddef>
#include <string>

namespace lcllm {

struct CudaDeviceInfo {
  std::string name;          // e.g. "NVIDIA H100 80GB HBM3"
  size_t total_bytes = 0;    // device memory
  size_t used_bytes = 0;     // total - free, now (all processes)
};

CudaDeviceInfo cuda_device_info();
// GB/s (1e9 bytes) counting read + write: best of `reps` copies of `bytes`.
double cuda_copy_bandwidth_gbps(size_t bytes = size_t(2) << 30, int reps = 10);
// TFLOP/s of an n×n×n bf16 GEMM with fp32 accumulation (cublasGemmEx), best of `reps`.
double cuda_bf16_gemm_tflops(int n = 8192, int reps = 10);

}  // namespace lcllm
