// Decode GEMV: out_s[r, o] = Σ_i bf16(x[r, i]) · W_s[o, i] (+ bias_s[o]) for a few rows r and up to
// kGemvMaxSegments weight matrices that read the same x (q/k/v, gate/up), in one launch. The same numbers as the
// cuBLASLt path (x rounded to bf16, fp32 accumulation), summed in another order.
//
// Why not cuBLASLt for these: with 1-4 rows a projection is a stream over its weights, and cuBLASLt's kernels for
// that shape read them at 2.2-2.5 TB/s on the H100 (nvjet 64x8 tiles, split-K + a reduce kernel; ncu 2026-11-25)
// against 3.0 TB/s for a plain copy. Weights are ~80% of a decode step's bytes, so this is where the step's time is.
#pragma once
#include <cstdint>

#include <cuda_runtime_api.h>

#include "kernels/activation.h"

namespace lcllm {

constexpr int32_t kGemvMaxRows = 4;
constexpr int32_t kGemvMaxSegments = 3;

struct GemvSegment {
  const uint16_t* w;   // [n_out, n_in] bf16, row-major (Hugging Face layout)
  float* out;          // [n_rows, n_out] fp32
  const float* bias;   // [n_out] fp32, or null
  int32_t n_out;
};

struct GemvParams {
  const float* x;      // [n_rows, n_in] fp32 (rounded to bf16 as it is read)
  GemvSegment seg[kGemvMaxSegments];
  int32_t n_segments;
  int32_t n_rows;      // 1..kGemvMaxRows
  int32_t n_in;        // multiple of 8 (16-byte weight loads)
  // RMSNorm prologue (norm_w set; n_in <= kGemvMaxNormInputs): the GEMV multiplies rmsnorm(x) = x / sqrt(mean(x²) +
  // eps) * (w or 1 + w), each block normalising the rows into shared memory, so the decode step needs no norm
  // kernel. Same formula as kernels/rmsnorm.cu; only the order of the mean-square sum differs.
  const float* norm_w; // [n_in] fp32, or null: no norm
  float eps;
  int32_t norm_one_plus;
  // Residual epilogue: out += result (the o and down projections add straight into the residual stream).
  int32_t accumulate;
  // Gated-MLP pairs (glu = 1; two segments of equal n_out, no accumulate): segment 0 is the gate projection and 1 the
  // up projection, and feature f's warp computes both rows f and writes only act(gate_f) * up_f, to seg[0].out — the
  // GLU kernel's value without its launch or the up row's round trip through memory.
  int32_t glu;
  GluActivation glu_act;
};

// The RMSNorm prologue stages the normed rows in shared memory: at most this many inputs per row (kGemvMaxRows
// rows of bf16 = 64 KB).
constexpr int32_t kGemvMaxNormInputs = 8192;

// Whether launch_gemv takes this shape.
inline bool gemv_applies(int64_t n_rows, int64_t n_in) {
  return n_rows >= 1 && n_rows <= kGemvMaxRows && n_in % 8 == 0 && n_in > 0;
}

void launch_gemv(const GemvParams& p, cudaStream_t stream);

}  // namespace lcllm
