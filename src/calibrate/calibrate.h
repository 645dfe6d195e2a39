// `lcllm calibrate`: runs needle probes on the CPU reference backend, records decode-step attention and turns it
// into what the plans need (ARCHITECTURE.md §4.5; docs/POLICIES.md §7): retrieval scores per (layer, KV head),
// the HyLRA profile (per-layer sensitivity and inter-layer top-k loss), top-k overlap between layers and the
// TidalDecode re-selection layer. Writes a plan file plus a report (JSON and PNG heat maps).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "calibrate/needle_probe.h"
#include "io/model_config.h"

namespace lcllm {

struct CalibrateOptions {
  std::string model;              // model directory
  std::string tokenizer;          // tokenizer dir/file; empty: the model directory
  int32_t probes = 4;             // needle probes (depths spread over 10 %..90 %)
  int32_t context_tokens = 512;   // probe length
  std::string haystack;           // natural text file for the probes' filler (eval/haystack_text.h); empty: built in
  int32_t threads = 0;
  uint64_t seed = 1;
  // Plan parameters written into the plans (defaults = the presets').
  int32_t k = 2048;               // SELECT budget of hylra / tidal plans
  int32_t reference_context = 32768;  // k / reference_context = the top-k share measured on the probes
  double budget = 0.05;           // HyLRA: mean attention-mass loss allowed per layer
  double threshold = 0.1;         // retrieval: heads scoring above keep FULL
  int32_t sink = 64, recent = 256;    // retrieval: the streaming heads' window
  int32_t tidal_select_layer = 2;
};

struct CalibrationResult {
  std::string model;
  ModelConfig config;
  int32_t k_measured = 0;                // top-k size used on the probes
  std::vector<NeedleProbe> probes;
  int64_t decode_steps = 0;
  std::vector<double> retrieval_scores;  // [n_layers * n_kv_heads]
  std::vector<double> loss;              // [n_layers * n_layers] HyLRA profile (j <= l)
  std::vector<double> overlap;           // [n_layers * n_layers] top-k overlap (j <= l)
  int32_t tidal_reselect_layer = -1;
  std::vector<double> needle_recall;     // [n_layers] share of the needle in each layer's top-k at copy steps
};

// progress(done, total) counts probe steps (one prefill + one per answer token).
CalibrationResult calibrate_run(const CalibrateOptions& options, const std::function<void(size_t, size_t)>& progress);

// The plan file for `kind` (hylra, retrieval or tidal): the preset with the measured parameters.
nlohmann::ordered_json calibration_plan_json(const CalibrationResult& r, const CalibrateOptions& o,
                                             const std::string& kind, const std::string& name);
nlohmann::ordered_json calibration_report_json(const CalibrationResult& r, const CalibrateOptions& o);

// Writes `plan_path` (the `kind` plan), and beside it STEM.report.json, STEM.retrieval.png, STEM.overlap.png.
// Returns the paths written. Throws lcllm::Error (ERROR_KIND_IO) naming a path that cannot be written.
std::vector<std::string> calibration_write(const CalibrationResult& r, const CalibrateOptions& o,
                                           const std::string& kind, const std::string& plan_path);

std::vector<std::string> calibration_plan_kinds();  // hylra, retrieval, tidal

}  // namespace lcllm
