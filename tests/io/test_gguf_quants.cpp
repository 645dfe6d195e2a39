// GGUF tensor types (E10 item 2): the type table, byte sizes, and ggml_dequantize checked block by block, bit for
// bit, against gguf.quants.dequantize on the committed fixtures (tests/fixtures/gguf_quants, made by
// tools/make_gguf_quant_fixtures.py); unknown and unsupported types are refused by name.
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "io/gguf_types.h"
#include "lcllm/error.h"

using lcllm::Error;
using lcllm::ErrorKind;
using lcllm::GgmlType;
using lcllm::ggml_dequantize;
using lcllm::ggml_row_bytes;
using lcllm::ggml_type_info;

namespace {

uint32_t id(GgmlType t) { return static_cast<uint32_t>(t); }

std::vector<std::byte> read_fixture(const std::string& file) {
  const std::string path = std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/gguf_quants/" + file;
  std::ifstream in(path, std::ios::binary);
  INFO(path);
  REQUIRE(in.good());
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

// Runs ggml_dequantize over <name>.bin and compares each output's bit pattern with <name>.f32, one block at a time
// so that a failure names the block. Bits, not values: NaN payloads and the sign of zero must match too.
void check_against_reference(GgmlType type, const char* name) {
  const lcllm::GgmlTypeInfo* info = ggml_type_info(id(type));
  REQUIRE(info != nullptr);
  REQUIRE(std::string(info->name) == name);
  REQUIRE(info->dequantizable);
  const std::vector<std::byte> src = read_fixture(std::string(name) + ".bin");
  const std::vector<std::byte> ref = read_fixture(std::string(name) + ".f32");
  REQUIRE(src.size() % size_t(info->type_size) == 0);
  const int64_t blocks = int64_t(src.size()) / info->type_size;
  const int64_t n = blocks * info->block_size;
  REQUIRE(blocks >= 4);
  REQUIRE(ref.size() == size_t(n) * 4);
  REQUIRE(ggml_row_bytes(id(type), uint64_t(n)) == uint64_t(src.size()));

  // Decode from an odd offset: GGUF data is only 32-byte aligned per tensor, rows and blocks are packed.
  std::vector<std::byte> shifted(src.size() + 1);
  std::memcpy(shifted.data() + 1, src.data(), src.size());
  std::vector<float> out(size_t(n), -12345.f);
  ggml_dequantize(id(type), shifted.data() + 1, out.data(), n);

  for (int64_t b = 0; b < blocks; ++b) {
    int mismatches = 0;
    int64_t first = -1;
    for (int64_t i = b * info->block_size; i < (b + 1) * info->block_size; ++i) {
      uint32_t got, want;
      std::memcpy(&got, &out[size_t(i)], 4);
      std::memcpy(&want, ref.data() + 4 * i, 4);
      if (got != want) {
        ++mismatches;
        if (first < 0) first = i;
      }
    }
    INFO(name << " block " << b << ": " << mismatches << " mismatches, first at element " << first);
    CHECK(mismatches == 0);
  }
}

}  // namespace

TEST_CASE("ggml_dequantize matches gguf.quants.dequantize bit for bit on every supported type", "[io][gguf]") {
  check_against_reference(GgmlType::GGML_TYPE_F32, "F32");
  check_against_reference(GgmlType::GGML_TYPE_F16, "F16");
  check_against_reference(GgmlType::GGML_TYPE_BF16, "BF16");
  check_against_reference(GgmlType::GGML_TYPE_Q8_0, "Q8_0");
  check_against_reference(GgmlType::GGML_TYPE_Q4_0, "Q4_0");
  check_against_reference(GgmlType::GGML_TYPE_Q4_1, "Q4_1");
  check_against_reference(GgmlType::GGML_TYPE_Q5_0, "Q5_0");
  check_against_reference(GgmlType::GGML_TYPE_Q5_1, "Q5_1");
  check_against_reference(GgmlType::GGML_TYPE_Q4_K, "Q4_K");
  check_against_reference(GgmlType::GGML_TYPE_Q5_K, "Q5_K");
  check_against_reference(GgmlType::GGML_TYPE_Q6_K, "Q6_K");
}

TEST_CASE("a hand-built Q4_0 block: low nibbles are elements 0..15, high nibbles 16..31, value (q - 8) * d",
          "[io][gguf]") {
  std::byte block[18];
  const uint16_t d_half = 0x3800;  // 0.5 in f16
  std::memcpy(block, &d_half, 2);
  for (int i = 0; i < 16; ++i) block[2 + i] = std::byte(uint8_t((15 - i) << 4 | i));
  float y[32];
  ggml_dequantize(id(GgmlType::GGML_TYPE_Q4_0), block, y, 32);
  for (int i = 0; i < 16; ++i) {
    CHECK(y[i] == 0.5f * float(i - 8));
    CHECK(y[16 + i] == 0.5f * float(7 - i));
  }
}

TEST_CASE("ggml_type_info names ggml's types, knows their block sizes, and has nothing for undefined ids",
          "[io][gguf]") {
  struct Expect {
    uint32_t id;
    const char* name;
    int64_t block_size, type_size;
    bool dequantizable;
  };
  for (const Expect& e : {Expect{0, "F32", 1, 4, true}, Expect{1, "F16", 1, 2, true}, Expect{2, "Q4_0", 32, 18, true},
                          Expect{8, "Q8_0", 32, 34, true}, Expect{12, "Q4_K", 256, 144, true},
                          Expect{13, "Q5_K", 256, 176, true}, Expect{14, "Q6_K", 256, 210, true},
                          Expect{16, "IQ2_XXS", 256, 66, false}, Expect{30, "BF16", 1, 2, true},
                          Expect{35, "TQ2_0", 256, 66, false}, Expect{41, "Q1_0", 128, 18, false}}) {
    const lcllm::GgmlTypeInfo* info = ggml_type_info(e.id);
    INFO("type id " << e.id);
    REQUIRE(info != nullptr);
    CHECK(std::string(info->name) == e.name);
    CHECK(info->block_size == e.block_size);
    CHECK(info->type_size == e.type_size);
    CHECK(info->dequantizable == e.dequantizable);
  }
  for (uint32_t undefined : {4u, 5u, 31u, 36u, 42u, 9999u, 0xffffffffu}) CHECK(ggml_type_info(undefined) == nullptr);
  CHECK(lcllm::ggml_type_name(9999) == "unknown type id 9999");
}

TEST_CASE("ggml_dequantize refuses undequantizable and unknown types by name, and partial blocks", "[io][gguf]") {
  std::vector<std::byte> src(1024);
  std::vector<float> dst(512);
  auto kind_and_message = [&](uint32_t type, int64_t n) -> std::pair<ErrorKind, std::string> {
    try {
      ggml_dequantize(type, src.data(), dst.data(), n);
    } catch (const Error& e) {
      return {e.kind(), e.what()};
    }
    FAIL("ggml_dequantize accepted type " << type << " with n = " << n);
    return {};
  };
  auto [kind, message] = kind_and_message(id(GgmlType::GGML_TYPE_IQ2_XXS), 256);
  CHECK(kind == ErrorKind::ERROR_KIND_UNSUPPORTED);
  CHECK_THAT(message, Catch::Contains("IQ2_XXS"));
  std::tie(kind, message) = kind_and_message(id(GgmlType::GGML_TYPE_Q8_K), 256);
  CHECK(kind == ErrorKind::ERROR_KIND_UNSUPPORTED);
  CHECK_THAT(message, Catch::Contains("Q8_K"));
  std::tie(kind, message) = kind_and_message(9999, 32);
  CHECK(kind == ErrorKind::ERROR_KIND_UNSUPPORTED);
  CHECK_THAT(message, Catch::Contains("9999"));
  std::tie(kind, message) = kind_and_message(id(GgmlType::GGML_TYPE_Q4_K), 100);
  CHECK(kind == ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
  CHECK_THAT(message, Catch::Contains("Q4_K") && Catch::Contains("256"));
  std::tie(kind, message) = kind_and_message(id(GgmlType::GGML_TYPE_Q8_0), -32);
  CHECK(kind == ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
  CHECK_NOTHROW(ggml_dequantize(id(GgmlType::GGML_TYPE_Q4_0), src.data(), dst.data(), 0));
}

TEST_CASE("ggml_row_bytes: whole blocks only, unknown types and 64-bit overflow give nullopt", "[io][gguf]") {
  CHECK(ggml_row_bytes(id(GgmlType::GGML_TYPE_F32), 10) == 40u);
  CHECK(ggml_row_bytes(id(GgmlType::GGML_TYPE_BF16), 3) == 6u);
  CHECK(ggml_row_bytes(id(GgmlType::GGML_TYPE_Q4_0), 64) == 36u);
  CHECK(ggml_row_bytes(id(GgmlType::GGML_TYPE_Q6_K), 4096) == 16u * 210u);
  CHECK(ggml_row_bytes(id(GgmlType::GGML_TYPE_Q4_K), 0) == 0u);
  CHECK(ggml_row_bytes(id(GgmlType::GGML_TYPE_Q4_K), 100) == std::nullopt);
  CHECK(ggml_row_bytes(id(GgmlType::GGML_TYPE_Q8_0), 33) == std::nullopt);
  CHECK(ggml_row_bytes(9999, 32) == std::nullopt);
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  CHECK(ggml_row_bytes(id(GgmlType::GGML_TYPE_F32), max / 4 + 1) == std::nullopt);
  CHECK(ggml_row_bytes(id(GgmlType::GGML_TYPE_F32), max / 4) == (max / 4) * 4);
  CHECK(ggml_row_bytes(id(GgmlType::GGML_TYPE_Q8_0), (max / 32) * 32) == std::nullopt);  // 34 bytes per 32
  CHECK(ggml_row_bytes(id(GgmlType::GGML_TYPE_I64), max / 8 + 1) == std::nullopt);
}
