// Presets: named plans resolved for a model (ARCHITECTURE.md §3). Each preset's rule and its source are in
// docs/POLICIES.md; parameters come from a plan file's "params" object and default to the papers' values.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attention/attention_plan.h"
#include "attention/hylra.h"

namespace lcllm {

// StreamingLLM (arXiv 2309.17453 §3): attention sinks + a rolling window of recent tokens, every global layer, both
// phases. Sliding-window layers keep their own window (the paper's models have none; narrowing a local layer's
// window to sink + recent saves little memory and lost passkeys on Gemma 3, issue E10).
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

// HyLRA (arXiv 2602.00777; hylra.h): decode only, prefill dense. The DP picks FULL / SELECT{k} / SPARSE{from} per
// layer over `profile`, or over hylra_default_profile(n_layers, dense_layers) when none is given (uncalibrated).
struct HylraParams {
  int32_t k = 2048;             // top-k budget of SELECT layers (TidalDecode's default budget)
  int32_t dense_layers = 2;     // layers 0..dense_layers-1 stay FULL (fallback profile only)
  int32_t context = 32768;      // reference context: a SPARSE layer costs k / context of a dense one
  double budget = 0.05;         // allowed attention-mass loss, mean over layers (sum <= budget * n_layers)
  std::optional<HylraProfile> profile;  // calibrated profile (`lcllm calibrate`), else the fallback
};

// Retrieval heads (arXiv 2404.15574 §2) + DuoAttention streaming heads (arXiv 2410.10819 §3): KV heads whose
// retrieval score is > threshold keep FULL attention; the others STREAM{sink, recent} in both phases, and the
// engine keeps only that window of their KV (kv_window.h). Sliding-window layers keep their window, as in
// streaming. Without scores every head stays FULL (with a warning).
struct RetrievalParams {
  double threshold = 0.1;
  int32_t sink = 64;
  int32_t recent = 256;
  std::vector<double> scores;  // [n_layers * n_kv_heads] retrieval scores; empty: not calibrated
};

// HiP (arXiv 2406.09827): HIP{...} on every global layer from dense_layers on, both phases.
struct HipPresetParams {
  HipParams hip;
  int32_t dense_layers = 3;
  // HipParams::dense_below of the prefill and the decode groups (0: always sparse): below them the search costs
  // more than the dense attention it saves. Prefill 8k since session 25 (32k before; the search costs half since
  // session 24): Llama-3.1-8B TTFT on the H100 1.05 s at 32k and 5.01 s at 128k against 1.32 / 5.31 s with 32k and
  // 1.09 / 5.04 s with 16k (bench/results/hip_prefill_dense_below_h100_2026-12-07/). Decode: a step searching
  // every layer's masks is slower than dense up to ~174k keys on the H100, ~300k on the H200; docs/POLICIES.md
  // "Where hip pays off".
  int32_t prefill_dense_below = 8192, decode_dense_below = 196608;
  // The prefill group's HipParams::dense_tail: a prompt's last 64 rows attend densely (Gemma 3 270M, 4k, 32
  // prompts, 8x budget: 98.0% of full's answer probability kept against 94.6% without, 27 vs 22 of 32 found;
  // docs/POLICIES.md).
  int32_t dense_tail = 64;
};

AttentionPlan attention_preset_streaming(const ModelConfig& config, const StreamingParams& params);
AttentionPlan attention_preset_tidal(const ModelConfig& config, const TidalParams& params);
AttentionPlan attention_preset_hylra(const ModelConfig& config, const HylraParams& params);
// The plan a HyLRA solution spells out (decode: FULL / SELECT{k} / SPARSE{from}; prefill FULL).
AttentionPlan attention_plan_from_hylra(const ModelConfig& config, const HylraSolution& solution, int32_t k,
                                        const std::string& name);
AttentionPlan attention_preset_retrieval(const ModelConfig& config, const RetrievalParams& params);
AttentionPlan attention_preset_hip(const ModelConfig& config, const HipPresetParams& params);

// Builds preset `name` with `params` (a JSON object; unknown keys and bad values are appended to `problems`).
// An unknown name is a problem listing the known presets.
AttentionPlan attention_preset_build(const std::string& name, const nlohmann::json& params, const ModelConfig& config,
                                     std::vector<std::string>& problems);
// attention_preset_build, throwing ERROR_KIND_INVALID_ARGUMENT with every problem.
AttentionPlan attention_preset_resolve(const std::string& name, const nlohmann::json& params, const ModelConfig& config);
std::vector<std::string> attention_preset_names();  // the presets that resolve today

}  // namespace lcllm
