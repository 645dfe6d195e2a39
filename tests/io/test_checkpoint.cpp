// Checkpoint: single files, model directories and sharded checkpoints resolve to one tensor map; an index that
// disagrees with its shards is refused, naming the index, the shard and the tensor.
#include <catch2/catch.hpp>

#include <filesystem>

#include "io/safetensors.h"
#include "safetensors_test_util.h"
#include "lcllm/error.h"

using lcllm::Checkpoint;
using lcllm::Error;
using lcllm::ErrorKind;
using lcllm::test::safetensors_image;
using lcllm::test::SafetensorsBuilder;
using lcllm::test::TempDir;

namespace {

const char* kIndex = "model.safetensors.index.json";

std::string shard_a() { return SafetensorsBuilder().add_f32("embed", {2, 2}, {1.f, 2.f, 3.f, 4.f}).build(); }
std::string shard_b() {
  return SafetensorsBuilder().add_bf16("layer.0.w", {3}, {0.5f, -1.f, 2.f}).add_f32("norm", {1}, {9.f}).build();
}
const char* kGoodIndex = R"({"metadata": {"total_size": 26},
  "weight_map": {"embed": "a.safetensors", "layer.0.w": "b.safetensors", "norm": "b.safetensors"}})";

// Writes shards a and b plus `index` into `dir` and returns the error Checkpoint::open(dir) throws.
Error sharded_error(const TempDir& dir, const std::string& index) {
  dir.write("a.safetensors", shard_a());
  dir.write("b.safetensors", shard_b());
  dir.write(kIndex, index);
  try {
    Checkpoint::open(dir.path().string());
  } catch (const Error& e) {
    return e;
  }
  FAIL("Checkpoint::open accepted an inconsistent sharded checkpoint");
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("Checkpoint opens a sharded checkpoint and reads every tensor", "[io][checkpoint]") {
  TempDir dir;
  dir.write("a.safetensors", shard_a());
  dir.write("b.safetensors", shard_b());
  dir.write(kIndex, kGoodIndex);

  for (const std::string& path : {dir.path().string(), (dir.path() / kIndex).string()}) {
    const Checkpoint ckpt = Checkpoint::open(path);
    CHECK(ckpt.file_count() == 2);
    CHECK(ckpt.total_bytes() == 16 + 6 + 4);
    const auto all = ckpt.tensors();
    REQUIRE(all.size() == 3);
    CHECK(all[0]->name == "embed");
    CHECK(all[1]->name == "layer.0.w");
    CHECK(all[2]->name == "norm");
    CHECK(ckpt.require("embed").at(3) == 4.f);
    CHECK(ckpt.require("layer.0.w").at(1) == -1.f);
    CHECK(ckpt.require("norm").at(0) == 9.f);
    CHECK_THAT(ckpt.require("norm").file, Catch::EndsWith("b.safetensors"));
    CHECK(ckpt.find("missing") == nullptr);
  }
}

TEST_CASE("Checkpoint follows shard symlinks out of the directory, as in the Hugging Face cache",
          "[io][checkpoint]") {
  // snapshots/<rev>/a.safetensors -> ../../blobs/<hash>: links are fine, only the names in the index are checked.
  TempDir dir;
  dir.write("blobs/1111", shard_a());
  dir.write("blobs/2222", shard_b());
  const auto snap = dir.path() / "snapshots" / "rev";
  std::filesystem::create_directories(snap);
  std::filesystem::create_symlink("../../blobs/1111", snap / "a.safetensors");
  std::filesystem::create_symlink("../../blobs/2222", snap / "b.safetensors");
  dir.write("snapshots/rev/" + std::string(kIndex), kGoodIndex);
  const Checkpoint ckpt = Checkpoint::open(snap.string());
  CHECK(ckpt.file_count() == 2);
  CHECK(ckpt.require("layer.0.w").at(2) == 2.f);
}

TEST_CASE("Checkpoint prefers model.safetensors when a directory also holds an index", "[io][checkpoint]") {
  TempDir dir;
  dir.write("model.safetensors", shard_a());
  dir.write(kIndex, "not even JSON");
  const Checkpoint ckpt = Checkpoint::open(dir.path().string());
  CHECK(ckpt.tensors().size() == 1);
  CHECK(ckpt.find("embed") != nullptr);
}

TEST_CASE("Checkpoint survives being moved: views stay valid", "[io][checkpoint]") {
  TempDir dir;
  const std::string path = dir.write("w.safetensors", shard_a());
  std::vector<Checkpoint> v;
  v.push_back(Checkpoint::open(path));
  v.push_back(Checkpoint::open(path));  // reallocation moves the first
  CHECK(v[0].require("embed").at(0) == 1.f);
}

TEST_CASE("Checkpoint opens a .safetensors file and a directory holding model.safetensors", "[io][checkpoint]") {
  TempDir dir;
  const std::string file = dir.write("model.safetensors", shard_b());
  for (const std::string& path : {file, dir.path().string()}) {
    const Checkpoint ckpt = Checkpoint::open(path);
    CHECK(ckpt.file_count() == 1);
    CHECK(ckpt.tensors().size() == 2);
    CHECK(ckpt.require("norm").at(0) == 9.f);
  }
}

TEST_CASE("Checkpoint::require names the missing tensor and the checkpoint", "[io][checkpoint]") {
  TempDir dir;
  const std::string file = dir.write("model.safetensors", shard_a());
  const Checkpoint ckpt = Checkpoint::open(file);
  try {
    (void)ckpt.require("lm_head.weight");
    FAIL("require returned a missing tensor");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::ERROR_KIND_NOT_FOUND);
    CHECK_THAT(e.what(), Catch::Contains("'lm_head.weight'") && Catch::Contains(file));
  }
}

TEST_CASE("Checkpoint says what it looked for when the path holds no weights", "[io][checkpoint]") {
  TempDir dir;
  auto open_error = [](const std::string& path) {
    try {
      Checkpoint::open(path);
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::ERROR_KIND_NOT_FOUND);
      return std::string(e.what());
    }
    FAIL("Checkpoint::open accepted " << path);
    return std::string();
  };
  SECTION("missing path") {
    const std::string path = (dir.path() / "nothing").string();
    CHECK_THAT(open_error(path), Catch::Contains(path) && Catch::Contains("does not exist") &&
                                     Catch::Contains("model.safetensors.index.json"));
  }
  SECTION("directory without weights") {
    dir.write("config.json", "{}");
    CHECK_THAT(open_error(dir.path().string()),
               Catch::Contains("neither model.safetensors nor model.safetensors.index.json"));
  }
  SECTION("a file that is not a .safetensors file") {
    const std::string path = dir.write("pytorch_model.bin", "xxxxxxxxxxxx");
    CHECK_THAT(open_error(path), Catch::Contains(path) && Catch::Contains("neither a .safetensors file"));
  }
}

TEST_CASE("Checkpoint refuses a broken or inconsistent index, naming the index, shard and tensor",
          "[io][checkpoint]") {
  TempDir dir;
  SECTION("index is not JSON") {
    CHECK_THAT(sharded_error(dir, R"({"weight_map": {)").what(),
               Catch::Contains(kIndex) && Catch::Contains("not valid JSON"));
  }
  SECTION("index is not an object") {
    CHECK_THAT(sharded_error(dir, "[]").what(), Catch::Contains(kIndex) && Catch::Contains("expected an object"));
  }
  SECTION("missing weight_map") {
    CHECK_THAT(sharded_error(dir, R"({"metadata": {}})").what(),
               Catch::Contains(kIndex) && Catch::Contains("missing 'weight_map'"));
  }
  SECTION("weight_map not an object") {
    CHECK_THAT(sharded_error(dir, R"({"weight_map": ["a.safetensors"]})").what(),
               Catch::Contains("'weight_map' is a JSON array"));
  }
  SECTION("weight_map value not a string") {
    CHECK_THAT(sharded_error(dir, R"({"weight_map": {"embed": 1}})").what(),
               Catch::Contains("tensor 'embed'") && Catch::Contains("expected a shard file name"));
  }
  SECTION("the same tensor listed twice") {
    CHECK_THAT(sharded_error(dir, R"({"weight_map": {"embed": "a.safetensors", "embed": "b.safetensors"}})").what(),
               Catch::Contains("duplicate key 'embed'") && Catch::Contains("inside 'weight_map'"));
  }
  SECTION("shard file missing") {
    const Error e = sharded_error(dir, R"({"weight_map": {"embed": "a.safetensors", "norm": "c.safetensors"}})");
    CHECK(e.kind() == ErrorKind::ERROR_KIND_NOT_FOUND);
    CHECK_THAT(e.what(), Catch::Contains("shard 'c.safetensors'") && Catch::Contains("tensor 'norm'") &&
                             Catch::Contains("does not exist"));
  }
  SECTION("shard path escaping the directory") {
    CHECK_THAT(sharded_error(dir, R"({"weight_map": {"embed": "../a.safetensors"}})").what(),
               Catch::Contains("'../a.safetensors'") && Catch::Contains("tensor 'embed'") &&
                   Catch::Contains("escapes the checkpoint directory"));
    CHECK_THAT(sharded_error(dir, R"({"weight_map": {"embed": "sub/../../a.safetensors"}})").what(),
               Catch::Contains("escapes the checkpoint directory"));
  }
  SECTION("absolute shard path") {
    CHECK_THAT(sharded_error(dir, R"({"weight_map": {"embed": "/etc/passwd"}})").what(),
               Catch::Contains("'/etc/passwd'") && Catch::Contains("absolute path"));
  }
  SECTION("tensor named in the index but absent from its shard") {
    CHECK_THAT(sharded_error(dir, R"({"weight_map": {"embed": "a.safetensors", "layer.0.w": "b.safetensors",
                                      "norm": "b.safetensors", "lm_head": "b.safetensors"}})")
                   .what(),
               Catch::Contains("tensor 'lm_head'") && Catch::Contains("'b.safetensors'") &&
                   Catch::Contains("absent from that shard"));
  }
  SECTION("tensor present in a different shard than the index says") {
    CHECK_THAT(sharded_error(dir, R"({"weight_map": {"embed": "a.safetensors", "layer.0.w": "a.safetensors",
                                      "norm": "b.safetensors"}})")
                   .what(),
               Catch::Contains("tensor 'layer.0.w'") && Catch::Contains("is in shard 'b.safetensors'") &&
                   Catch::Contains("different shard, 'a.safetensors'"));
  }
  SECTION("tensor in a shard but not in the index") {
    CHECK_THAT(sharded_error(dir, R"({"weight_map": {"embed": "a.safetensors", "norm": "b.safetensors"}})").what(),
               Catch::Contains("tensor 'layer.0.w'") && Catch::Contains("not in the weight_map"));
  }
  SECTION("the same tensor in two shards") {
    dir.write("c.safetensors", SafetensorsBuilder().add_f32("norm", {1}, {7.f}).build());
    CHECK_THAT(sharded_error(dir, R"({"weight_map": {"embed": "a.safetensors", "layer.0.w": "b.safetensors",
                                      "norm": "b.safetensors", "x": "c.safetensors"}})")
                   .what(),
               Catch::Contains("tensor 'norm'") && Catch::Contains("appears in two shards") &&
                   Catch::Contains("'b.safetensors'") && Catch::Contains("'c.safetensors'"));
  }
  SECTION("a corrupt shard is reported with the shard's path") {
    dir.write("c.safetensors", safetensors_image(R"({"q":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})",
                                                 std::string(8, '\0')));
    const Error e = sharded_error(dir, R"({"weight_map": {"embed": "a.safetensors", "q": "c.safetensors"}})");
    CHECK(e.kind() == ErrorKind::ERROR_KIND_UNSUPPORTED);
    CHECK_THAT(e.what(), Catch::Contains("c.safetensors") && Catch::Contains("unsupported dtype 'I64'") &&
                             Catch::Contains("tensor 'q'"));
  }
}
