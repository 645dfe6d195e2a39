// config.json -> ModelConfig for every family, on real published configs (configs/models/) and on
// hand-made broken ones.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "backend/rope_freq.h"
#include "lcllm/error.h"
#include "models/model_family.h"
#include "runtime/model_weights.h"

using namespace lcllm;
using Catch::Matchers::Contains;

namespace {
ModelConfig load_real(const std::string& name) {
  return model_config_load(std::string(LCLLM_SOURCE_DIR) + "/configs/models/" + name + ".json");
}
ModelConfig from(const std::string& text) { return model_config_from_json(nlohmann::json::parse(text), "test.json"); }
const char* kTinyLlama = R"({"model_type": "llama", "vocab_size": 100, "hidden_size": 64, "intermediate_size": 128,
  "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2)";
}  // namespace

TEST_CASE("real configs resolve to the published parameter counts", "[models]") {
  // Published sizes: Llama-3.1-8B 8.03B, Llama-3.2-1B 1.24B, Qwen2.5-7B 7.62B, Gemma-2-9B 9.24B, Qwen3-8B 8.19B.
  CHECK(model_parameter_count(load_real("llama-3.1-8b")) == 8030261248);
  CHECK(model_parameter_count(load_real("llama-3.2-1b")) == 1235814400);
  CHECK(model_parameter_count(load_real("qwen2.5-7b")) == 7615616512);
  CHECK(model_parameter_count(load_real("gemma-2-9b")) == 9241705984);
  CHECK(model_parameter_count(load_real("qwen3-8b")) == 8190735360);
}

TEST_CASE("Llama 3.1: GQA, llama3 rope scaling, untied", "[models]") {
  const ModelConfig c = load_real("llama-3.1-8b");
  CHECK(c.n_kv_heads == 8);
  CHECK(c.head_dim == 128);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.eos_token_ids == std::vector<int32_t>{128001, 128008, 128009});
  REQUIRE(c.layers.size() == 32);
  CHECK(c.layers[0].rope.type == RopeType::ROPE_TYPE_LLAMA3);
  CHECK(c.layers[0].rope.theta == 500000.0);
  CHECK(c.layers[0].sliding_window == 0);
  // llama3 scaling keeps high frequencies and divides the lowest ones by `factor`.
  const auto inv = rope_inv_freq(c.layers[0].rope, c.head_dim);
  RopeConfig plain = c.layers[0].rope;
  plain.type = RopeType::ROPE_TYPE_DEFAULT;
  const auto base = rope_inv_freq(plain, c.head_dim);
  CHECK(inv[0] == base[0]);
  CHECK(inv.back() == Approx(base.back() / 8.0).epsilon(1e-6));
  int changed_smoothly = 0;
  for (size_t i = 0; i < inv.size(); ++i) changed_smoothly += inv[i] < base[i] && inv[i] > base[i] / 8.0 * 1.0001;
  CHECK(changed_smoothly > 0);
}

TEST_CASE("Llama 3.2: tied embeddings, explicit head_dim", "[models]") {
  const ModelConfig c = load_real("llama-3.2-1b");
  CHECK(c.tie_word_embeddings);
  CHECK(c.head_dim == 64);
  CHECK(c.layers[3].rope.factor == 32.0);
}

TEST_CASE("Qwen2: qkv bias without o bias, sliding window ignored unless enabled", "[models]") {
  const ModelConfig c = load_real("qwen2.5-7b");
  CHECK(c.attn_qkv_bias);
  CHECK_FALSE(c.attn_o_bias);
  for (const auto& l : c.layers) CHECK(l.sliding_window == 0);
  auto j = nlohmann::json::parse(std::string(kTinyLlama) + "}");
  j["model_type"] = "qwen2";
  j["use_sliding_window"] = true;
  j["sliding_window"] = 32;
  j["max_window_layers"] = 1;
  const ModelConfig s = model_config_from_json(j, "q.json");
  CHECK(s.layers[0].sliding_window == 0);
  CHECK(s.layers[1].sliding_window == 32);
}

TEST_CASE("Qwen3: qk-norm, no biases", "[models]") {
  const ModelConfig c = load_real("qwen3-8b");
  CHECK(c.qk_norm);
  CHECK_FALSE(c.attn_qkv_bias);
  CHECK(c.layers[0].rope.theta == 1e6);
}

TEST_CASE("Gemma 2: softcaps, sandwich norms, even layers slide, query_pre_attn_scalar", "[models]") {
  const ModelConfig c = load_real("gemma-2-9b");
  CHECK(c.norm_one_plus);
  CHECK(c.activation == Activation::ACTIVATION_GELU_TANH);
  CHECK(c.attn_logit_softcap == 50.0f);
  CHECK(c.final_logit_softcap == 30.0f);
  CHECK(c.post_attn_norm);
  CHECK(c.ffn_sandwich_norm);
  CHECK(c.tie_word_embeddings);
  CHECK(c.embedding_scale == Approx(std::sqrt(3584.0)));
  CHECK(c.query_scale == Approx(1.0 / 16.0));
  CHECK(c.layers[0].sliding_window == 4096);
  CHECK(c.layers[1].sliding_window == 0);
  CHECK(c.layers[40].sliding_window == 4096);
}

TEST_CASE("Gemma 3 (legacy keys): 5 local : 1 global, local rope base, linear scaling on global only", "[models]") {
  const ModelConfig c = load_real("gemma-3-4b-text");
  CHECK(c.qk_norm);
  CHECK(c.attn_logit_softcap == 0.0f);
  for (int32_t l = 0; l < c.n_layers; ++l) {
    const bool global = (l + 1) % 6 == 0;
    INFO("layer " << l);
    CHECK(c.layers[size_t(l)].sliding_window == (global ? 0 : 1024));
    CHECK(c.layers[size_t(l)].rope.theta == (global ? 1e6 : 1e4));
    CHECK(c.layers[size_t(l)].rope.type == (global ? RopeType::ROPE_TYPE_LINEAR : RopeType::ROPE_TYPE_DEFAULT));
  }
}

TEST_CASE("Gemma 3 (transformers 5 keys): rope_parameters keyed by layer type and layer_types", "[models]") {
  auto j = nlohmann::json::parse(std::string(kTinyLlama) + "}");
  j["model_type"] = "gemma3_text";
  j["head_dim"] = 16;
  j["sliding_window"] = 8;
  j["layer_types"] = {"sliding_attention", "full_attention"};
  j["rope_parameters"] = {{"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}},
                          {"full_attention", {{"rope_type", "linear"}, {"factor", 8.0}, {"rope_theta", 1e6}}}};
  const ModelConfig c = model_config_from_json(j, "g3.json");
  CHECK(c.layers[0].sliding_window == 8);
  CHECK(c.layers[0].rope.theta == 1e4);
  CHECK(c.layers[1].rope.type == RopeType::ROPE_TYPE_LINEAR);
  CHECK(c.layers[1].rope.factor == 8.0);
}

TEST_CASE("unsupported model_type gives one clear error naming it and the supported ones", "[models][errors]") {
  REQUIRE_THROWS_WITH(from(R"({"model_type": "mamba"})"),
                      Contains("unsupported model_type 'mamba'") && Contains("llama") && Contains("qwen3"));
  REQUIRE_THROWS_WITH(from(R"({"vocab_size": 3})"), Contains("unsupported model_type ''"));
  REQUIRE_THROWS_WITH(from("[1, 2]"), Contains("must be a JSON object"));
}

TEST_CASE("every problem of a config is listed at once", "[models][errors]") {
  try {
    from(R"({"model_type": "llama", "vocab_size": -1, "hidden_size": "big", "intermediate_size": 8,
             "num_hidden_layers": 2, "num_attention_heads": 3, "num_key_value_heads": 2})");
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string m = e.what();
    CHECK_THAT(m, Contains("vocab_size") && Contains("hidden_size") && Contains("num_key_value_heads"));
    CHECK_THAT(m, Contains("3 problems"));
  }
}

TEST_CASE("unsupported field values are named", "[models][errors]") {
  const std::string base = kTinyLlama;
  REQUIRE_THROWS_WITH(from(base + R"(, "rope_scaling": {"rope_type": "yarn", "factor": 4}})"),
                      Contains("unsupported rope type 'yarn'"));
  REQUIRE_THROWS_WITH(from(base + R"(, "hidden_act": "relu2"})"), Contains("unsupported activation 'relu2'"));
  // A context length no int64 holds (found by fuzz_config: the cast was undefined) or not a whole number.
  for (const char* bad : {"1e300", "-5", "1000.5"}) {
    REQUIRE_THROWS_WITH(from(base + R"(, "rope_scaling": {"rope_type": "llama3", "factor": 8,
                                       "original_max_position_embeddings": )" + bad + "}}"),
                        Contains("original_max_position_embeddings must be a positive whole number"));
  }
  REQUIRE_THROWS_WITH(from(base + R"(, "layer_types": ["full_attention"]})"), Contains("layer_types must be an array of 2"));
  REQUIRE_THROWS_WITH(from(base + R"(, "layer_types": ["sliding_attention", "full_attention"]})"),
                      Contains("sliding_window in [1, 2^31)"));
  REQUIRE_THROWS_WITH(from(base + R"(, "layer_types": ["chunked_attention", "full_attention"]})"),
                      Contains("'chunked_attention'"));
  REQUIRE_THROWS_WITH(from(base + R"(, "rms_norm_eps": 0})"), Contains("rms_norm_eps"));
  REQUIRE_THROWS_WITH(from(base + R"(, "tie_word_embeddings": "yes"})"), Contains("tie_word_embeddings"));
}

TEST_CASE("model_config_load: missing directory and invalid JSON", "[models][errors]") {
  REQUIRE_THROWS_WITH(model_config_load("/nonexistent/model"), Contains("config.json"));
  REQUIRE_THROWS_WITH(model_config_load(LCLLM_SOURCE_DIR), Contains("config.json"));
}

TEST_CASE("sizes are bounded before anything is allocated from them; windows that do not fit are errors (E12)",
          "[models][errors]") {
  const std::string llama = R"({"model_type": "llama", "vocab_size": 100, "hidden_size": 64, "intermediate_size": 128,
    "num_attention_heads": 4, "num_key_value_heads": 2)";
  REQUIRE_THROWS_WITH(from(llama + R"(, "num_hidden_layers": 100000000})"),
                      Contains("'num_hidden_layers' is 100000000; at most 1024"));
  const std::string base = kTinyLlama;
  // 4294967301 = 2^32 + 5 used to wrap to a 5-token window.
  REQUIRE_THROWS_WITH(from(base + R"(, "layer_types": ["sliding_attention", "full_attention"], "sliding_window": 4294967301})"),
                      Contains("got 4294967301"));
  REQUIRE_THROWS_WITH(from(base + R"(, "max_position_embeddings": 4294967301})"), Contains("max_position_embeddings"));
  REQUIRE_THROWS_WITH(from(base + R"(, "vocab_size": 1000000000})"), Contains("'vocab_size'"));
}
