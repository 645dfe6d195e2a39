// cuBLASLt descriptors and the chosen algorithm per GEMM shape, built once (heuristic query) and reused: the
// per-call cost is then one cublasLtMatmul, which a CUDA graph can capture.
#pragma once
#include <cstdint>
#include <map>
#include <tuple>

#include <cublasLt.h>

namespace lcllm {

struct MatmulPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t w_layout = nullptr, x_layout = nullptr, out_layout = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool fused_bias = false;  // epilogue adds the bias; else a bias kernel follows
};

struct MatmulPlans {
  // (rows n, out_features, in_features, has bias, bf16 output) -> plan
  std::map<std::tuple<int64_t, int64_t, int64_t, bool, bool>, MatmulPlan> by_shape;
  ~MatmulPlans() {
    for (auto& [key, p] : by_shape) {
      cublasLtMatmulDescDestroy(p.desc);
      cublasLtMatrixLayoutDestroy(p.w_layout);
      cublasLtMatrixLayoutDestroy(p.x_layout);
      cublasLtMatrixLayoutDestroy(p.out_layout);
    }
  }
};

}  // namespace lcllm
