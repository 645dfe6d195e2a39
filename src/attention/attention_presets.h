// Presets: named plans resolved for a model (ARCHITECTURE.md §3). Each preset's rule and its source are in
// docs/POLICIES.md; parameters come from a plan file's "params" object and default to the papers' values.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attention/attention_plan.h"

namespace lcllm {

// StreamingLLM (arXiv 2309.17453 §3): attention sinks + a rolling window of recent tokens, every layer, both phases.
struct StreamingParams {
  int32_t sink = 64;
  int32_t recent = 256;
};

// TidalDecode (arXiv 2410.05076 §3): decode only; dense layers before `select_layer`; the selection layer does full
// attention and picks the top-k positions; later layers attend only to them until the re-selection layer selects
// again. Sliding-window layers (Gemma 2/3 local layers) stay FULL: they are already bounded by their window.
struct TidalParams {
  static constexpr int32_t RESELECT_AUTO = -2;  // the first global layer at or after n_layers / 2
  static constexpr int32_t RESELECT_NONE = -1;
  int32_t k = 2048;
  int32_t select_layer = 2;                     // the first global layer at or after this index selects
  int32_t reselect_layer = RESELECT_AUTO;       // calibrated plans set it (e.g. 13 for Llama-3-8B)
};

AttentionPlan attention_preset_streaming(const ModelConfig& config, const StreamingParams& params);
AttentionPlan attention_preset_tidal(const ModelConfig& config, const TidalParams& params);

// Builds preset `name` with `params` (a JSON object; unknown keys and bad values are appended to `problems`).
// An unknown name is a problem listing the known presets; presets that are planned but not implemented (hylra,
// retrieval, hip) throw ERROR_KIND_UNSUPPORTED naming the issue.
AttentionPlan attention_preset_build(const std::string& name, const nlohmann::json& params, const ModelConfig& config,
                                     std::vector<std::string>& problems);
// attention_preset_build, throwing ERROR_KIND_INVALID_ARGUMENT with every problem.
AttentionPlan attention_preset_resolve(const std::string& name, const nlohmann::json& params, const ModelConfig& config);
std::vector<std::string> attention_preset_names();  // the presets that resolve today

}  // namespace lcllm
