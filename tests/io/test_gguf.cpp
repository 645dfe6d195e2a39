// The GGUF container reader (io/gguf.h): valid files read back exactly; every corrupt file is refused with a message
// naming the file, the key or tensor, and the rule (E10 item 1). Images are built by tests/io/gguf_test_util.h.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "io/gguf.h"
#include "lcllm/error.h"
#include "tests/io/gguf_test_util.h"

using lcllm::Error;
using lcllm::ErrorKind;
using lcllm::GgufContents;
using lcllm::GgufType;
using lcllm::test::GgufBuilder;

namespace {

const std::string kFile = "bad.gguf";

GgufContents parse(const std::string& image) {
  return lcllm::gguf_parse(reinterpret_cast<const std::byte*>(image.data()), image.size(), kFile);
}

std::string parse_error(const std::string& image) {
  try {
    parse(image);
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::ERROR_KIND_INVALID_FILE);
    return e.what();
  }
  FAIL("gguf_parse accepted a corrupt image");
  return "";
}

GgufBuilder valid() {
  GgufBuilder b;
  b.kv_string("general.architecture", "llama").kv_u32("llama.block_count", 2).kv_f32("llama.rope.freq_base", 1e4f);
  b.kv_strings("tokenizer.ggml.tokens", {"<s>", "a", "b"}).kv_f32s("tokenizer.ggml.scores", {0.f, -1.f, -2.f});
  b.kv_bool("tokenizer.ggml.add_bos_token", true);
  b.tensor_f32("token_embd.weight", {4, 3}).tensor_f32("output_norm.weight", {4});
  return b;
}

}  // namespace

TEST_CASE("a valid GGUF image reads back: metadata of every kind, tensors, data offsets", "[io][gguf]") {
  const std::string image = valid().build();
  const GgufContents c = parse(image);
  CHECK(c.version == 3);
  CHECK(c.metadata.at("general.architecture").s == "llama");
  CHECK(c.metadata.at("llama.block_count").i == 2);
  CHECK(c.metadata.at("llama.rope.freq_base").f == Approx(1e4));
  CHECK(c.metadata.at("tokenizer.ggml.tokens").strings == std::vector<std::string>{"<s>", "a", "b"});
  CHECK(c.metadata.at("tokenizer.ggml.scores").floats == std::vector<double>{0.0, -1.0, -2.0});
  CHECK(c.metadata.at("tokenizer.ggml.add_bos_token").i == 1);
  REQUIRE(c.tensors.size() == 2);
  CHECK(c.tensors[0].name == "token_embd.weight");
  CHECK(c.tensors[0].ne == std::vector<int64_t>{4, 3});
  CHECK(c.tensors[0].nbytes == 48);
  CHECK(c.data_offset % 32 == 0);
  float v = 0;
  std::memcpy(&v, c.tensors[0].data + 4 * 7, 4);
  CHECK(v == 7.f);
  std::memcpy(&v, c.tensors[1].data + 4 * 3, 4);
  CHECK(v == 3.f);
}

TEST_CASE("GgufFile maps a file, finds keys and tensors, and names missing keys", "[io][gguf]") {
  const auto dir = std::filesystem::temp_directory_path() / "lcllm_test_gguf";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "m.gguf").string();
  std::ofstream(path, std::ios::binary) << valid().build();
  CHECK(lcllm::gguf_is_file(path));
  auto f = lcllm::GgufFile::open(path);
  CHECK(f->require_int("llama.block_count") == 2);
  CHECK(f->require_string("general.architecture") == "llama");
  CHECK(f->require_float("llama.block_count") == 2.0);
  REQUIRE(f->tensor("output_norm.weight") != nullptr);
  CHECK(f->tensor("nope") == nullptr);
  CHECK_THROWS_WITH(f->require_int("llama.context_length"),
                    Catch::Contains("m.gguf") && Catch::Contains("'llama.context_length' is missing"));
  CHECK_THROWS_WITH(f->require_int("general.architecture"), Catch::Contains("must be an integer, got string"));
  std::ofstream(dir / "not.gguf") << "hello";
  CHECK_FALSE(lcllm::gguf_is_file((dir / "not.gguf").string()));
  CHECK_THROWS_WITH(lcllm::GgufFile::open((dir / "missing.gguf").string()), Catch::Contains("cannot open"));
  CHECK_THROWS_WITH(lcllm::GgufFile::open(dir.string()), Catch::Contains("not a regular file"));
}

TEST_CASE("corrupt GGUF files are refused with the rule they break", "[io][gguf]") {
  struct Case {
    const char* name;
    std::string image;
    const char* message;
  };
  std::vector<Case> cases;
  auto with = [](auto change) {
    GgufBuilder b = valid();
    change(b);
    return b.build();
  };
  const std::string good = valid().build();
  cases.push_back({"empty file", "", "too short"});
  cases.push_back({"wrong magic", with([](GgufBuilder& b) { b.magic = 0x12345678; }), "GGUF magic"});
  cases.push_back({"version 1", with([](GgufBuilder& b) { b.version = 1; }), "version 1 is not supported"});
  cases.push_back({"byte-swapped version", with([](GgufBuilder& b) { b.version = 0x03000000; }), "big-endian"});
  cases.push_back({"truncated header", good.substr(0, 12), "truncated"});
  cases.push_back({"tensor count beyond the file", with([](GgufBuilder& b) { b.n_tensors_override = int64_t(1) << 40; }),
                   "tensor count"});
  cases.push_back({"metadata count beyond the file", with([](GgufBuilder& b) { b.n_kv_override = int64_t(1) << 40; }),
                   "metadata count"});
  cases.push_back({"metadata count larger than the entries", with([](GgufBuilder& b) { b.n_kv_override = int64_t(b.n_kv) + 1; }),
                   ""});
  {
    GgufBuilder b;
    std::string kv;
    GgufBuilder::put<uint64_t>(kv, uint64_t(1) << 50);  // key length far beyond the file
    kv.append(100, '\0');
    b.kv_bytes = kv;
    b.n_kv = 1;
    cases.push_back({"key length beyond the file", b.build(), "beyond the end of the file"});
  }
  {
    GgufBuilder b;
    std::string kv;
    GgufBuilder::put_string(kv, "k");
    GgufBuilder::put<uint32_t>(kv, 8);
    GgufBuilder::put<uint64_t>(kv, uint64_t(1) << 40);  // string value beyond the file
    b.kv_bytes = kv;
    b.n_kv = 1;
    cases.push_back({"string value beyond the file", b.build(), "beyond the end of the file"});
  }
  {
    GgufBuilder b;
    std::string kv;
    GgufBuilder::put_string(kv, "k");
    GgufBuilder::put<uint32_t>(kv, 9);
    GgufBuilder::put<uint32_t>(kv, 6);
    GgufBuilder::put<uint64_t>(kv, uint64_t(1) << 61);  // array of 2^61 floats
    b.kv_bytes = kv;
    b.n_kv = 1;
    cases.push_back({"array count beyond the file", b.build(), "array length"});
  }
  cases.push_back({"unknown metadata type", with([](GgufBuilder& b) { const uint8_t x = 1; b.raw_kv("k", 13, &x, 1); }),
                   "unknown value type 13"});
  cases.push_back({"unknown array element type",
                   with([](GgufBuilder& b) {
                     std::string v;
                     GgufBuilder::put<uint32_t>(v, 77);
                     GgufBuilder::put<uint64_t>(v, 0);
                     b.raw_kv("arr", 9, v.data(), v.size());
                   }),
                   "array of unknown type 77"});
  cases.push_back({"arrays nested too deep",
                   with([](GgufBuilder& b) {
                     std::string v;
                     for (int d = 0; d < 6; ++d) {
                       GgufBuilder::put<uint32_t>(v, 9);
                       GgufBuilder::put<uint64_t>(v, 1);
                     }
                     GgufBuilder::put<uint32_t>(v, 4);
                     GgufBuilder::put<uint64_t>(v, 0);
                     b.raw_kv("deep", 9, v.data(), v.size());
                   }),
                   "nests arrays deeper"});
  cases.push_back({"bool that is 2", with([](GgufBuilder& b) { const uint8_t x = 2; b.raw_kv("flag", 7, &x, 1); }),
                   "neither 0 nor 1"});
  cases.push_back({"string value not UTF-8", with([](GgufBuilder& b) { b.kv_string("bad", "\xff\xfe"); }), "not UTF-8"});
  cases.push_back({"empty key", with([](GgufBuilder& b) { b.kv_u32("", 1); }), "empty or not UTF-8"});
  cases.push_back({"duplicate key", with([](GgufBuilder& b) { b.kv_u32("llama.block_count", 3); }),
                   "duplicate metadata key 'llama.block_count'"});
  cases.push_back({"alignment not a power of two", with([](GgufBuilder& b) { b.kv_u32("general.alignment", 24); }),
                   "general.alignment must be a power of two"});
  cases.push_back({"alignment zero", with([](GgufBuilder& b) { b.kv_u32("general.alignment", 0); }),
                   "general.alignment"});
  cases.push_back({"alignment a string", with([](GgufBuilder& b) { b.kv_string("general.alignment", "32"); }),
                   "general.alignment"});
  cases.push_back({"duplicate tensor name", with([](GgufBuilder& b) { b.tensor_f32("token_embd.weight", {2}); }),
                   "duplicate tensor name 'token_embd.weight'"});
  cases.push_back({"empty tensor name", with([](GgufBuilder& b) { b.tensor_f32("", {2}); }), "empty or non-UTF-8 name"});
  cases.push_back({"zero dimensions", with([](GgufBuilder& b) { b.tensor_f32("z", {}); }), "has 0 dimensions"});
  cases.push_back({"five dimensions", with([](GgufBuilder& b) { b.tensor_f32("five", {1, 1, 1, 1, 1}); }),
                   "has 5 dimensions"});
  cases.push_back({"a zero dimension",
                   with([](GgufBuilder& b) {
                     b.tensor_f32("zd", {2});
                     b.tensors.back().ne = {2, 0};
                   }),
                   "dimension 1 = 0"});
  cases.push_back({"element count overflow",
                   with([](GgufBuilder& b) {
                     b.tensor_f32("big", {2});
                     b.tensors.back().ne = {uint64_t(1) << 40, uint64_t(1) << 40};
                   }),
                   "overflows 64 bits"});
  cases.push_back({"byte size overflow",
                   with([](GgufBuilder& b) {
                     b.tensor_f32("big", {2});
                     b.tensors.back().ne = {uint64_t(1) << 32, uint64_t(1) << 31};  // 2^63 floats: 2^65 bytes
                   }),
                   "overflows 64 bits"});
  cases.push_back({"unknown ggml type",
                   with([](GgufBuilder& b) {
                     b.tensor_f32("t", {2});
                     b.tensors.back().type = 4242;
                   }),
                   "unknown ggml type 4242"});
  cases.push_back({"row not a multiple of the block",
                   with([](GgufBuilder& b) {
                     b.tensor_f32("q", {2});
                     b.tensors.back().type = 8;  // Q8_0: blocks of 32
                     b.tensors.back().ne = {48, 2};
                     b.tensors.back().data.assign(34 * 4, '\0');
                   }),
                   "not a multiple of Q8_0's block of 32"});
  cases.push_back({"misaligned offset",
                   with([](GgufBuilder& b) {
                     b.tensor_f32("m", {2});
                     b.tensors.back().offset = 100;
                   }),
                   "not a multiple of the alignment 32"});
  cases.push_back({"tensor past the end of the file",
                   with([](GgufBuilder& b) {
                     b.tensor_f32("far", {2});
                     b.tensors.back().offset = int64_t(1) << 40;
                     b.tensors.back().data.clear();
                   }),
                   "past the end of the file"});
  cases.push_back({"overlapping tensors",
                   with([](GgufBuilder& b) {
                     b.tensor_f32("over", {8});
                     b.tensors.back().offset = 32;  // inside token_embd.weight's 48 bytes at 0
                   }),
                   "overlaps"});
  cases.push_back({"truncated data", good.substr(0, good.size() - 4), "past the end of the file"});
  cases.push_back({"truncated tensor infos", good.substr(0, good.size() - 100), ""});

  REQUIRE(cases.size() >= 25);
  for (const Case& c : cases) {
    INFO(c.name);
    const std::string msg = parse_error(c.image);
    CHECK_THAT(msg, Catch::Contains("'" + kFile + "'"));
    CHECK_THAT(msg, Catch::Contains(c.message));
  }
}
