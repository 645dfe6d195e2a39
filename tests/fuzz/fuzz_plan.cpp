// libFuzzer target: the input is an attention plan file (configs/policies/*.json; docs/POLICIES.md §3), resolved
// for two small model shapes (one with sliding-window layers). A malformed plan may only ever produce lcllm::Error;
// anything else (a crash, UB, another exception type) is a bug. A plan that resolves must survive the JSON round
// trip unchanged (attention_plan_to_json -> attention_plan_from_json).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "attention/attention_plan_json.h"
#include "lcllm/error.h"

namespace {

lcllm::ModelConfig shape(int32_t n_layers, int32_t n_kv_heads, int32_t window_every) {
  lcllm::ModelConfig c;
  c.n_layers = n_layers;
  c.n_kv_heads = n_kv_heads;
  c.n_heads = n_kv_heads * 2;
  c.head_dim = 8;
  c.layers.resize(size_t(n_layers));
  for (int32_t l = 0; window_every > 0 && l < n_layers; ++l) {
    if (l % window_every != window_every - 1) c.layers[size_t(l)].sliding_window = 16;
  }
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto j = nlohmann::json::parse(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size,
                                       nullptr, false);
  if (j.is_discarded()) return 0;
  static const lcllm::ModelConfig shapes[] = {shape(4, 2, 0), shape(6, 3, 3)};
  for (const auto& c : shapes) {
    try {
      const lcllm::AttentionPlan plan = lcllm::attention_plan_from_json(j, c, "fuzz");
      const lcllm::AttentionPlan back = lcllm::attention_plan_from_json(lcllm::attention_plan_to_json(plan), c, "back");
      if (!(back == plan)) std::abort();  // the spelled-out form must reproduce the plan exactly
    } catch (const lcllm::Error&) {
    }
  }
  return 0;
}
