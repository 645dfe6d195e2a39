#include "calibrate/calibrate.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include "attention/attention_kv_window.h"
#include "attention/attention_plan_json.h"
#include "attention/hylra.h"
#include "calibrate/attention_recorder.h"
#include "calibrate/attention_stats.h"
#include "eval/haystack_text.h"
#include "lcllm/error.h"
#include "models/model_family.h"
#include "plot/heatmap.h"
#include "runtime/engine.h"

namespace lcllm {

std::vector<std::string> calibration_plan_kinds() { return {"hylra", "retrieval", "tidal"}; }

CalibrationResult calibrate_run(const CalibrateOptions& o, const std::function<void(size_t, size_t)>& progress) {
  CalibrationResult r;
  r.model = o.model;
  r.config = model_config_load(o.model);
  const ModelConfig& c = r.config;
  if (o.k < 1 || o.reference_context < 1) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--k and --reference-context must be >= 1");
  }
  const auto tok = Tokenizer::load(o.tokenizer.empty() ? o.model : o.tokenizer);
  std::string natural;
  if (!o.haystack.empty()) {  // the same file rules as eval --haystack, joined back into one text
    EvalText text;
    eval_text_use_haystack(text, o.haystack);
    for (const auto& s : text.filler) natural += " " + s;
  }
  r.probes = needle_probes_build(*tok, o.probes, o.context_tokens, o.seed, natural);
  // The top-k share a plan's k keeps of its reference context, applied to the probe length.
  r.k_measured = std::max(1, int32_t(std::lround(double(o.context_tokens) * o.k / o.reference_context)));

  size_t longest = 0, total_steps = 0;
  for (const auto& p : r.probes) {
    longest = std::max(longest, p.context.size() + p.answer.size());
    total_steps += 1 + p.answer.size();
    for (int32_t id : p.context) {
      if (id >= c.vocab_size) {
        throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                    "the tokenizer produced id " + std::to_string(id) + ", outside the model's vocabulary (" +
                        std::to_string(c.vocab_size) + "); pass the model's own tokenizer with --tokenizer");
      }
    }
  }
  EngineOptions eo;
  eo.model_path = o.model;
  eo.threads = o.threads;
  eo.context_tokens = int32_t(longest) + 16;
  eo.max_step_tokens = 256;
  eo.plan = attention_plan_full(c, "calibration");
  auto recorder = std::make_unique<AttentionRecorder>(o.threads, c.n_layers, c.n_kv_heads);
  AttentionRecorder* rec = recorder.get();
  auto engine = Engine::load(eo, std::move(recorder));

  CalibrationStats stats(c.n_layers, c.n_kv_heads);
  size_t done = 0;
  for (const NeedleProbe& p : r.probes) {
    const int32_t seq = engine->create_sequence();
    rec->set_recording(false);
    engine->feed(seq, std::span<const int32_t>(p.context).first(p.context.size() - 1), false);
    if (progress) progress(++done, total_steps);
    // Teacher-forced answer: step i feeds the previous token and must produce answer[i], a copy of the needle.
    std::vector<int32_t> seen(p.context.begin(), p.context.end() - 1);
    stats.begin_probe();
    rec->set_recording(true);
    for (size_t i = 0; i < p.answer.size(); ++i) {
      const int32_t input = i == 0 ? p.context.back() : p.answer[i - 1];
      seen.push_back(input);
      engine->feed(seq, std::span<const int32_t>(&input, 1), false, 0, AttentionPhase::ATTENTION_PHASE_DECODE);
      stats.add_step(rec->last(), seen, p.answer[i], p.value_begin, p.value_begin + int32_t(p.answer.size()),
                     r.k_measured);
      if (progress) progress(++done, total_steps);
    }
    rec->set_recording(false);
    stats.end_probe(int32_t(p.answer.size()));
    engine->free_sequence(seq);
  }
  r.decode_steps = stats.steps();
  r.retrieval_scores = stats.retrieval_scores();
  r.loss = stats.loss();
  r.overlap = stats.overlap();
  r.needle_recall = stats.needle_recall();
  r.tidal_reselect_layer = tidal_best_reselect_layer(r.loss, c, o.tidal_select_layer);
  return r;
}

namespace {

nlohmann::ordered_json matrix(const std::vector<double>& v, int32_t rows, int32_t cols, bool lower_only) {
  nlohmann::ordered_json m = nlohmann::ordered_json::array();
  for (int32_t i = 0; i < rows; ++i) {
    nlohmann::ordered_json row = nlohmann::ordered_json::array();
    for (int32_t j = 0; j < (lower_only ? i + 1 : cols); ++j) row.push_back(v[size_t(i) * size_t(cols) + size_t(j)]);
    m.push_back(row);
  }
  return m;
}

HylraProfile profile_of(const CalibrationResult& r) {
  HylraProfile p;
  p.n_layers = r.config.n_layers;
  p.loss = r.loss;
  for (auto& v : p.loss) v = std::isnan(v) ? 1.0 : v;
  return p;
}

}  // namespace

nlohmann::ordered_json calibration_plan_json(const CalibrationResult& r, const CalibrateOptions& o,
                                             const std::string& kind, const std::string& name) {
  const ModelConfig& c = r.config;
  nlohmann::ordered_json j;
  j["name"] = name;
  j["calibration"] = {{"model", r.model},
                      {"probes", int32_t(r.probes.size())},
                      {"probe_tokens", o.context_tokens},
                      {"decode_steps", r.decode_steps},
                      {"k_measured", r.k_measured},
                      {"seed", o.seed}};
  j["n_layers"] = c.n_layers;
  j["n_kv_heads"] = c.n_kv_heads;
  if (kind == "hylra") {
    j["description"] = "HyLRA (arXiv 2602.00777) plan from lcllm calibrate: DP over the measured profile";
    j["preset"] = "hylra";
    j["params"] = {{"k", o.k}, {"context", o.reference_context}, {"budget", o.budget},
                   {"profile", hylra_profile_to_json(profile_of(r))}};
  } else if (kind == "retrieval") {
    j["description"] = "Retrieval heads (arXiv 2404.15574) + streaming heads (arXiv 2410.10819) from lcllm calibrate";
    j["preset"] = "retrieval";
    j["params"] = {{"threshold", o.threshold}, {"sink", o.sink}, {"recent", o.recent},
                   {"scores", matrix(r.retrieval_scores, c.n_layers, c.n_kv_heads, false)}};
  } else if (kind == "tidal") {
    j["description"] = "TidalDecode (arXiv 2410.05076) with the measured re-selection layer, from lcllm calibrate";
    j["preset"] = "tidal";
    j["params"] = {{"k", o.k}, {"select_layer", o.tidal_select_layer}, {"reselect_layer", r.tidal_reselect_layer}};
  } else {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "unknown calibrated plan '" + kind +
                                                            "' (valid: hylra, retrieval, tidal)");
  }
  attention_plan_from_json(j, c, "calibrated " + kind + " plan");  // what is written must load
  return j;
}

nlohmann::ordered_json calibration_report_json(const CalibrationResult& r, const CalibrateOptions& o) {
  const ModelConfig& c = r.config;
  nlohmann::ordered_json j;
  j["model"] = r.model;
  j["n_layers"] = c.n_layers;
  j["n_kv_heads"] = c.n_kv_heads;
  j["k_measured"] = r.k_measured;
  j["decode_steps"] = r.decode_steps;
  nlohmann::ordered_json probes = nlohmann::ordered_json::array();
  for (const auto& p : r.probes) {
    probes.push_back({{"tokens", p.context.size()}, {"depth", p.depth}, {"needle_begin", p.value_begin},
                      {"needle_tokens", p.answer.size()}});
  }
  j["probes"] = probes;
  j["retrieval_scores"] = matrix(r.retrieval_scores, c.n_layers, c.n_kv_heads, false);
  std::vector<double> sens(size_t(c.n_layers));
  for (int32_t l = 0; l < c.n_layers; ++l) sens[size_t(l)] = r.loss[size_t(l) * size_t(c.n_layers) + size_t(l)];
  j["sensitivity"] = sens;
  j["reuse_loss"] = matrix(r.loss, c.n_layers, c.n_layers, true);
  j["topk_overlap"] = matrix(r.overlap, c.n_layers, c.n_layers, true);
  j["needle_recall"] = r.needle_recall;
  j["tidal_reselect_layer"] = r.tidal_reselect_layer;
  int32_t streaming = 0;
  for (double s : r.retrieval_scores) streaming += s > o.threshold ? 0 : 1;
  const AttentionPlan retrieval = attention_plan_from_json(calibration_plan_json(r, o, "retrieval", "retrieval"), c,
                                                           "calibrated retrieval plan");
  const KvMemoryEstimate mem = attention_kv_memory(c, attention_kv_window_layout(retrieval, 256),
                                                   o.reference_context, 1, KvDtype::KV_DTYPE_BF16);
  j["retrieval_summary"] = {{"streaming_heads", streaming},
                            {"retrieval_heads", int32_t(r.retrieval_scores.size()) - streaming},
                            {"kv_bytes_full_bf16", mem.full_bytes},
                            {"kv_bytes_plan_bf16", mem.plan_bytes},
                            {"at_context_tokens", o.reference_context}};
  nlohmann::ordered_json plans;
  for (const auto& kind : calibration_plan_kinds()) plans[kind] = calibration_plan_json(r, o, kind, kind);
  j["plans"] = plans;
  return j;
}

std::vector<std::string> calibration_write(const CalibrationResult& r, const CalibrateOptions& o,
                                           const std::string& kind, const std::string& plan_path) {
  namespace fs = std::filesystem;
  const fs::path path(plan_path);
  const std::string stem = (path.parent_path() / path.stem()).string();
  std::vector<std::string> written;
  auto write_json = [&](const std::string& p, const nlohmann::ordered_json& j) {
    std::ofstream out(p);
    out << j.dump(2) << "\n";
    if (!out) throw Error(ErrorKind::ERROR_KIND_IO, "cannot write '" + p + "'");
    written.push_back(p);
  };
  write_json(plan_path, calibration_plan_json(r, o, kind, path.stem().string()));
  write_json(stem + ".report.json", calibration_report_json(r, o));
  const ModelConfig& c = r.config;
  plot::Heatmap scores;
  scores.title = "Retrieval score per KV head (copy-paste rule)";
  scores.x_label = "KV head";
  scores.y_label = "layer";
  for (int32_t l = 0; l < c.n_layers; ++l) scores.row_labels.push_back(std::to_string(l));
  for (int32_t h = 0; h < c.n_kv_heads; ++h) scores.col_labels.push_back(std::to_string(h));
  for (double v : r.retrieval_scores) scores.values.push_back(float(v));
  plot::write_heatmap_png(scores, stem + ".retrieval.png");
  written.push_back(stem + ".retrieval.png");
  plot::Heatmap overlap;
  overlap.title = "Top-k overlap of layer l with layer j";
  overlap.x_label = "earlier layer j";
  overlap.y_label = "layer l";
  overlap.row_labels = scores.row_labels;
  overlap.col_labels = scores.row_labels;
  for (double v : r.overlap) overlap.values.push_back(float(v));  // NaN above the diagonal: no data
  plot::write_heatmap_png(overlap, stem + ".overlap.png");
  written.push_back(stem + ".overlap.png");
  return written;
}

}  // namespace lcllm
