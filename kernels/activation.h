// Elementwise and row-copy ops of the forward pass: gated MLP activation, softcap, residual add, bias add,
// row gather. All fp32 activations; every op may run in place where its comment says so.
#pragma once
#include <cstdint>

#include <cuda_runtime_api.h>

namespace lcllm {

enum class GluActivation : int32_t { GLU_SILU = 0, GLU_GELU_TANH = 1, GLU_GELU = 2 };

// out_bf16, when set, also receives out rounded to bf16: the down projection's GEMM input, so that GEMM skips its
// conversion kernel.
struct GluParams {
  float* out;          // [n] (may equal gate or up)
  uint16_t* out_bf16;  // [n] bf16 copy of out, or null
  const float* gate;   // [n]
  const float* up;     // [n]
  int64_t n;
  GluActivation act;
};

// The prefill GLU over bf16 projections (CudaBackend::gated_mlp_hidden): out_bf16 = bf16(act(gate) * up), eight
// elements per thread in 16-byte loads and stores; the fp32 output is not written (only the down projection's GEMM
// reads it, in bf16). n % 8 == 0, 16-byte aligned buffers.
struct GluBf16Params {
  uint16_t* out_bf16;     // [n] bf16
  const uint16_t* gate;   // [n] bf16
  const uint16_t* up;     // [n] bf16
  int64_t n;
  GluActivation act;
};

struct SoftcapParams {
  float* x;   // [n] in place: x = cap * tanh(x / cap)
  int64_t n;
  float cap;
};

struct AddParams {
  float* x;        // [n] in place: x += y
  const float* y;  // [n]
  int64_t n;
};

struct BiasAddParams {
  float* x;           // [rows, cols] in place: x[r, c] += bias[c]
  const float* bias;  // [cols] fp32
  int64_t rows;
  int64_t cols;
};

struct GatherRowsParams {
  float* out;            // [n_rows, d]
  const float* x;        // [*, d]
  const int32_t* rows;   // [n_rows]
  int32_t n_rows;
  int64_t d;
};

void launch_glu(const GluParams& p, cudaStream_t stream);
void launch_glu_bf16(const GluBf16Params& p, cudaStream_t stream);
void launch_softcap(const SoftcapParams& p, cudaStream_t stream);
void launch_add(const AddParams& p, cudaStream_t stream);
void launch_bias_add(const BiasAddParams& p, cudaStream_t stream);
void launch_gather_rows(const GatherRowsParams& p, cudaStream_t stream);

}  // namespace lcllm
