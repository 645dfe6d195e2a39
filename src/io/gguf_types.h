// GGUF tensor types (ggml's type ids, block sizes, bytes per block) and their dequantization to fp32 (E10 item 2).
//
// A GGUF file stores each tensor's type as a u32 ggml type id. Most ids name a block format: `block_size`
// consecutive weights of one row are packed into `type_size` bytes (a 32-weight Q4_0 block is 18 bytes). lcllm
// computes in fp32/bf16, so quantized weights are expanded to fp32 once, at load, by ggml_dequantize; the results
// equal the `gguf` Python package's gguf.quants.dequantize bit for bit (tests/io/test_gguf_quants.cpp, fixtures
// from tools/make_gguf_quant_fixtures.py). Types lcllm cannot expand are refused by name, never misread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace lcllm {

// ggml tensor type ids as GGUF stores them (u32), the ids gguf/constants.py GGMLQuantizationType lists (gguf 0.19).
// Every id ggml defines has a name, so that an unsupported-but-known type is named in errors; the gaps (4, 5:
// the removed Q4_2/Q4_3; 31-33, 36-38: removed repacked layouts) are not ggml types any more.
enum class GgmlType : uint32_t {
  GGML_TYPE_F32 = 0,
  GGML_TYPE_F16 = 1,
  GGML_TYPE_Q4_0 = 2,
  GGML_TYPE_Q4_1 = 3,
  GGML_TYPE_Q5_0 = 6,
  GGML_TYPE_Q5_1 = 7,
  GGML_TYPE_Q8_0 = 8,
  GGML_TYPE_Q8_1 = 9,
  GGML_TYPE_Q2_K = 10,
  GGML_TYPE_Q3_K = 11,
  GGML_TYPE_Q4_K = 12,
  GGML_TYPE_Q5_K = 13,
  GGML_TYPE_Q6_K = 14,
  GGML_TYPE_Q8_K = 15,
  GGML_TYPE_IQ2_XXS = 16,
  GGML_TYPE_IQ2_XS = 17,
  GGML_TYPE_IQ3_XXS = 18,
  GGML_TYPE_IQ1_S = 19,
  GGML_TYPE_IQ4_NL = 20,
  GGML_TYPE_IQ3_S = 21,
  GGML_TYPE_IQ2_S = 22,
  GGML_TYPE_IQ4_XS = 23,
  GGML_TYPE_I8 = 24,
  GGML_TYPE_I16 = 25,
  GGML_TYPE_I32 = 26,
  GGML_TYPE_I64 = 27,
  GGML_TYPE_F64 = 28,
  GGML_TYPE_IQ1_M = 29,
  GGML_TYPE_BF16 = 30,
  GGML_TYPE_TQ1_0 = 34,
  GGML_TYPE_TQ2_0 = 35,
  GGML_TYPE_MXFP4 = 39,
  GGML_TYPE_NVFP4 = 40,
  GGML_TYPE_Q1_0 = 41,
};

// What one type id means: `block_size` weights are stored in `type_size` bytes (1 and sizeof(element) for plain
// element types). `dequantizable`: ggml_dequantize expands it (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
// Q4_K, Q5_K, Q6_K).
struct GgmlTypeInfo {
  const char* name;  // ggml's spelling: "Q4_K", "BF16"
  int64_t block_size;
  int64_t type_size;
  bool dequantizable;
};

// nullptr for an id ggml does not define.
const GgmlTypeInfo* ggml_type_info(uint32_t type);

// The type's name for messages: "Q4_K", or "unknown type id 9999" for an id ggml does not define.
std::string ggml_type_name(uint32_t type);

// Bytes of n elements: n / block_size * type_size. std::nullopt when n is not a multiple of block_size, when the
// type is unknown, or when the byte count does not fit in 64 bits (a header's claim is never trusted).
std::optional<uint64_t> ggml_row_bytes(uint32_t type, uint64_t n_elements);

// Dequantizes n elements (a multiple of the type's block size) from src (ggml_row_bytes(type, n) bytes, any
// alignment, little-endian as GGUF stores them) to dst (n floats). Throws lcllm::Error ERROR_KIND_UNSUPPORTED
// naming the type for a type that is not dequantizable (unknown ids included), and ERROR_KIND_INVALID_ARGUMENT
// when n is negative or not a multiple of the block size.
void ggml_dequantize(uint32_t type, const std::byte* src, float* dst, int64_t n);

}  // namespace lcllm
