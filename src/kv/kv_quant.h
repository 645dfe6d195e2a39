// fp8 KV cache values (E11 item 3): OCP FP8 E4M3 ("e4m3fn": bias 7, no infinities, max 448, 0x7f/0xff NaN) with
// one power-of-two scale per stored K or V vector (one cache slot, one KV head: head_dim values), written as a
// biased exponent byte (OCP microscaling's E8M0: scale = 2^(byte - 127)).
//
// Why a per-vector power-of-two scale rather than vLLM's per-tensor k_scale / v_scale: vLLM's scales come from a
// calibrated checkpoint or default to 1.0, and with 1.0 the small values of V (|v| < 2^-6) fall into e4m3's
// subnormals and keep at most 3 significant bits — or none. A per-vector scale needs no calibration data, cannot
// overflow (the vector's largest |x| lands in (224, 448]), makes every request's cache independent of the others
// (prefix caching stays exact), and costs one byte per head_dim bytes (0.8% at head_dim 128). A power of two makes
// the scaling exact in both directions, so quantize → dequantize is the e4m3 rounding and nothing else, and the
// attention kernels apply it as one multiply per key (the dot product's, and the softmax weight's for V).
//
// Vectors reach the encoder Hadamard-rotated where the head_dim allows (kv/kv_rotation.h: the rounding error of a
// score then spreads over every coordinate instead of resting on a model's outlier channels).
//
// The encoder is plain integer/float code shared by the host (the CPU backend's exact emulation) and the device
// (the GPU's KV write), so both produce the same bytes from the same fp32 inputs.
#pragma once
#include <cmath>
#include <cstdint>

#include "io/dtype.h"
#include "kv/kv_layout.h"

namespace lcllm {

constexpr float kFp8E4m3Max = 448.f;

// Round-to-nearest-even to e4m3fn with saturation to ±448 (cuda's __NV_SATFINITE); NaN -> 0x7f with the sign.
LCLLM_KV_FN uint8_t fp8_e4m3_encode(float x) {
  const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  if (std::isnan(x)) return uint8_t(sign | 0x7f);
  const float a = std::fabs(x);
  if (a >= kFp8E4m3Max) return uint8_t(sign | 0x7e);
  if (a < 0.015625f) {  // below the smallest normal 2^-6: subnormal steps of 2^-9; 8 steps is the smallest normal
    return uint8_t(sign | uint8_t(std::rint(a * 512.f)));
  }
  int e = 0;
  const float f = std::frexp(a, &e);        // a = f * 2^e, f in [0.5, 1)
  const float m = std::rint((2.f * f - 1.f) * 8.f);  // 3 mantissa bits of 2f = 1.mmm, rounded to even
  int32_t exp_field = (e - 1) + 7, man = int32_t(m);
  if (man == 8) {  // rounded up to the next binade
    man = 0;
    ++exp_field;
  }
  return uint8_t(sign | uint8_t((exp_field << 3) | man));  // a < 448 keeps the code <= 0x7e
}

LCLLM_KV_FN float fp8_e4m3_decode(uint8_t c) {
  const int32_t exp_field = (c >> 3) & 15, man = c & 7;
  float v;
  if (exp_field == 15 && man == 7) {
    v = NAN;
  } else if (exp_field == 0) {
    v = std::ldexp(float(man), -9);
  } else {
    v = std::ldexp(float(8 + man), exp_field - 10);  // (1 + man/8) * 2^(exp - 7)
  }
  return (c & 0x80) ? -v : v;
}

// The scale exponent byte of a vector whose largest magnitude is amax: the smallest power of two 2^k with
// amax / 2^k <= 448, k clamped to [-127, 127]; amax == 0 (or not finite) gives 2^0.
LCLLM_KV_FN uint8_t fp8_scale_exponent(float amax) {
  if (!(amax > 0.f) || std::isinf(amax)) return 127;
  int e = 0;
  const float f = std::frexp(amax, &e);  // amax = f * 2^e; 448 = 0.875 * 2^9
  int32_t k = f <= 0.875f ? e - 9 : e - 8;
  k = k < -127 ? -127 : (k > 127 ? 127 : k);
  return uint8_t(k + 127);
}

LCLLM_KV_FN float fp8_scale_value(uint8_t exponent_byte) { return std::ldexp(1.f, int32_t(exponent_byte) - 127); }

// Bytes one (slot, KV head) vector of K (or of V) takes in a cache of this dtype, its scale included.
LCLLM_KV_FN int64_t kv_vector_bytes(KvDtype dtype, int32_t head_dim) {
  switch (dtype) {
    case KvDtype::KV_DTYPE_F32: return int64_t(head_dim) * 4;
    case KvDtype::KV_DTYPE_BF16: return int64_t(head_dim) * 2;
    case KvDtype::KV_DTYPE_FP8_E4M3: return int64_t(head_dim) + 1;
  }
  return 0;
}

// The --kv-cache-dtype spelling of a dtype (host only).
inline const char* kv_dtype_name(KvDtype dtype) {
  switch (dtype) {
    case KvDtype::KV_DTYPE_F32: return "fp32";
    case KvDtype::KV_DTYPE_BF16: return "bf16";
    case KvDtype::KV_DTYPE_FP8_E4M3: return "fp8";
  }
  return "?";
}

// Rounds one K or V vector in place to what a cache of `dtype` keeps (the CPU backend's exact emulation of the GPU's
// storage): bf16 round-to-nearest-even, or fp8 e4m3 under the vector's power-of-two scale. Returns the fp8
// exponent byte (127 for the other dtypes).
inline uint8_t kv_round_vector(float* v, int32_t n, KvDtype dtype) {
  if (dtype == KvDtype::KV_DTYPE_BF16) {
    for (int32_t i = 0; i < n; ++i) v[i] = bf16_to_f32(f32_to_bf16(v[i]));  // the checkpoint loader's rounding
    return 127;
  }
  if (dtype != KvDtype::KV_DTYPE_FP8_E4M3) return 127;
  float amax = 0.f;
  for (int32_t i = 0; i < n; ++i) amax = std::fmax(amax, std::fabs(v[i]));
  const uint8_t e = fp8_scale_exponent(amax);
  const float inv = fp8_scale_value(uint8_t(254 - e)), scale = fp8_scale_value(e);  // 2^-k and 2^k, both exact
  for (int32_t i = 0; i < n; ++i) v[i] = fp8_e4m3_decode(fp8_e4m3_encode(v[i] * inv)) * scale;
  return e;
}

}  // namespace lcllm
