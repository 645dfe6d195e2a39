// Parity with Hugging Face transformers: every fixture under tests/fixtures/parity/ (made by
// tools/make_parity_fixtures.py) holds a tiny random model, a prompt, transformers' fp32 logits at every
// position and its greedy continuation. The CPU reference forward must match them.
#include <cmath>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "runtime/engine.h"

namespace fs = std::filesystem;
using namespace lcllm;

namespace {

struct Fixture {
  std::string dir;
  std::string name;
  std::vector<int32_t> prompt;
  std::vector<int32_t> greedy;
  int64_t vocab = 0;
  std::vector<float> logits;  // [prompt + greedy, vocab]
};

std::vector<std::string> fixture_dirs() {
  std::vector<std::string> dirs;
  const fs::path root = fs::path(LCLLM_SOURCE_DIR) / "tests/fixtures/parity";
  for (const auto& e : fs::directory_iterator(root)) {
    if (e.is_directory() && fs::exists(e.path() / "reference.json")) dirs.push_back(e.path().string());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

Fixture load_fixture(const std::string& dir) {
  Fixture f;
  f.dir = dir;
  std::ifstream in(dir + "/reference.json");
  const auto j = nlohmann::json::parse(in);
  f.name = j.at("name").get<std::string>();
  f.prompt = j.at("prompt_ids").get<std::vector<int32_t>>();
  f.greedy = j.at("greedy_ids").get<std::vector<int32_t>>();
  f.vocab = j.at("vocab_size").get<int64_t>();
  auto file = SafetensorsFile::open(dir + "/logits.safetensors");
  const TensorView* t = file->find("logits");
  REQUIRE(t != nullptr);
  REQUIRE(t->shape == std::vector<int64_t>{int64_t(f.prompt.size() + f.greedy.size()), f.vocab});
  f.logits.resize(size_t(t->numel()));
  for (size_t i = 0; i < f.logits.size(); ++i) f.logits[i] = t->at(i);
  return f;
}

std::unique_ptr<Engine> load_engine(const Fixture& f) {
  EngineOptions o;
  o.model_path = f.dir;
  o.threads = 2;
  o.context_tokens = 512;
  o.max_step_tokens = 160;
  return Engine::load(o);
}

double relative_error(const float* got, const float* ref, int64_t n) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < n; ++i) {
    diff += double(got[i] - ref[i]) * double(got[i] - ref[i]);
    norm += double(ref[i]) * double(ref[i]);
  }
  return std::sqrt(diff / std::max(norm, 1e-30));
}

}  // namespace

TEST_CASE("parity fixtures exist (at least 8 configurations)", "[parity]") {
  REQUIRE(fixture_dirs().size() >= 8);
}

TEST_CASE("CPU forward matches transformers fp32 logits at every position", "[parity]") {
  for (const auto& dir : fixture_dirs()) {
    const Fixture f = load_fixture(dir);
    auto engine = load_engine(f);
    std::vector<int32_t> all = f.prompt;
    all.insert(all.end(), f.greedy.begin(), f.greedy.end());
    const int32_t seq = engine->create_sequence();
    const std::vector<float> logits = engine->feed(seq, all, true);
    double worst = 0;
    for (size_t p = 0; p < all.size(); ++p) {
      const double err = relative_error(logits.data() + p * size_t(f.vocab), f.logits.data() + p * size_t(f.vocab), f.vocab);
      worst = std::max(worst, err);
    }
    INFO(f.name << ": worst relative error " << worst);
    WARN(f.name << ": worst relative error over " << all.size() << " positions = " << worst);
    CHECK(worst <= 1e-4);
  }
}

TEST_CASE("greedy generation reproduces transformers' greedy continuation", "[parity]") {
  for (const auto& dir : fixture_dirs()) {
    const Fixture f = load_fixture(dir);
    auto engine = load_engine(f);
    GenerateOptions g;
    g.max_tokens = int32_t(f.greedy.size());
    g.sampling.temperature = 0;
    g.ignore_eos = true;
    const GenerateResult r = engine->generate(f.prompt, g);
    INFO(f.name);
    CHECK(r.tokens == f.greedy);
  }
}

TEST_CASE("chunked prefill gives the same logits as one-shot prefill", "[parity]") {
  for (const auto& dir : fixture_dirs()) {
    const Fixture f = load_fixture(dir);
    auto engine = load_engine(f);
    const int32_t base_seq = engine->create_sequence();
    const std::vector<float> once = engine->feed(base_seq, f.prompt, true);
    engine->free_sequence(base_seq);
    for (int32_t chunk : {1, 7, 32}) {
      const int32_t seq = engine->create_sequence();
      const std::vector<float> chunked = engine->feed(seq, f.prompt, true, chunk);
      engine->free_sequence(seq);
      INFO(f.name << " chunk " << chunk);
      // The CPU reference computes each row independently of its batch, so chunking must not change a bit.
      CHECK(chunked == once);
    }
  }
}
