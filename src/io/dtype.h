// Element types lcllm reads from checkpoints and the scalar conversions between them.
#pragma once
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace lcllm {

enum class DType : uint8_t { DTYPE_F32, DTYPE_F16, DTYPE_BF16 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::DTYPE_F32: return 4;
    case DType::DTYPE_F16: return 2;
    case DType::DTYPE_BF16: return 2;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::DTYPE_F32: return "F32";
    case DType::DTYPE_F16: return "F16";
    case DType::DTYPE_BF16: return "BF16";
  }
  return "?";
}

// The safetensors spelling ("F32", "F16", "BF16"); nullopt for every other dtype string.
inline std::optional<DType> dtype_from_safetensors_name(std::string_view s) {
  if (s == "F32") return DType::DTYPE_F32;
  if (s == "F16") return DType::DTYPE_F16;
  if (s == "BF16") return DType::DTYPE_BF16;
  return std::nullopt;
}

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round-to-nearest-even, NaN preserved (as torch does).
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

inline float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do { mant <<= 1; ++e; } while ((mant & 0x400u) == 0);
      mant &= 0x3ffu;
      bits = sign | (uint32_t(127 - 15 - e) << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Reads element i of a buffer of type t as float.
inline float dtype_load(const void* data, DType t, size_t i) {
  switch (t) {
    case DType::DTYPE_F32: { float f; std::memcpy(&f, static_cast<const char*>(data) + 4 * i, 4); return f; }
    case DType::DTYPE_F16: { uint16_t h; std::memcpy(&h, static_cast<const char*>(data) + 2 * i, 2); return f16_to_f32(h); }
    case DType::DTYPE_BF16: { uint16_t h; std::memcpy(&h, static_cast<const char*>(data) + 2 * i, 2); return bf16_to_f32(h); }
  }
  return 0.f;
}

}  // namespace lcllm
