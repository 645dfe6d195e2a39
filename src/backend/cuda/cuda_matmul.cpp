// out = x · Wᵀ (+ bias) through cuBLAS: the fp32 activation is rounded to bf16 (what a bf16 model computes with),
// multiplied by the bf16 weight with fp32 accumulation, written as fp32; the bias is added by a small kernel.
#include <cublas_v2.h>

#include "backend/cuda/cuda_backend.h"
#include "kernels/activation.h"
#include "kernels/convert.h"
#include "kernels/cuda_check.h"
#include "lcllm/error.h"

namespace lcllm {

void CudaBackend::matmul(Tensor out, const Tensor& x, const Tensor& w, const Tensor& bias) {
  LCLLM_ASSERT(w.dtype == DType::DTYPE_BF16 && w.ndim == 2, "matmul weights are 2-D bf16 on the device");
  LCLLM_ASSERT(x.dtype == DType::DTYPE_F32 && out.dtype == DType::DTYPE_F32, "matmul activations are fp32");
  const int64_t n_out = w.dim(0), n_in = w.dim(1);
  const int64_t n = x.numel() / n_in;
  LCLLM_ASSERT(x.numel() == n * n_in && out.numel() == n * n_out, "matmul shapes do not match");
  if (n == 0) return;

  auto* xb = static_cast<uint16_t*>(scratch(size_t(n * n_in) * sizeof(uint16_t), 0));
  if (converted_src_ != x.data || converted_n_ != n * n_in) {  // else: q/k/v or gate/up on the same rows
    launch_convert({xb, x.data, n * n_in, ElemType::ELEM_BF16, ElemType::ELEM_F32}, stream_);
  }
  // The output may overwrite the input's fp32 rows (h = h·W): then the copy no longer matches them.
  const auto* x_begin = static_cast<const char*>(x.data);
  const auto* o_begin = static_cast<const char*>(out.data);
  const bool overlap = o_begin < x_begin + n * n_in * 4 && x_begin < o_begin + n * n_out * 4;
  converted_src_ = overlap ? nullptr : x.data;
  converted_n_ = n * n_in;

  // Row-major out[n, n_out] = x[n, n_in] · W[n_out, n_in]ᵀ is column-major outᵀ[n_out, n] = W(col-major [n_in,
  // n_out])ᵀ · xᵀ(col-major [n_in, n]).
  const float alpha = 1.0f, beta = 0.0f;
  const cublasStatus_t st =
      cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, int(n_out), int(n), int(n_in), &alpha, w.data, CUDA_R_16BF,
                   int(n_in), xb, CUDA_R_16BF, int(n_in), &beta, out.data, CUDA_R_32F, int(n_out),
                   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (st != CUBLAS_STATUS_SUCCESS) {
    cuda_fail("cublasGemmEx", cublasGetStatusString(st), __FILE__, __LINE__);
  }
  if (!bias.empty()) {
    LCLLM_ASSERT(bias.dtype == DType::DTYPE_F32 && bias.numel() == n_out, "bias is fp32 [out_features]");
    launch_bias_add({static_cast<float*>(out.data), static_cast<const float*>(bias.data), n, n_out}, stream_);
  }
}

}  // namespace lcllm
