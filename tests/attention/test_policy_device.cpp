// A backend without the sparse ops must refuse a sparse plan with a clear error before loading
// weights — never run it silently as full attention (docs/POLICIES.md §4) — while a FULL plan loads.
#include <catch2/catch.hpp>

#include "attention/attention_presets.h"
#include "delegating_backend.h"
#include "lcllm/error.h"
#include "policy_test_util.h"

using namespace lcllm;
using namespace policy_test;

namespace {

class DenseOnlyBackend final : public DelegatingBackend {
 public:
  std::string name() const override { return "dense-only"; }
  bool supports_key_sets() const override { return false; }
  bool supports_hip() const override { return false; }
  bool supports_kv_window() const override { return false; }
};

}  // namespace

TEST_CASE("sparse plans stop with a clear error on a backend without sparse attention", "[attention][device]") {
  const std::string dir = std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/parity/qwen3";
  const ModelConfig c = model_config_load(dir);
  EngineOptions o;
  o.model_path = dir;
  o.context_tokens = 256;
  o.device = "cuda";  // as the user asked for it: no fallback
  nlohmann::json zero = nlohmann::json::array();
  for (int32_t l = 0; l < c.n_layers; ++l) zero.push_back(std::vector<double>(size_t(c.n_kv_heads), 0.0));
  const std::vector<AttentionPlan> plans = {
      attention_preset_resolve("streaming", nlohmann::json::object(), c),
      attention_preset_resolve("tidal", {{"select_layer", 0}}, c),
      attention_preset_resolve("hylra", {{"dense_layers", 0}}, c),
      attention_preset_resolve("hip", {{"dense_layers", 0}, {"prefill_dense_below", 0}, {"decode_dense_below", 0}}, c),
      attention_preset_resolve("retrieval", {{"scores", zero}}, c),
  };
  for (const AttentionPlan& plan : plans) {
    INFO(plan.name);
    REQUIRE(!attention_plan_is_full(plan));
    o.plan = plan;
    try {
      Engine::load(o, std::make_unique<DenseOnlyBackend>());
      FAIL("a sparse plan loaded on a backend without sparse attention");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::ERROR_KIND_UNSUPPORTED);
      CHECK_THAT(e.what(), Catch::Contains("needs sparse attention") && Catch::Contains("dense-only backend") &&
                               Catch::Contains("--device cpu or --policy full"));
    }
  }
  o.plan = attention_plan_full(c);
  CHECK(Engine::load(o, std::make_unique<DenseOnlyBackend>())->plan().name == "full");
}
