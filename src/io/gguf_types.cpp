// The ggml type table: names, block sizes and bytes per block of every type id GGUF may store, and the byte size
// of a run of elements. Sizes are ggml's (gguf/constants.py GGML_QUANT_SIZES); QK_K super-blocks hold 256 weights.
#include <array>
#include <limits>

#include "io/gguf_types.h"

namespace lcllm {

namespace {

constexpr int64_t kQkK = 256;  // weights per K-quant / IQ super-block

struct TypeEntry {
  uint32_t id;
  GgmlTypeInfo info;
};

// One row per ggml type id. type_size is spelled as ggml sums its block fields, so each row can be checked
// against the block struct: e.g. Q4_K = f16 d + f16 dmin + 12 bytes of packed 6-bit scales/mins + 128 bytes of
// nibbles.
constexpr std::array<TypeEntry, 34> kTypes{{
    {0, {"F32", 1, 4, true}},
    {1, {"F16", 1, 2, true}},
    {2, {"Q4_0", 32, 2 + 16, true}},
    {3, {"Q4_1", 32, 2 + 2 + 16, true}},
    {6, {"Q5_0", 32, 2 + 4 + 16, true}},
    {7, {"Q5_1", 32, 2 + 2 + 4 + 16, true}},
    {8, {"Q8_0", 32, 2 + 32, true}},
    {9, {"Q8_1", 32, 4 + 4 + 32, false}},
    {10, {"Q2_K", kQkK, 2 + 2 + kQkK / 16 + kQkK / 4, false}},
    {11, {"Q3_K", kQkK, 2 + kQkK / 4 + kQkK / 8 + 12, false}},
    {12, {"Q4_K", kQkK, 2 + 2 + 12 + kQkK / 2, true}},
    {13, {"Q5_K", kQkK, 2 + 2 + 12 + kQkK / 8 + kQkK / 2, true}},
    {14, {"Q6_K", kQkK, kQkK / 2 + kQkK / 4 + kQkK / 16 + 2, true}},
    {15, {"Q8_K", kQkK, 4 + kQkK + kQkK / 8, false}},
    {16, {"IQ2_XXS", kQkK, 2 + kQkK / 4, false}},
    {17, {"IQ2_XS", kQkK, 2 + kQkK / 4 + kQkK / 32, false}},
    {18, {"IQ3_XXS", kQkK, 2 + kQkK / 4 + kQkK / 8, false}},
    {19, {"IQ1_S", kQkK, 2 + kQkK / 8 + kQkK / 16, false}},
    {20, {"IQ4_NL", 32, 2 + 16, false}},
    {21, {"IQ3_S", kQkK, 2 + kQkK / 4 + kQkK / 8 + kQkK / 32 + 4, false}},
    {22, {"IQ2_S", kQkK, 2 + kQkK / 4 + kQkK / 16, false}},
    {23, {"IQ4_XS", kQkK, 2 + 2 + kQkK / 2 + kQkK / 64, false}},
    {24, {"I8", 1, 1, false}},
    {25, {"I16", 1, 2, false}},
    {26, {"I32", 1, 4, false}},
    {27, {"I64", 1, 8, false}},
    {28, {"F64", 1, 8, false}},
    {29, {"IQ1_M", kQkK, kQkK / 8 + kQkK / 16 + kQkK / 32, false}},
    {30, {"BF16", 1, 2, true}},
    {34, {"TQ1_0", kQkK, 2 + 4 * 13, false}},
    {35, {"TQ2_0", kQkK, 2 + 64, false}},
    {39, {"MXFP4", 32, 1 + 16, false}},
    {40, {"NVFP4", 64, 4 + 32, false}},
    {41, {"Q1_0", 128, 2 + 16, false}},
}};

}  // namespace

const GgmlTypeInfo* ggml_type_info(uint32_t type) {
  for (const TypeEntry& e : kTypes) {
    if (e.id == type) return &e.info;
  }
  return nullptr;
}

std::string ggml_type_name(uint32_t type) {
  const GgmlTypeInfo* info = ggml_type_info(type);
  return info ? std::string(info->name) : "unknown type id " + std::to_string(type);
}

std::optional<uint64_t> ggml_row_bytes(uint32_t type, uint64_t n_elements) {
  const GgmlTypeInfo* info = ggml_type_info(type);
  if (!info) return std::nullopt;
  const uint64_t block = uint64_t(info->block_size);
  const uint64_t size = uint64_t(info->type_size);
  if (n_elements % block != 0) return std::nullopt;
  const uint64_t blocks = n_elements / block;
  if (blocks > std::numeric_limits<uint64_t>::max() / size) return std::nullopt;
  return blocks * size;
}

}  // namespace lcllm
