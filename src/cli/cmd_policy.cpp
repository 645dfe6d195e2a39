// `lcllm policy show MODEL --policy NAME|FILE [--json]`: the resolved per-layer attention plan for a model,
// as a table (layer, window, phase, KV heads, policy with parameters) or as a complete JSON plan file.
#include <cstdio>

#include "attention/attention_plan.h"
#include "attention/attention_plan_json.h"
#include "cli/commands.h"
#include "models/model_family.h"

namespace lcllm {

namespace {

struct PolicyArgs {
  std::string model;
  std::string policy = "full";
  bool json = false;
};

int policy_show(const PolicyArgs& a) {
  const ModelConfig c = model_config_load(a.model);
  const AttentionPlan plan = attention_plan_resolve(a.policy, c);
  if (a.json) {
    // One override per line: readable, and diff-friendly when saved as configs/policies/NAME.json.
    const nlohmann::ordered_json j = attention_plan_to_json(plan);
    std::printf("{\n");
    for (const auto& [key, value] : j.items()) {
      if (key == "layers") continue;
      std::printf("  %s: %s,\n", nlohmann::json(key).dump().c_str(), value.dump().c_str());
    }
    std::printf("  \"layers\": [\n");
    const auto& layers = j.at("layers");
    for (size_t i = 0; i < layers.size(); ++i) {
      std::printf("    %s%s\n", layers[i].dump().c_str(), i + 1 < layers.size() ? "," : "");
    }
    std::printf("  ]\n}\n");
    return 0;
  }
  std::printf("plan '%s' for %s (%d layers, %d KV heads, %d query heads)\n", plan.name.c_str(), a.model.c_str(),
              c.n_layers, c.n_kv_heads, c.n_heads);
  std::printf("%5s  %-7s  %-7s  %-8s  %s\n", "layer", "window", "phase", "kv heads", "policy");
  for (size_t l = 0; l < plan.layers.size(); ++l) {
    const LayerPlan& L = plan.layers[l];
    const int32_t win = c.layers[l].sliding_window;
    const std::string window = win ? std::to_string(win) : "-";
    const bool same = L.prefill == L.decode;
    for (AttentionPhase ph : {AttentionPhase::ATTENTION_PHASE_PREFILL, AttentionPhase::ATTENTION_PHASE_DECODE}) {
      if (same && ph == AttentionPhase::ATTENTION_PHASE_DECODE) break;
      for (const auto& g : L.phase(ph)) {
        const std::string heads = std::to_string(g.kv_head_begin) + "-" + std::to_string(g.kv_head_end - 1);
        std::printf("%5zu  %-7s  %-7s  %-8s  %s\n", l, window.c_str(), same ? "both" : attention_phase_name(ph),
                    heads.c_str(), attention_group_describe(g).c_str());
      }
    }
  }
  return 0;
}

}  // namespace

CliHandler cli_add_policy(CLI::App& app) {
  auto a = std::make_shared<PolicyArgs>();
  CLI::App* cmd = app.add_subcommand("policy", "Inspect attention policy plans");
  cmd->require_subcommand(1);
  CLI::App* show = cmd->add_subcommand("show", "Print the per-layer attention plan a policy resolves to for a model");
  show->add_option("MODEL", a->model, "Model directory (config.json) or a config.json")->required();
  show->add_option("--policy", a->policy,
                   "Preset (full, streaming, tidal) or a JSON plan file (configs/policies/*.json)")
      ->capture_default_str();
  show->add_flag("--json", a->json, "Print the plan spelled out as a JSON plan file instead of a table");
  return [show, a]() -> int { return show->parsed() ? policy_show(*a) : -1; };
}

}  // namespace lcllm
