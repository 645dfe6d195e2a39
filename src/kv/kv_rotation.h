// The fp8 KV cache's rotation (E11 item 3, accuracy): every K and V vector is multiplied by the orthonormal
// Walsh-Hadamard matrix H (head_dim x head_dim, Sylvester order, entries +-1/sqrt(head_dim)) before its e4m3
// rounding, every query by the same H after RoPE, and each head's slice of o_proj's input columns by H once at load
// (model_weights_bind), so that
//   (H q) . (H k) = q . k            (H is orthonormal: scores, softmax and every key selection are unchanged)
//   sum_j p_j H v_j = H o,  W_o H^T (H o) = W_o o   (H = H^T = H^-1: the folded o_proj undoes the rotation)
// and only the rounding sees rotated vectors. Why: FlashAttention-3 §3.3 ("incoherent processing") and QuaRot §4
// (KV cache quantisation after a Hadamard rotation). A query-key product sum_i q_i k_i (1 + e_i) with e4m3's
// relative errors e_i is dominated by the few channels where both q and k are large (the outlier channels of
// trained models); H spreads every channel over all head_dim coordinates, so the error of the dot product averages
// over head_dim roundings instead of resting on a few. Measured on Gemma 3 270M at 4k, 192 needle prompts
// (docs/PERFORMANCE.md, E11 rows): without the rotation fp8 lowered the answer's log-probability by 0.19 on average
// against bf16 and kept 97.4% of its probability; with it, +0.03 and 98.9%.
//
// The transform is plain float code shared by the host (the CPU backend's exact emulation, the weight fold) and
// the device (the KV write kernels apply the same butterflies in the same order, so both sides round the same
// fp32 values; kernels/kv_rotation.cuh).
#pragma once
#include <cmath>
#include <cstdint>

#include "kv/kv_layout.h"

namespace lcllm {

// Whether a cache of this dtype and head_dim stores rotated vectors (and so needs rotated queries and a folded
// o_proj): fp8 with head_dim a power of two up to 256 (64, 128 and 256: every supported model; the GPU's write
// kernels hold a vector per block in shared memory). bf16 is not rotated: its 8 significant bits against e4m3's 4
// lose too little for it to matter. An fp8 cache of another head_dim stores plain vectors.
LCLLM_KV_FN bool kv_rotated(KvDtype dtype, int32_t head_dim) {
  return dtype == KvDtype::KV_DTYPE_FP8_E4M3 && head_dim >= 2 && head_dim <= 256 && (head_dim & (head_dim - 1)) == 0;
}

// 1/sqrt(n) as a float: exact for even powers of two (64: 0.125, 256: 0.0625), rounded once otherwise; host and
// device compute it the same way (a double square root, then one rounding to float).
LCLLM_KV_FN float kv_rotation_norm(int32_t n) { return float(1.0 / std::sqrt(double(n))); }

// x <- H x in place, n a power of two: log2(n) butterfly stages (pairs j, j + len for len = 1, 2, ..., n/2), then
// the 1/sqrt(n) scaling. The device version (kernels/kv_rotation.cuh) runs the same stages in the same order.
LCLLM_KV_FN void kv_rotate_vector(float* x, int32_t n) {
  for (int32_t len = 1; len < n; len <<= 1) {
    for (int32_t b = 0; b < n; b += 2 * len) {
      for (int32_t j = b; j < b + len; ++j) {
        const float u = x[j], w = x[j + len];
        x[j] = u + w;
        x[j + len] = u - w;
      }
    }
  }
  const float s = kv_rotation_norm(n);
  for (int32_t j = 0; j < n; ++j) x[j] *= s;
}

}  // namespace lcllm
