// Random weights for `lcllm bench` on a bare config.json, and positions appended without compute.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "models/model_family.h"
#include "runtime/engine.h"
#include "runtime/model_weights.h"
#include "runtime/synthetic_weights.h"

using namespace lcllm;

TEST_CASE("random weights bind every tensor a config implies and run a forward pass", "[synthetic]") {
  EngineOptions o;
  o.model_path = std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/parity/qwen2/config.json";  // biases included
  o.device = "cpu";
  o.random_weights = true;
  o.context_tokens = 256;
  auto e = Engine::load(o);
  CHECK(e->weight_bytes() == size_t(model_parameter_count(e->config())) * 2);  // bf16, every parameter bound once

  const int32_t seq = e->create_sequence();
  e->extend_uncomputed(seq, 100);
  CHECK(e->kv_cache().length(seq) == 100);
  const int32_t token = 5;
  const std::vector<float> logits =
      e->feed(seq, std::span<const int32_t>(&token, 1), false, 0, AttentionPhase::ATTENTION_PHASE_DECODE);
  REQUIRE(logits.size() == size_t(e->config().vocab_size));
  for (float x : logits) REQUIRE(std::isfinite(x));
  CHECK(e->kv_cache().length(seq) == 101);
  CHECK_THROWS_AS(e->extend_uncomputed(seq, 1000), Error);  // beyond the cache: refused, sequence untouched
  CHECK(e->kv_cache().length(seq) == 101);
}

TEST_CASE("random weights: matrices are noise with std 0.02, norms 1, biases 0", "[synthetic]") {
  const ModelConfig c = model_config_load(std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/parity/qwen2/config.json");
  const Checkpoint ck = synthetic_checkpoint(c, 7, "qwen2");
  const TensorView& q = ck.require("model.layers.0.self_attn.q_proj.weight");
  double sum = 0, sq = 0;
  const size_t n = size_t(q.numel());
  for (size_t i = 0; i < n; ++i) sum += q.at(i), sq += double(q.at(i)) * q.at(i);
  CHECK(std::abs(sum / double(n)) < 2e-3);
  CHECK(std::sqrt(sq / double(n)) == Approx(0.02).epsilon(0.05));
  CHECK(ck.require("model.norm.weight").at(0) == 1.0f);
  CHECK(ck.require("model.layers.0.self_attn.q_proj.bias").at(3) == 0.0f);
}
