// Plan format, presets and JSON plan files: what each preset resolves to, that any plan round-trips through JSON,
// and that an invalid plan reports every problem at once (layer, field, valid values).
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "attention/attention_plan.h"
#include "attention/attention_plan_json.h"
#include "attention/attention_presets.h"
#include "lcllm/error.h"
#include "policy_test_util.h"

using namespace lcllm;

namespace {

constexpr AttentionPhase PREFILL = AttentionPhase::ATTENTION_PHASE_PREFILL;
constexpr AttentionPhase DECODE = AttentionPhase::ATTENTION_PHASE_DECODE;

ModelConfig synthetic_config(int32_t n_layers, int32_t n_kv_heads, std::vector<int32_t> windows = {}) {
  ModelConfig c;
  c.n_layers = n_layers;
  c.n_heads = n_kv_heads * 4;
  c.n_kv_heads = n_kv_heads;
  c.head_dim = 16;
  c.layers.resize(size_t(n_layers));
  for (size_t l = 0; l < windows.size() && l < c.layers.size(); ++l) c.layers[l].sliding_window = windows[l];
  return c;
}

// The single policy of a layer/phase whose groups are expected to cover all heads with one policy.
const HeadGroupPolicy& only(const AttentionPlan& p, int32_t layer, AttentionPhase ph) {
  const auto& g = p.layers[size_t(layer)].phase(ph);
  REQUIRE(g.size() == 1);
  return g[0];
}

std::string error_of(const std::function<void()>& f, ErrorKind* kind = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (kind) *kind = e.kind();
    return e.what();
  }
  return "";
}

AttentionPlan from_json_text(const std::string& text, const ModelConfig& c) {
  return attention_plan_from_json(nlohmann::json::parse(text), c, "test.json");
}

}  // namespace

TEST_CASE("tidal preset: dense prefill; decode FULL, FULL, SELECT, SPARSE... re-SELECT at n/2, SPARSE from it",
          "[attention][plan]") {
  const ModelConfig c = synthetic_config(32, 8);
  const AttentionPlan p = attention_plan_resolve("tidal", c);
  CHECK(p.name == "tidal");
  for (int32_t l = 0; l < 32; ++l) {
    INFO("layer " << l);
    CHECK(only(p, l, PREFILL).policy == AttentionPolicy::ATTENTION_POLICY_FULL);
    const HeadGroupPolicy& d = only(p, l, DECODE);
    if (l < 2) {
      CHECK(d.policy == AttentionPolicy::ATTENTION_POLICY_FULL);
    } else if (l == 2 || l == 16) {
      CHECK(d.policy == AttentionPolicy::ATTENTION_POLICY_SELECT);
      CHECK(d.k == 2048);
    } else {
      CHECK(d.policy == AttentionPolicy::ATTENTION_POLICY_SPARSE);
      CHECK(d.from == (l < 16 ? 2 : 16));
      CHECK(d.sink == 0);
      CHECK(d.recent == 0);
    }
  }
}

TEST_CASE("tidal preset parameters: k, reselect_layer (calibrated), none; sliding layers stay FULL", "[attention][plan]") {
  const ModelConfig c = synthetic_config(32, 8);
  const AttentionPlan p = attention_preset_resolve("tidal", {{"k", 64}, {"reselect_layer", 13}}, c);
  CHECK(only(p, 13, DECODE).policy == AttentionPolicy::ATTENTION_POLICY_SELECT);
  CHECK(only(p, 13, DECODE).k == 64);
  CHECK(only(p, 12, DECODE).from == 2);
  CHECK(only(p, 16, DECODE).from == 13);
  const AttentionPlan none = attention_preset_resolve("tidal", {{"reselect_layer", -1}}, c);
  CHECK(only(none, 31, DECODE).from == 2);

  // Gemma-style local/global: layers 0,1,3,4 local (window 8); 2 and 5 global.
  const ModelConfig g = synthetic_config(6, 2, {8, 8, 0, 8, 8, 0});
  const AttentionPlan pg = attention_plan_resolve("tidal", g);
  CHECK(only(pg, 2, DECODE).policy == AttentionPolicy::ATTENTION_POLICY_SELECT);
  CHECK(only(pg, 3, DECODE).policy == AttentionPolicy::ATTENTION_POLICY_FULL);
  // The first global layer >= 6/2 is the last layer: nothing would use a re-selection there, so it reuses layer 2.
  CHECK(only(pg, 5, DECODE).policy == AttentionPolicy::ATTENTION_POLICY_SPARSE);
  CHECK(only(pg, 5, DECODE).from == 2);
  const AttentionPlan two = attention_preset_resolve("tidal", {{"select_layer", 0}}, synthetic_config(2, 2));
  CHECK(only(two, 0, DECODE).policy == AttentionPolicy::ATTENTION_POLICY_SELECT);
  CHECK(only(two, 1, DECODE).from == 0);

  // Two layers: nothing to select at; the plan is FULL.
  CHECK(attention_plan_is_full(attention_plan_resolve("tidal", synthetic_config(2, 2))));
}

TEST_CASE("streaming preset: STREAM{64, 256} on every layer, head and phase", "[attention][plan]") {
  const AttentionPlan p = attention_plan_resolve("streaming", synthetic_config(4, 2));
  for (int32_t l = 0; l < 4; ++l) {
    for (auto ph : {PREFILL, DECODE}) {
      CHECK(only(p, l, ph).policy == AttentionPolicy::ATTENTION_POLICY_STREAM);
      CHECK(only(p, l, ph).sink == 64);
      CHECK(only(p, l, ph).recent == 256);
    }
  }
}

TEST_CASE("streaming and retrieval leave sliding-window layers FULL within their window (Gemma 3 local layers)",
          "[attention][plan]") {
  const ModelConfig c = synthetic_config(6, 2, {512, 512, 0, 512, 512, 0});
  const AttentionPlan s = attention_plan_resolve("streaming", c);
  RetrievalParams rp;
  rp.scores.assign(6 * 2, 0.0);  // every head below the threshold: streaming wherever allowed
  rp.scores[2 * 2 + 1] = 0.9;    // layer 2 head 1: a retrieval head
  const AttentionPlan r = attention_preset_retrieval(c, rp);
  for (int32_t l = 0; l < 6; ++l) {
    INFO("layer " << l);
    const bool local = c.layers[size_t(l)].sliding_window > 0;
    for (auto ph : {PREFILL, DECODE}) {
      CHECK(only(s, l, ph).policy ==
            (local ? AttentionPolicy::ATTENTION_POLICY_FULL : AttentionPolicy::ATTENTION_POLICY_STREAM));
      const auto& groups = r.layers[size_t(l)].phase(ph);
      if (local) {
        REQUIRE(groups.size() == 1);
        CHECK(groups[0].policy == AttentionPolicy::ATTENTION_POLICY_FULL);
      } else {
        // Heads with equal policies merge into one group; layer 2's head 1 is a retrieval head.
        REQUIRE(groups.size() == (l == 2 ? 2u : 1u));
        CHECK(groups[0].policy == AttentionPolicy::ATTENTION_POLICY_STREAM);
        if (l == 2) CHECK(groups[1].policy == AttentionPolicy::ATTENTION_POLICY_FULL);
      }
    }
  }
}

TEST_CASE("unknown presets list the known ones; every preset resolves without calibration data",
          "[attention][plan]") {
  const ModelConfig c = synthetic_config(4, 2);
  ErrorKind kind{};
  std::string msg = error_of([&] { attention_plan_resolve("tidall", c); }, &kind);
  CHECK(kind == ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
  CHECK_THAT(msg, Catch::Contains("full, streaming, tidal, hylra, retrieval, hip"));
  for (const char* name : {"hylra", "retrieval", "hip"}) {
    for (int32_t layers : {1, 2, 5, 32}) {
      INFO(name << " on " << layers << " layers");
      CHECK(attention_plan_resolve(name, synthetic_config(layers, 2)).layers.size() == size_t(layers));
    }
  }
  msg = error_of([&] { attention_plan_resolve("no/such/plan.json", c); }, &kind);
  CHECK(kind == ErrorKind::ERROR_KIND_NOT_FOUND);
}

TEST_CASE("plans round-trip through JSON: presets, per-head groups, HIP parameters, SPARSE chains", "[attention][plan]") {
  const ModelConfig c = synthetic_config(6, 4);
  std::vector<AttentionPlan> plans = {attention_plan_resolve("full", c), attention_plan_resolve("streaming", c),
                                      attention_plan_resolve("tidal", c)};
  AttentionPlan mixed = attention_plan_full(c, "mixed");
  HeadGroupPolicy sel;
  sel.policy = AttentionPolicy::ATTENTION_POLICY_SELECT;
  sel.k = 17;
  HeadGroupPolicy sp;
  sp.policy = AttentionPolicy::ATTENTION_POLICY_SPARSE;
  sp.from = 1;
  sp.sink = 3;
  sp.recent = 5;
  HeadGroupPolicy chain = sp;
  chain.from = 2;
  chain.sink = chain.recent = 0;
  HeadGroupPolicy stream;
  stream.policy = AttentionPolicy::ATTENTION_POLICY_STREAM;
  stream.sink = 4;
  stream.recent = 9;
  HeadGroupPolicy hip;
  hip.policy = AttentionPolicy::ATTENTION_POLICY_HIP;
  hip.hip.k = 256;
  hip.hip.refresh_every = 3;
  attention_plan_set(mixed, 1, DECODE, 0, 4, sel);
  attention_plan_set(mixed, 1, PREFILL, 2, 4, sel);
  attention_plan_set(mixed, 2, DECODE, 0, 2, sp);
  attention_plan_set(mixed, 2, DECODE, 2, 4, stream);
  attention_plan_set(mixed, 3, DECODE, 0, 2, chain);  // layer 3 reuses what layer 2 reused from layer 1
  attention_plan_set(mixed, 4, PREFILL, 0, 4, hip);
  attention_plan_set(mixed, 5, PREFILL, 3, 4, sp);
  REQUIRE(attention_plan_problems(mixed, c).empty());
  plans.push_back(mixed);
  for (const auto& p : plans) {
    INFO(p.name);
    const nlohmann::ordered_json j = attention_plan_to_json(p);
    const AttentionPlan back = attention_plan_from_json(nlohmann::json::parse(j.dump()), c, "round-trip");
    CHECK(back == p);
    CHECK(attention_plan_to_json(back).dump() == j.dump());
  }
}

TEST_CASE("compact JSON: preset + params + overrides by range, list, phase and head group", "[attention][plan]") {
  const ModelConfig c = synthetic_config(8, 4);
  const AttentionPlan p = from_json_text(R"({
    "name": "custom", "preset": "tidal", "params": {"k": 32},
    "layers": [
      {"layers": "0-1", "phase": "prefill", "policy": {"type": "STREAM", "sink": 4, "recent": 8}},
      {"layers": [6, 7], "phase": "decode", "kv_heads": [2, 4], "policy": "FULL"}
    ]})", c);
  CHECK(p.name == "custom");
  CHECK(only(p, 0, PREFILL).policy == AttentionPolicy::ATTENTION_POLICY_STREAM);
  CHECK(only(p, 1, PREFILL).recent == 8);
  CHECK(only(p, 2, DECODE).k == 32);
  const auto& g6 = p.layers[6].decode;
  REQUIRE(g6.size() == 2);
  CHECK(g6[0].policy == AttentionPolicy::ATTENTION_POLICY_SPARSE);
  CHECK(g6[0].kv_head_end == 2);
  CHECK(g6[1].policy == AttentionPolicy::ATTENTION_POLICY_FULL);
  CHECK(g6[1].kv_head_begin == 2);
}

TEST_CASE("an invalid plan lists every problem at once, naming layer, field and valid values", "[attention][plan]") {
  const ModelConfig c = synthetic_config(4, 2);
  ErrorKind kind{};
  const std::string msg = error_of(
      [&] {
        from_json_text(R"({
          "n_layers": 5, "colour": "blue",
          "layers": [
            {"layers": 9, "policy": "FULL"},
            {"layers": 1, "phase": "sometimes", "policy": "FULL"},
            {"layers": 1, "policy": {"type": "TOPK", "k": 3}},
            {"layers": 1, "policy": {"type": "SELECT"}},
            {"layers": 2, "kv_heads": [1, 7], "policy": "FULL"},
            {"layers": 2, "policy": {"type": "SELECT", "k": 0}},
            {"layers": 2, "phase": "decode", "policy": {"type": "SELECT", "k": 5, "budget": 3}},
            {"layers": 3, "phase": "decode", "policy": {"type": "SPARSE", "from": 1}},
            {"layers": 0, "policy": {"type": "SPARSE", "from": 0}},
            {"layers": 1, "policy": {"type": "STREAM", "sink": -1, "recent": 0}},
            {"layers": 1, "phase": "decode", "policy": {"type": "HIP", "k": 7, "block_size_k": 2}}
          ]})", c);
      },
      &kind);
  INFO(msg);
  CHECK(kind == ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
  CHECK_THAT(msg, Catch::Contains("test.json: invalid attention plan (16 problems)"));
  CHECK_THAT(msg, Catch::Contains("n_layers = 5 does not match the model (4)"));
  CHECK_THAT(msg, Catch::Contains("unknown key 'colour' (valid: name, description, calibration, preset, params, n_layers"));
  CHECK_THAT(msg, Catch::Contains("layer 9 is out of range (the model has layers 0..3)"));
  CHECK_THAT(msg, Catch::Contains("phase 'sometimes' is not valid (valid: prefill, decode, both)"));
  CHECK_THAT(msg, Catch::Contains("unknown policy type 'TOPK' (valid: FULL, SELECT, SPARSE, STREAM, HIP)"));
  CHECK_THAT(msg, Catch::Contains("SELECT.k is required"));
  CHECK_THAT(msg, Catch::Contains("kv_heads [1,7] must be [begin, end) with 0 <= begin < end <= 2"));
  CHECK_THAT(msg, Catch::Contains("SELECT has no parameter 'budget' (valid: k)"));
  CHECK_THAT(msg, Catch::Contains("layer 2, prefill, kv heads 0-1: SELECT.k = 0 must be >= 1"));
  CHECK_THAT(msg, Catch::Contains("layer 2, decode, kv heads 0-1: SELECT.k = 0 must be >= 1"));
  CHECK_THAT(msg, Catch::Contains("layer 3, decode, kv heads 0-1: SPARSE.from = 1: layer 1 does not select for kv head 0 "
                                  "in decode (it is HIP; valid sources: SELECT or SPARSE)"));
  CHECK_THAT(msg, Catch::Contains("layer 0, prefill, kv heads 0-1: SPARSE.from = 0 must name an earlier layer"));
  CHECK_THAT(msg, Catch::Contains("layer 1, prefill, kv heads 0-1: STREAM.sink = -1 must be >= 0"));
  CHECK_THAT(msg, Catch::Contains("STREAM.recent = 0 must be >= 1"));
  CHECK_THAT(msg, Catch::Contains("layer 1, decode, kv heads 0-1: HIP.k = 7 must be a multiple of block_size_k = 2"));
}

TEST_CASE("HIP entries take the documented defaults for parameters they omit", "[attention][plan]") {
  const ModelConfig c = synthetic_config(4, 2);
  const AttentionPlan p =
      from_json_text(R"({"layers": [{"layers": "2-3", "policy": {"type": "HIP", "k": 64}}]})", c);
  CHECK(p.layers[2].decode[0].hip.k == 64);
  CHECK(p.layers[2].decode[0].hip.block_size_q == 32);
  CHECK(p.layers[2].decode[0].hip.block_size_k == 2);
  CHECK(p.layers[2].decode[0].hip.sink == 64);
  CHECK(p.layers[2].decode[0].hip.recent == 256);
  CHECK(p.layers[2].decode[0].hip.refresh_every == 1);
}

TEST_CASE("preset params are checked: unknown keys and bad values, all at once", "[attention][plan]") {
  const ModelConfig c = synthetic_config(8, 2);
  const std::string msg = error_of(
      [&] { attention_preset_resolve("tidal", {{"k", 0}, {"kk", 3}, {"reselect_layer", 1}}, c); });
  INFO(msg);
  CHECK_THAT(msg, Catch::Contains("3 problems"));
  CHECK_THAT(msg, Catch::Contains("params.k = 0 must be an integer >= 1"));
  CHECK_THAT(msg, Catch::Contains("unknown parameter 'kk' (valid: k, select_layer, reselect_layer)"));
  CHECK_THAT(msg, Catch::Contains("params.reselect_layer = 1 must be after select_layer = 2"));
}

TEST_CASE("every plan file in configs/policies resolves for every parity fixture model", "[attention][plan]") {
  const std::filesystem::path dir = std::filesystem::path(LCLLM_SOURCE_DIR) / "configs/policies";
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".json") files.push_back(e.path().string());
  }
  REQUIRE(files.size() >= 3);
  for (const auto& f : files) {
    std::ifstream in(f);
    const auto j = nlohmann::json::parse(in);
    if (j.contains("n_layers")) {  // written for one model shape: check it on that shape
      const ModelConfig c = synthetic_config(j.at("n_layers").get<int32_t>(), j.at("n_kv_heads").get<int32_t>());
      INFO(f);
      CHECK(attention_plan_resolve(f, c).layers.size() == size_t(c.n_layers));
      continue;
    }
    for (const auto& fx : policy_test::fixture_dirs()) {
      const ModelConfig c = model_config_load(fx);
      INFO(fx << " with " << f);
      CHECK(attention_plan_resolve(f, c).layers.size() == size_t(c.n_layers));
    }
  }
}

TEST_CASE("a plan's layer range past the model is one problem, found at once (fuzz_plan timeout)",
          "[attention][plan]") {
  const ModelConfig c = synthetic_config(4, 2);
  ErrorKind kind{};
  const std::string msg = error_of(
      [&] {
        from_json_text(R"({"name": "g", "layers": [
            {"layers": "1-36666666666666", "phase": "decode", "policy": {"type": "SELECT", "k": 16}}]})", c);
      },
      &kind);
  INFO(msg);
  CHECK(kind == ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
  CHECK_THAT(msg, Catch::Contains("layers \"1-36666666666666\" reach past the model (it has layers 0..3)"));
  CHECK_THAT(msg, Catch::Contains("(1 problem):"));
}
