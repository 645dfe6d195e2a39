// Shared helpers for the policy tests: the parity fixtures (tiny real-format models, tests/fixtures/parity) and a
// runner that prefills a prompt and decodes a continuation under a plan.
#pragma once
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attention/attention_plan.h"
#include "models/model_family.h"
#include "runtime/engine.h"

namespace policy_test {

inline std::vector<std::string> fixture_dirs() {
  std::vector<std::string> dirs;
  const std::filesystem::path root = std::filesystem::path(LCLLM_SOURCE_DIR) / "tests/fixtures/parity";
  for (const auto& e : std::filesystem::directory_iterator(root)) {
    if (e.is_directory() && std::filesystem::exists(e.path() / "reference.json")) dirs.push_back(e.path().string());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

struct Fixture {
  std::string dir, name;
  std::vector<int32_t> prompt, continuation;  // continuation: transformers' greedy tokens
};

inline Fixture load_fixture(const std::string& dir) {
  std::ifstream in(dir + "/reference.json");
  const auto j = nlohmann::json::parse(in);
  return Fixture{dir, j.at("name").get<std::string>(), j.at("prompt_ids").get<std::vector<int32_t>>(),
                 j.at("greedy_ids").get<std::vector<int32_t>>()};
}

inline std::unique_ptr<lcllm::Engine> load_engine(const std::string& dir, const lcllm::AttentionPlan& plan) {
  lcllm::EngineOptions o;
  o.model_path = dir;
  o.threads = 2;
  o.context_tokens = 512;
  o.max_step_tokens = 160;
  o.plan = plan;
  return lcllm::Engine::load(o);
}

// Logits of every prompt position (prefill, in chunks of `chunk`) followed by one row per continuation token,
// each fed as its own DECODE step: [prompt + continuation, vocab].
inline std::vector<float> run_prefill_decode(lcllm::Engine& e, const Fixture& f, int32_t chunk = 0) {
  const int32_t seq = e.create_sequence();
  std::vector<float> logits = e.feed(seq, f.prompt, true, chunk);
  for (int32_t tok : f.continuation) {
    const std::vector<float> row =
        e.feed(seq, std::span<const int32_t>(&tok, 1), false, 0, lcllm::AttentionPhase::ATTENTION_PHASE_DECODE);
    logits.insert(logits.end(), row.begin(), row.end());
  }
  e.free_sequence(seq);
  return logits;
}

// sqrt(sum (a-b)^2 / sum b^2) over one row of n values.
inline double relative_error(const float* got, const float* ref, int64_t n) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < n; ++i) {
    diff += double(got[i] - ref[i]) * double(got[i] - ref[i]);
    norm += double(ref[i]) * double(ref[i]);
  }
  return std::sqrt(diff / std::max(norm, 1e-30));
}

// Worst per-row relative error over rows [begin, end).
inline double worst_row_error(const std::vector<float>& got, const std::vector<float>& ref, int64_t vocab,
                              size_t begin, size_t end) {
  double worst = 0;
  for (size_t r = begin; r < end; ++r) {
    worst = std::max(worst, relative_error(got.data() + r * size_t(vocab), ref.data() + r * size_t(vocab), vocab));
  }
  return worst;
}

}  // namespace policy_test
