#include "attention/attention_plan.h"

#include "lcllm/error.h"

namespace lcllm {

const char* attention_policy_name(AttentionPolicy p) {
  switch (p) {
    case AttentionPolicy::ATTENTION_POLICY_FULL: return "FULL";
  }
  return "?";
}

std::vector<std::string> attention_plan_presets() { return {"full"}; }

AttentionPlan attention_plan_resolve(const std::string& preset, const ModelConfig& config) {
  if (preset != "full") {
    std::string known;
    for (const auto& p : attention_plan_presets()) known += (known.empty() ? "" : ", ") + p;
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "unknown attention policy '" + preset + "' (available: " + known + ")");
  }
  AttentionPlan plan;
  plan.name = preset;
  const HeadGroupPolicy all{0, config.n_kv_heads, AttentionPolicy::ATTENTION_POLICY_FULL};
  plan.layers.assign(size_t(config.n_layers), LayerPlan{{all}, {all}});
  return plan;
}

}  // namespace lcllm
