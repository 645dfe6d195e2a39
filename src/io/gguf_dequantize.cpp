// ggml_dequantize: expands GGUF block formats to fp32 at load, one block at a time.
//
// Each decoder follows ggml's block layout (little-endian, packed, no padding) and performs the fp32 operations of
// gguf.quants.dequantize (numpy float32) in its order: (d * scale) * q, then + m or - (dmin * min). The results
// are bit-identical to it, and robustly so: every product here is exact in fp32 (an f16 scale has 11 significant
// bits, a 6-bit K-quant scale or an int8 Q6_K scale adds at most 7, a quant at most 5; 23 <= 24 bits, far from
// overflow and from fp32 subnormals even for f16-subnormal scales), so the only rounding is the final add or
// subtract. Neither the order of the products nor FMA contraction (-march with FMA, -ffp-contract=fast) can change
// a result; the fixture test passes under both.
#include <bit>
#include <cstring>
#include <string>

#include "io/dtype.h"
#include "io/gguf_types.h"
#include "lcllm/error.h"

namespace lcllm {

namespace {

static_assert(std::endian::native == std::endian::little, "GGUF blocks are little-endian; add byte swaps first");

constexpr int kQk = 32;    // weights per Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 block
constexpr int kQkK = 256;  // weights per K-quant super-block

// Blocks may sit at any byte offset of a mapped file, so multi-byte fields are read with memcpy.
uint16_t load_u16(const std::byte* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
uint32_t load_u32(const std::byte* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint8_t byte_at(const std::byte* p, int i) { return std::to_integer<uint8_t>(p[i]); }
float f16_at(const std::byte* p) { return f16_to_f32(load_u16(p)); }

// Q4_0, 18 bytes: {f16 d; u8 qs[16]}. Weight i < 16 is the low nibble of qs[i], weight 16 + i the high nibble;
// value = (nibble - 8) * d.
void block_q4_0(const std::byte* b, float* y) {
  const float d = f16_at(b);
  const std::byte* qs = b + 2;
  for (int i = 0; i < kQk / 2; ++i) {
    const int q = byte_at(qs, i);
    y[i] = d * float((q & 0x0f) - 8);
    y[i + kQk / 2] = d * float((q >> 4) - 8);
  }
}

// Q4_1, 20 bytes: {f16 d; f16 m; u8 qs[16]}. Nibbles as Q4_0, unsigned; value = d * nibble + m.
void block_q4_1(const std::byte* b, float* y) {
  const float d = f16_at(b);
  const float m = f16_at(b + 2);
  const std::byte* qs = b + 4;
  for (int i = 0; i < kQk / 2; ++i) {
    const int q = byte_at(qs, i);
    y[i] = d * float(q & 0x0f) + m;
    y[i + kQk / 2] = d * float(q >> 4) + m;
  }
}

// Q5_0, 22 bytes: {f16 d; u32 qh; u8 qs[16]}. Weight i: low 4 bits as Q4_0, bit 4 = bit i of qh;
// value = (q - 16) * d.
void block_q5_0(const std::byte* b, float* y) {
  const float d = f16_at(b);
  const uint32_t qh = load_u32(b + 2);
  const std::byte* qs = b + 6;
  for (int i = 0; i < kQk / 2; ++i) {
    const int q = byte_at(qs, i);
    const int lo = (q & 0x0f) | int(((qh >> i) & 1u) << 4);
    const int hi = (q >> 4) | int(((qh >> (i + kQk / 2)) & 1u) << 4);
    y[i] = d * float(lo - 16);
    y[i + kQk / 2] = d * float(hi - 16);
  }
}

// Q5_1, 24 bytes: {f16 d; f16 m; u32 qh; u8 qs[16]}. 5-bit q as Q5_0, unsigned; value = d * q + m.
void block_q5_1(const std::byte* b, float* y) {
  const float d = f16_at(b);
  const float m = f16_at(b + 2);
  const uint32_t qh = load_u32(b + 4);
  const std::byte* qs = b + 8;
  for (int i = 0; i < kQk / 2; ++i) {
    const int q = byte_at(qs, i);
    const int lo = (q & 0x0f) | int(((qh >> i) & 1u) << 4);
    const int hi = (q >> 4) | int(((qh >> (i + kQk / 2)) & 1u) << 4);
    y[i] = d * float(lo) + m;
    y[i + kQk / 2] = d * float(hi) + m;
  }
}

// Q8_0, 34 bytes: {f16 d; i8 qs[32]}; value = qs[i] * d.
void block_q8_0(const std::byte* b, float* y) {
  const float d = f16_at(b);
  for (int i = 0; i < kQk; ++i) y[i] = float(int8_t(byte_at(b + 2, i))) * d;
}

// The 12 bytes of K-quant scales hold eight 6-bit scales and eight 6-bit mins, one pair per 32-weight sub-block
// (ggml's get_scale_min_k4). Sub-blocks 0..3: scale = bytes[j] & 63, min = bytes[j + 4] & 63. Sub-blocks 4..7:
// the low 4 bits come from bytes[j + 4] (scale: low nibble, min: high nibble), the high 2 bits from the top two
// bits of bytes[j - 4] (scale) and bytes[j] (min).
void scale_min_k4(const std::byte* scales, int j, int* sc, int* mn) {
  if (j < 4) {
    *sc = byte_at(scales, j) & 63;
    *mn = byte_at(scales, j + 4) & 63;
  } else {
    *sc = (byte_at(scales, j + 4) & 0x0f) | ((byte_at(scales, j - 4) >> 6) << 4);
    *mn = (byte_at(scales, j + 4) >> 4) | ((byte_at(scales, j) >> 6) << 4);
  }
}

// Q4_K, 144 bytes: {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}, 256 weights in eight sub-blocks of 32.
// qs is four chunks of 32 bytes; chunk c holds sub-block 2c in its low nibbles and 2c + 1 in its high nibbles.
// value = (d * scale) * q - (dmin * min).
void block_q4_k(const std::byte* b, float* y) {
  const float d = f16_at(b);
  const float dmin = f16_at(b + 2);
  const std::byte* scales = b + 4;
  const std::byte* qs = b + 16;
  for (int s = 0; s < 8; ++s) {
    int sc, mn;
    scale_min_k4(scales, s, &sc, &mn);
    const float ds = d * float(sc);
    const float dm = dmin * float(mn);
    const std::byte* chunk = qs + 32 * (s / 2);
    const int shift = 4 * (s % 2);
    for (int i = 0; i < 32; ++i) y[32 * s + i] = ds * float((byte_at(chunk, i) >> shift) & 0x0f) - dm;
  }
}

// Q5_K, 176 bytes: {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}. Low 4 bits as Q4_K; bit 4 of weight
// i of sub-block s is bit s of qh[i]. value = (d * scale) * q - (dmin * min).
void block_q5_k(const std::byte* b, float* y) {
  const float d = f16_at(b);
  const float dmin = f16_at(b + 2);
  const std::byte* scales = b + 4;
  const std::byte* qh = b + 16;
  const std::byte* qs = b + 48;
  for (int s = 0; s < 8; ++s) {
    int sc, mn;
    scale_min_k4(scales, s, &sc, &mn);
    const float ds = d * float(sc);
    const float dm = dmin * float(mn);
    const std::byte* chunk = qs + 32 * (s / 2);
    const int shift = 4 * (s % 2);
    for (int i = 0; i < 32; ++i) {
      const int q = ((byte_at(chunk, i) >> shift) & 0x0f) | (((byte_at(qh, i) >> s) & 1) << 4);
      y[32 * s + i] = ds * float(q) - dm;
    }
  }
}

// Q6_K, 210 bytes: {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}, 256 weights in two halves of 128, each half
// using ql[64 * h .. +64] and qh[32 * h .. +32]. Within a half, weight r (0..127): low 4 bits are nibble r / 64 of
// ql[r % 64], high 2 bits are bits 2 * (r / 32) .. +1 of qh[r % 32]. value = (d * scales[w / 16]) * (q - 32).
void block_q6_k(const std::byte* b, float* y) {
  const std::byte* ql = b;
  const std::byte* qh = b + 128;
  const std::byte* scales = b + 192;
  const float d = f16_at(b + 208);
  for (int w = 0; w < kQkK; ++w) {
    const int h = w / 128, r = w % 128;
    const int lo = (byte_at(ql, 64 * h + r % 64) >> (4 * (r / 64))) & 0x0f;
    const int hi = (byte_at(qh, 32 * h + r % 32) >> (2 * (r / 32))) & 0x03;
    const float ds = d * float(int8_t(byte_at(scales, w / 16)));
    y[w] = ds * float((lo | (hi << 4)) - 32);
  }
}

using BlockFn = void (*)(const std::byte*, float*);

BlockFn block_decoder(uint32_t type) {
  switch (GgmlType(type)) {
    case GgmlType::GGML_TYPE_Q4_0: return block_q4_0;
    case GgmlType::GGML_TYPE_Q4_1: return block_q4_1;
    case GgmlType::GGML_TYPE_Q5_0: return block_q5_0;
    case GgmlType::GGML_TYPE_Q5_1: return block_q5_1;
    case GgmlType::GGML_TYPE_Q8_0: return block_q8_0;
    case GgmlType::GGML_TYPE_Q4_K: return block_q4_k;
    case GgmlType::GGML_TYPE_Q5_K: return block_q5_k;
    case GgmlType::GGML_TYPE_Q6_K: return block_q6_k;
    default: return nullptr;
  }
}

}  // namespace

void ggml_dequantize(uint32_t type, const std::byte* src, float* dst, int64_t n) {
  const GgmlTypeInfo* info = ggml_type_info(type);
  if (!info || !info->dequantizable) {
    throw Error(ErrorKind::ERROR_KIND_UNSUPPORTED,
                "GGUF tensor type " + ggml_type_name(type) +
                    " cannot be loaded: lcllm dequantizes F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K "
                    "and Q6_K only");
  }
  if (n < 0 || n % info->block_size != 0) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "cannot dequantize " + std::to_string(n) + " elements of GGUF type " + info->name +
                    ": the count must be a non-negative multiple of its block size " +
                    std::to_string(info->block_size));
  }
  switch (GgmlType(type)) {
    case GgmlType::GGML_TYPE_F32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case GgmlType::GGML_TYPE_F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(load_u16(src + 2 * i));
      return;
    case GgmlType::GGML_TYPE_BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_u16(src + 2 * i));
      return;
    default:
      break;
  }
  const BlockFn decode = block_decoder(type);
  LCLLM_ASSERT(decode != nullptr, "a type marked dequantizable has no block decoder");
  const int64_t blocks = n / info->block_size;
  for (int64_t k = 0; k < blocks; ++k) decode(src + k * info->type_size, dst + k * info->block_size);
}

}  // namespace lcllm
