// out = x · Wᵀ (+ bias). Decode shapes (1-4 rows, in_features % 8 == 0) run the project's GEMV (kernels/gemv.h:
// cuBLASLt streams weights at 2.2-2.5 TB/s there); everything else through cuBLASLt: the fp32 activation is rounded to bf16 (what a bf16 model computes with;
// after a fused add + RMSNorm the norm kernel already wrote that copy), multiplied by the bf16 weight with fp32
// accumulation, written as fp32, the bias added by the GEMM's epilogue. Descriptors and the algorithm are chosen
// once per shape (cuda_matmul_plans.h). A shape cuBLASLt's heuristic has no algorithm for runs plain cublasGemmEx
// with a bias kernel.

#include <cublasLt.h>
#include <cublas_v2.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_matmul_plans.h"
#include "kernels/activation.h"
#include "kernels/convert.h"
#include "kernels/cuda_check.h"
#include "kernels/gemv.h"
#include "lcllm/error.h"

namespace lcllm {

namespace {

constexpr size_t kGemmWorkspaceBytes = size_t(32) << 20;

void check_lt(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS) cuda_fail(what, cublasGetStatusString(st), __FILE__, __LINE__);
}

// One cuBLASLt call: what a recorded step keeps (and compares) per GEMM.
struct LtLaunch {
  cublasLtContext* handle;
  const MatmulPlan* plan;
  const void* w;        // [n_out, n_in] bf16
  const void* x;        // [n, n_in] bf16
  void* out;            // [n, n_out] fp32
  const float* bias;    // [n_out] fp32 or null (only when plan->fused_bias)
  void* workspace;
  float beta;           // 0: out = x · Wᵀ; 1: out += x · Wᵀ (the residual add in the GEMM's epilogue)
};

void launch_lt(const LtLaunch& p, cudaStream_t stream) {
  static const float alpha = 1.0f;
  const float beta = p.beta;
  if (p.plan->fused_bias) {
    check_lt(cublasLtMatmulDescSetAttribute(p.plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof p.bias),
             "cublasLtMatmulDescSetAttribute(bias)");
  }
  check_lt(cublasLtMatmul(p.handle, p.plan->desc, &alpha, p.w, p.plan->w_layout, p.x, p.plan->x_layout, &beta, p.out,
                          p.plan->out_layout, p.out, p.plan->out_layout, &p.plan->algo, p.workspace,
                          kGemmWorkspaceBytes, stream),
           "cublasLtMatmul");
}

struct GemmExLaunch {
  cublasContext* handle;
  const void* w;
  const void* x;
  void* out;
  int32_t n_out, n, n_in;
  float beta;              // as LtLaunch::beta
  cudaDataType_t out_type;  // CUDA_R_32F, or CUDA_R_16BF (gated_mlp_hidden's projections)
};

void launch_gemm_ex(const GemmExLaunch& p, cudaStream_t stream) {
  (void)stream;  // the handle is bound to the backend's stream
  const float alpha = 1.0f, beta = p.beta;
  const cublasStatus_t st =
      cublasGemmEx(p.handle, CUBLAS_OP_T, CUBLAS_OP_N, p.n_out, p.n, p.n_in, &alpha, p.w, CUDA_R_16BF, p.n_in, p.x,
                   CUDA_R_16BF, p.n_in, &beta, p.out, p.out_type, p.n_out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (st != CUBLAS_STATUS_SUCCESS) cuda_fail("cublasGemmEx", cublasGetStatusString(st), __FILE__, __LINE__);
}

// Row-major out[n, n_out] = x[n, n_in] · W[n_out, n_in]ᵀ is column-major outᵀ[n_out, n] = Wᵀ · xᵀ with W stored
// column-major as [n_in, n_out] (transposed by the op) and x as [n_in, n]. The epilogue's bias runs along outᵀ's
// rows, i.e. over out_features. out_type: CUDA_R_32F, or CUDA_R_16BF (rounded in the epilogue; no bias).
bool make_plan(cublasLtContext* lt, int64_t n, int64_t n_out, int64_t n_in, bool bias, cudaDataType_t out_type,
               MatmulPlan& plan) {
  check_lt(cublasLtMatmulDescCreate(&plan.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  check_lt(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "transa");
  check_lt(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "transb");
  if (bias) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    const cudaDataType_t bias_type = CUDA_R_32F;
    check_lt(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi), "epilogue");
    check_lt(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                            sizeof bias_type),
             "bias type");
  }
  check_lt(cublasLtMatrixLayoutCreate(&plan.w_layout, CUDA_R_16BF, uint64_t(n_in), uint64_t(n_out), n_in), "w layout");
  check_lt(cublasLtMatrixLayoutCreate(&plan.x_layout, CUDA_R_16BF, uint64_t(n_in), uint64_t(n), n_in), "x layout");
  check_lt(cublasLtMatrixLayoutCreate(&plan.out_layout, out_type, uint64_t(n_out), uint64_t(n), n_out),
           "out layout");
  cublasLtMatmulPreference_t pref = nullptr;
  check_lt(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  const uint64_t ws = kGemmWorkspaceBytes;
  check_lt(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
           "workspace preference");
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt, plan.desc, plan.w_layout, plan.x_layout,
                                                           plan.out_layout, plan.out_layout, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0) return false;
  plan.algo = result.algo;
  plan.fused_bias = bias;
  return true;
}

void destroy_plan(MatmulPlan& p) {
  cublasLtMatmulDescDestroy(p.desc);
  cublasLtMatrixLayoutDestroy(p.w_layout);
  cublasLtMatrixLayoutDestroy(p.x_layout);
  cublasLtMatrixLayoutDestroy(p.out_layout);
  p = MatmulPlan{};
}

}  // namespace

void CudaBackend::matmul_init() {
  check_lt(cublasLtCreate(&cublas_lt_), "cublasLtCreate");
  CUDA_CHECK(cudaMalloc(&gemm_workspace_, kGemmWorkspaceBytes));
  // A fixed workspace also for cublasGemmEx: without one cuBLAS may allocate during graph capture.
  check_lt(cublasSetWorkspace(cublas_, gemm_workspace_, kGemmWorkspaceBytes), "cublasSetWorkspace");
  matmul_plans_ = std::make_unique<MatmulPlans>();
}

void CudaBackend::matmul(Tensor out, const Tensor& x, const Tensor& w, const Tensor& bias) {
  gemm(out, x, w, bias, false);
}

void CudaBackend::gemm(Tensor out, const Tensor& x, const Tensor& w, const Tensor& bias, bool accumulate,
                       uint16_t* out_bf16) {
  LCLLM_ASSERT(w.dtype == DType::DTYPE_BF16 && w.ndim == 2, "matmul weights are 2-D bf16 on the device");
  LCLLM_ASSERT(!accumulate || bias.empty(), "an accumulating GEMM takes no bias");
  LCLLM_ASSERT(out_bf16 == nullptr || (bias.empty() && !accumulate), "a bf16-output GEMM takes no bias or beta");
  LCLLM_ASSERT(x.dtype == DType::DTYPE_F32 && out.dtype == DType::DTYPE_F32, "matmul activations are fp32");
  const int64_t n_out = w.dim(0), n_in = w.dim(1);
  const int64_t n = x.numel() / n_in;
  LCLLM_ASSERT(x.numel() == n * n_in && out.numel() == n * n_out, "matmul shapes do not match");
  if (n == 0) return;
  if (!bias.empty()) {
    LCLLM_ASSERT(bias.dtype == DType::DTYPE_F32 && bias.numel() == n_out, "bias is fp32 [out_features]");
  }
  // The output may overlap the input's fp32 rows (h = h·W): the GEMV (which reads x while writing out) is then not
  // used, and the bf16 copy below no longer matches x afterwards.
  const auto* x0 = static_cast<const char*>(x.data);
  const auto* o0 = static_cast<const char*>(out.data);
  const bool in_place = o0 < x0 + n * n_in * 4 && x0 < o0 + n * n_out * 4;
  LCLLM_ASSERT(!accumulate || !in_place, "an accumulating GEMM's output must not overlap its input");
  if (!in_place && !accumulate && out_bf16 == nullptr) {  // (an accumulating call has tried the accumulating GEMV)
    const MatmulTarget t{out, w, bias};
    if (gemv(x, std::span<const MatmulTarget>(&t, 1), nullptr, 0.f, false, false)) return;
  }

  auto* xb = static_cast<uint16_t*>(scratch(size_t(n * n_in) * sizeof(uint16_t), 0));
  if (converted_src_ != x.data || converted_n_ != n * n_in) {  // else: q/k/v or gate/up on the same rows
    auto c = zeroed<ConvertParams>();
    c.dst = xb;
    c.src = x.data;
    c.n = n * n_in;
    c.dst_type = ElemType::ELEM_BF16;
    c.src_type = ElemType::ELEM_F32;
    enqueue(launch_convert, c);
  }
  converted_src_ = in_place ? nullptr : x.data;
  converted_n_ = n * n_in;

  const MatmulPlan* plan = nullptr;
  const cudaDataType_t out_type = out_bf16 != nullptr ? CUDA_R_16BF : CUDA_R_32F;
  void* out_data = out_bf16 != nullptr ? static_cast<void*>(out_bf16) : out.data;
  const auto key = std::make_tuple(n, n_out, n_in, !bias.empty(), out_bf16 != nullptr);
  auto it = matmul_plans_->by_shape.find(key);
  if (it == matmul_plans_->by_shape.end()) {
    MatmulPlan p;
    bool ok = make_plan(cublas_lt_, n, n_out, n_in, !bias.empty(), out_type, p);
    if (!ok && !bias.empty()) {  // no algorithm with the bias epilogue: plain GEMM + bias kernel
      destroy_plan(p);
      ok = make_plan(cublas_lt_, n, n_out, n_in, false, out_type, p);
    }
    if (!ok) destroy_plan(p);  // stays empty: cublasGemmEx below
    it = matmul_plans_->by_shape.emplace(key, p).first;
  }
  if (it->second.desc != nullptr) plan = &it->second;

  if (plan != nullptr) {
    auto g = zeroed<LtLaunch>();
    g.handle = cublas_lt_;
    g.plan = plan;
    g.w = w.data;
    g.x = xb;
    g.out = out_data;
    g.bias = plan->fused_bias ? static_cast<const float*>(bias.data) : nullptr;
    g.workspace = gemm_workspace_;
    g.beta = accumulate ? 1.0f : 0.0f;
    enqueue(launch_lt, g);
  } else {
    auto g = zeroed<GemmExLaunch>();
    g.handle = cublas_;
    g.w = w.data;
    g.x = xb;
    g.out = out_data;
    g.out_type = out_type;
    g.n_out = int32_t(n_out);
    g.n = int32_t(n);
    g.n_in = int32_t(n_in);
    g.beta = accumulate ? 1.0f : 0.0f;
    enqueue(launch_gemm_ex, g);
  }
  if (!bias.empty() && (plan == nullptr || !plan->fused_bias)) {
    auto b = zeroed<BiasAddParams>();
    b.x = static_cast<float*>(out.data);
    b.bias = static_cast<const float*>(bias.data);
    b.rows = n;
    b.cols = n_out;
    enqueue(launch_bias_add, b);
  }
}

bool CudaBackend::gemv(const Tensor& x, std::span<const MatmulTarget> targets, const Tensor* norm_w, float eps,
                       bool one_plus, bool accumulate, const GemvGlu* glu) {
  LCLLM_ASSERT(x.dtype == DType::DTYPE_F32, "matmul activations are fp32");
  const int64_t n_in = targets.empty() ? 0 : targets[0].w.dim(1);
  const int64_t n = n_in > 0 ? x.numel() / n_in : 0;
  bool ok = gemv_applies(n, n_in) && targets.size() <= size_t(kGemvMaxSegments);
  for (const MatmulTarget& t : targets) ok = ok && t.w.dim(1) == n_in;
  if (glu != nullptr) {
    ok = ok && targets.size() == 2 && !accumulate && targets[0].w.dim(0) == targets[1].w.dim(0) &&
         glu->out.dtype == DType::DTYPE_F32 && glu->out.numel() == n * targets[0].w.dim(0);
  }
  if (!ok) return false;
  auto p = zeroed<GemvParams>();
  p.x = static_cast<const float*>(x.data);
  p.n_rows = int32_t(n);
  p.n_in = int32_t(n_in);
  p.n_segments = int32_t(targets.size());
  if (norm_w != nullptr && n_in > kGemvMaxNormInputs) return false;
  if (norm_w != nullptr) {
    LCLLM_ASSERT(norm_w->dtype == DType::DTYPE_F32 && norm_w->numel() == n_in, "norm weight does not match the row");
    p.norm_w = static_cast<const float*>(norm_w->data);
    p.eps = eps;
    p.norm_one_plus = one_plus ? 1 : 0;
  }
  p.accumulate = accumulate ? 1 : 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    const MatmulTarget& t = targets[i];
    LCLLM_ASSERT(t.w.dtype == DType::DTYPE_BF16 && t.w.ndim == 2, "matmul weights are 2-D bf16 on the device");
    LCLLM_ASSERT(t.out.dtype == DType::DTYPE_F32 && x.numel() == n * n_in && t.out.numel() == n * t.w.dim(0),
                 "matmul shapes do not match");
    LCLLM_ASSERT(t.out.data != x.data, "a GEMV output aliases its input");
    if (!t.bias.empty()) {
      LCLLM_ASSERT(t.bias.dtype == DType::DTYPE_F32 && t.bias.numel() == t.w.dim(0), "bias is fp32 [out_features]");
    }
    if (t.out.data == converted_src_) forget_converted();  // its bf16 copy no longer matches
    p.seg[i].w = static_cast<const uint16_t*>(t.w.data);
    p.seg[i].out = static_cast<float*>(t.out.data);
    p.seg[i].bias = t.bias.empty() ? nullptr : static_cast<const float*>(t.bias.data);
    p.seg[i].n_out = int32_t(t.w.dim(0));
  }
  if (glu != nullptr) {
    LCLLM_ASSERT(glu->out.data != x.data, "a GEMV output aliases its input");
    if (glu->out.data == converted_src_) forget_converted();
    p.glu = 1;
    p.glu_act = glu_activation(glu->act);
    p.seg[0].out = static_cast<float*>(glu->out.data);
  }
  enqueue(launch_gemv, p);
  return true;
}

void CudaBackend::matmul_group(const Tensor& x, std::span<const MatmulTarget> targets) {
  if (gemv(x, targets, nullptr, 0.f, false, false)) return;
  for (const MatmulTarget& t : targets) matmul(t.out, x, t.w, t.bias);
}

void CudaBackend::norm_matmul_group(const Tensor& x, const Tensor& norm_w, float eps, bool one_plus, Tensor normed,
                                    std::span<const MatmulTarget> targets) {
  if (gemv(x, targets, &norm_w, eps, one_plus, false)) return;
  // GEMMs: the norm also writes its output's bf16 copy where matmul() keeps its converted input, so the projections
  // skip their conversion kernel (a prefill's 128k tokens: 0.08 s of conversions per 32 layers on the H100).
  rmsnorm_into(normed, x, norm_w, eps, one_plus, true);
  matmul_group(normed, targets);
}

void CudaBackend::matmul_residual(Tensor x, const Tensor& y, const Tensor& w, const Tensor& bias, Tensor scratch) {
  const MatmulTarget t{x, w, bias};
  if (gemv(y, std::span<const MatmulTarget>(&t, 1), nullptr, 0.f, false, true)) return;
  if (!bias.empty()) {
    Backend::matmul_residual(x, y, w, bias, scratch);
    return;
  }
  // x += y · wᵀ in the GEMM's epilogue (beta 1, C = D = x): no scratch round trip, no add kernel. The sum is the
  // same fp32 addition the add kernel made, of the same fp32 product.
  gemm(x, y, w, bias, true);
}

bool CudaBackend::gated_mlp_in_bf16(int64_t rows, std::span<const MatmulTarget> gate_up) {
  return gate_up.size() == 2 && rows > kGemvMaxRows && gate_up[0].bias.empty() && gate_up[1].bias.empty() &&
         gate_up[0].w.dim(0) == gate_up[1].w.dim(0) && gate_up[0].w.dim(0) % 8 == 0;
}

void CudaBackend::gated_mlp_hidden(const Tensor& x, const Tensor* norm_w, float eps, bool one_plus, Tensor normed,
                                   std::span<const MatmulTarget> gate_up, Tensor out, Activation act) {
  const int64_t d = x.dim(x.ndim - 1), n = x.numel() / d;
  const bool bf16_path = gated_mlp_in_bf16(n, gate_up) && out.numel() == n * gate_up[0].w.dim(0);
  if (!bf16_path) {
    // Decode rows: one GEMV launch computes each hidden feature's gate and up rows and writes act(gate) * up (no GLU
    // launch, no gate/up round trip; the same fp32 values as the composed ops). Otherwise (biases with many rows,
    // norms longer than the GEMV stages) the composed ops.
    const GemvGlu glu{out, act};
    if (gemv(x, gate_up, norm_w, eps, one_plus, false, &glu)) return;
    Backend::gated_mlp_hidden(x, norm_w, eps, one_plus, normed, gate_up, out, act);
    return;
  }
  // Prefill: the gate and up projections written as bf16 by the GEMMs' epilogues (a bf16 model's own rounding, the
  // fourth of tests/cuda/bf16_emulation_backend.h), the GLU reading them and writing only out's bf16 copy where the
  // down projection's GEMM takes its input (scratch slot 0). Against fp32 projections and an fp32 GLU output this
  // moves 0.43 of the bytes through the GLU (0.35 of 0.82 GB per 4096-row chunk of the 8B; at 128k the GLU took
  // 0.36 s of the TTFT, docs/KERNEL_NOTES.md).
  if (norm_w != nullptr) rmsnorm_into(normed, x, *norm_w, eps, one_plus, true);
  const Tensor& in = norm_w != nullptr ? normed : x;
  const int64_t ffn = gate_up[0].w.dim(0), elems = n * ffn;
  // up starts 256-byte aligned, as every cuBLASLt output before it did (the heuristic assumes 256-byte pointers).
  const int64_t up_at = (elems + 127) / 128 * 128;
  auto* gu = static_cast<uint16_t*>(scratch(size_t(up_at + elems) * sizeof(uint16_t), kScratchGateUp));  // gate | up
  gemm(gate_up[0].out, in, gate_up[0].w, gate_up[0].bias, false, gu);
  gemm(gate_up[1].out, in, gate_up[1].w, gate_up[1].bias, false, gu + up_at);
  forget_converted();
  auto p = zeroed<GluBf16Params>();
  p.act = glu_activation(act);
  p.gate = gu;
  p.up = gu + up_at;
  p.n = elems;
  // After the GEMMs are enqueued: growing slot 0 would drop the bf16 input they read (scratch() syncs first).
  p.out_bf16 = static_cast<uint16_t*>(scratch(size_t(elems) * sizeof(uint16_t), 0));
  enqueue(launch_glu_bf16, p);
  converted_src_ = out.data;
  converted_n_ = elems;
}

}  // namespace lcllm
