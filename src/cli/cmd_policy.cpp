// `lcllm policy show MODEL --policy NAME|FILE [--json]`: the resolved per-layer attention plan for a model,
// as a table (layer, window, phase, KV heads, policy with parameters) or as a complete JSON plan file.
#include <cstdio>

#include "attention/attention_kv_window.h"
#include "attention/attention_plan.h"
#include "attention/attention_plan_json.h"
#include "cli/cli_common.h"
#include "cli/commands.h"
#include "models/model_family.h"
#include "runtime/roofline.h"

namespace lcllm {

namespace {

struct PolicyArgs {
  std::string model;
  std::string policy = "full";
  bool json = false;
  int32_t ctx_size = 32768;
  int32_t chunk_size = 256;
};

// What the plan's windowed streaming heads save (attention_kv_window.h), for one sequence of ctx_size tokens, and
// the K/V bytes one decode step reads under it (the step plan's key sets, runtime/roofline.h).
void print_kv_memory(const AttentionPlan& plan, const ModelConfig& c, const PolicyArgs& a) {
  const double read = decode_kv_bytes_read(plan, c, a.ctx_size, KvDtype::KV_DTYPE_BF16);
  const double read_full = decode_kv_bytes_read(attention_plan_full(c), c, a.ctx_size, KvDtype::KV_DTYPE_BF16);
  std::printf("KV read per decode step at %d tokens: %s of FULL's %s bf16 (%.1f%%)\n", a.ctx_size,
              format_bytes(read).c_str(), format_bytes(read_full).c_str(), 100.0 * read / read_full);
  const KvWindowLayout w = attention_kv_window_layout(plan, a.chunk_size);
  int64_t windowed = 0;
  for (int32_t l = 0; l < c.n_layers && !w.empty(); ++l) windowed += w.windowed_heads(l);
  // One line per --kv-cache-dtype: the cuda backend stores bf16 or fp8 (with one scale byte per head vector), the
  // cpu fp32 whatever it emulates. Windowed (streaming) heads keep only their ring on both.
  std::printf("KV memory for one sequence of %d tokens (all heads -> this plan):\n", a.ctx_size);
  for (const auto& [dtype, where] : {std::pair{KvDtype::KV_DTYPE_BF16, "cuda"}, std::pair{KvDtype::KV_DTYPE_FP8_E4M3, "cuda"},
                                     std::pair{KvDtype::KV_DTYPE_F32, "cpu"}}) {
    const KvMemoryEstimate m = attention_kv_memory(c, w, a.ctx_size, 1, dtype);
    std::printf("  %-5s (%s)  %s per token -> %s -> %s\n", kv_dtype_name(dtype), where,
                format_bytes(double(kv_bytes_per_token(c, dtype))).c_str(), format_bytes(double(m.full_bytes)).c_str(),
                format_bytes(double(m.plan_bytes)).c_str());
  }
  if (w.empty()) {
    std::printf("  no head streams in both phases, so every position is kept\n");
    return;
  }
  const KvMemoryEstimate m = attention_kv_memory(c, w, a.ctx_size, 1, KvDtype::KV_DTYPE_BF16);
  std::printf("  %lld of %lld (layer, KV head) pairs stream and keep only a %d-token window (sink %d + recent %d + "
              "chunk %d): saves %.1f%%\n",
              (long long)windowed, (long long)(int64_t(c.n_layers) * c.n_kv_heads), w.ring_len, w.sink, w.recent,
              a.chunk_size, 100.0 * double(m.saved()) / double(m.full_bytes));
}

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
  print_kv_memory(plan, c, a);
  return 0;
}

}  // namespace

CliHandler cli_add_policy(CLI::App& app) {
  auto a = std::make_shared<PolicyArgs>();
  CLI::App* cmd = app.add_subcommand("policy", "Inspect attention policy plans");
  cmd->require_subcommand(1);
  CLI::App* show = cmd->add_subcommand("show", "Print the per-layer attention plan a policy resolves to for a model");
  show->add_option("MODEL", a->model, "Model directory (config.json) or a config.json")->required();
  cli_add_policy_option(show, a->policy);
  show->add_option("--ctx-size,-c", a->ctx_size, "Context length the KV memory estimate is for")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  show->add_option("--chunk-size", a->chunk_size,
                   "Prefill chunk (tokens per step): streaming heads' rings hold sink + recent + chunk positions")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  show->add_flag("--json", a->json, "Print the plan spelled out as a JSON plan file instead of a table");
  return [show, a]() -> int { return show->parsed() ? policy_show(*a) : -1; };
}

}  // namespace lcllm
