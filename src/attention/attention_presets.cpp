#include "attention/attention_presets.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "lcllm/error.h"

namespace lcllm {

namespace {

constexpr AttentionPhase PREFILL = AttentionPhase::ATTENTION_PHASE_PREFILL;
constexpr AttentionPhase DECODE = AttentionPhase::ATTENTION_PHASE_DECODE;

HeadGroupPolicy make_policy(AttentionPolicy p) {
  HeadGroupPolicy g;
  g.policy = p;
  return g;
}

// The first layer >= from without a sliding window, or -1.
int32_t first_global_layer(const ModelConfig& c, int32_t from) {
  for (int32_t l = std::max(from, 0); l < c.n_layers; ++l) {
    if (c.layers[size_t(l)].sliding_window == 0) return l;
  }
  return -1;
}

// Reads integer parameters from a preset's params object; unknown keys and bad types become problems.
class ParamReader {
 public:
  ParamReader(const nlohmann::json& j, std::string preset, std::vector<std::string>& problems)
      : j_(j), preset_(std::move(preset)), problems_(problems) {
    if (!j_.is_object()) problems_.push_back("preset '" + preset_ + "': params must be a JSON object");
  }
  void read(const char* key, int32_t& value, int32_t min) {
    known_.push_back(key);
    if (!j_.is_object() || !j_.contains(key)) return;
    const auto& v = j_.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > INT32_MAX) {
      problems_.push_back("preset '" + preset_ + "': params." + key + " = " + v.dump() + " must be an integer >= " +
                          std::to_string(min));
      return;
    }
    value = v.get<int32_t>();
  }
  void read_double(const char* key, double& value, double min, double max) {
    known_.push_back(key);
    if (!j_.is_object() || !j_.contains(key)) return;
    const auto& v = j_.at(key);
    if (!v.is_number() || v.get<double>() < min || v.get<double>() > max) {
      problems_.push_back("preset '" + preset_ + "': params." + key + " = " + v.dump() + " must be a number in [" +
                          std::to_string(min) + ", " + std::to_string(max) + "]");
      return;
    }
    value = v.get<double>();
  }
  // A structured parameter (array or object) the caller parses itself; nullptr when absent.
  const nlohmann::json* take(const char* key) {
    known_.push_back(key);
    return j_.is_object() && j_.contains(key) ? &j_.at(key) : nullptr;
  }
  std::vector<std::string>& problems() { return problems_; }
  void finish() {
    if (!j_.is_object()) return;
    for (const auto& [key, _] : j_.items()) {
      if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
      std::string valid;
      for (const auto& k : known_) valid += (valid.empty() ? "" : ", ") + k;
      problems_.push_back("preset '" + preset_ + "': unknown parameter '" + key + "' (valid: " +
                          (valid.empty() ? "none" : valid) + ")");
    }
  }

 private:
  const nlohmann::json& j_;
  std::string preset_;
  std::vector<std::string>& problems_;
  std::vector<std::string> known_;
};

}  // namespace

AttentionPlan attention_preset_streaming(const ModelConfig& c, const StreamingParams& p) {
  AttentionPlan plan = attention_plan_full(c, "streaming");
  HeadGroupPolicy g = make_policy(AttentionPolicy::ATTENTION_POLICY_STREAM);
  g.sink = p.sink;
  g.recent = p.recent;
  for (int32_t l = 0; l < c.n_layers; ++l) {
    // Sliding-window layers (Gemma 2/3 local layers) keep their window: it is already a recent window, and
    // narrowing it to sink + recent lost passkeys on Gemma 3 for no memory worth having (issue E10).
    if (c.layers[size_t(l)].sliding_window > 0) continue;
    for (AttentionPhase ph : {PREFILL, DECODE}) attention_plan_set(plan, l, ph, 0, c.n_kv_heads, g);
  }
  return plan;
}

AttentionPlan attention_preset_tidal(const ModelConfig& c, const TidalParams& p) {
  AttentionPlan plan = attention_plan_full(c, "tidal");
  const int32_t select = first_global_layer(c, p.select_layer);
  if (select < 0) return plan;  // no global layer to select at: the plan stays FULL
  int32_t reselect = -1;
  if (p.reselect_layer == TidalParams::RESELECT_AUTO) {
    reselect = first_global_layer(c, std::max(c.n_layers / 2, select + 1));
    // A re-selection needs a later global layer to use it; at the last one it would only cost a top-k.
    if (reselect >= 0 && first_global_layer(c, reselect + 1) < 0) reselect = -1;
  } else if (p.reselect_layer >= 0) {
    reselect = first_global_layer(c, p.reselect_layer);
  }
  HeadGroupPolicy sel = make_policy(AttentionPolicy::ATTENTION_POLICY_SELECT);
  sel.k = p.k;
  // Prefill stays dense (TidalDecode §3: the method targets decoding); decode: select, reuse, re-select, reuse.
  attention_plan_set(plan, select, DECODE, 0, c.n_kv_heads, sel);
  int32_t source = select;
  for (int32_t l = select + 1; l < c.n_layers; ++l) {
    if (c.layers[size_t(l)].sliding_window > 0) continue;  // local layers keep FULL (already window-bounded)
    if (l == reselect) {
      attention_plan_set(plan, l, DECODE, 0, c.n_kv_heads, sel);
      source = l;
      continue;
    }
    HeadGroupPolicy sp = make_policy(AttentionPolicy::ATTENTION_POLICY_SPARSE);
    sp.from = source;
    attention_plan_set(plan, l, DECODE, 0, c.n_kv_heads, sp);
  }
  return plan;
}

namespace {

std::vector<uint8_t> hylra_forced_full(const ModelConfig& c, int32_t dense_layers) {
  std::vector<uint8_t> forced(size_t(c.n_layers), 0);
  for (int32_t l = 0; l < c.n_layers; ++l) {
    // Sliding-window layers are already bounded by their window (as in the tidal preset).
    forced[size_t(l)] = l < dense_layers || c.layers[size_t(l)].sliding_window > 0;
  }
  return forced;
}

}  // namespace

AttentionPlan attention_plan_from_hylra(const ModelConfig& c, const HylraSolution& s, int32_t k,
                                        const std::string& name) {
  LCLLM_ASSERT(s.layers.size() == size_t(c.n_layers), "HyLRA solution does not match the model");
  AttentionPlan plan = attention_plan_full(c, name);
  for (int32_t l = 0; l < c.n_layers; ++l) {
    const HylraLayerChoice& ch = s.layers[size_t(l)];
    if (ch.choice == HylraChoice::HYLRA_SELECT) {
      HeadGroupPolicy g = make_policy(AttentionPolicy::ATTENTION_POLICY_SELECT);
      g.k = k;
      attention_plan_set(plan, l, DECODE, 0, c.n_kv_heads, g);
    } else if (ch.choice == HylraChoice::HYLRA_SPARSE) {
      HeadGroupPolicy g = make_policy(AttentionPolicy::ATTENTION_POLICY_SPARSE);
      g.from = ch.from;
      attention_plan_set(plan, l, DECODE, 0, c.n_kv_heads, g);
    }
  }
  return plan;
}

AttentionPlan attention_preset_hylra(const ModelConfig& c, const HylraParams& p) {
  const HylraProfile profile = p.profile ? *p.profile : hylra_default_profile(c.n_layers, p.dense_layers);
  HylraCosts costs;
  costs.sparse = std::min(1.0, double(p.k) / double(std::max(p.context, 1)));
  const std::vector<uint8_t> forced = hylra_forced_full(c, p.profile ? 0 : p.dense_layers);
  const HylraSolution s = hylra_solve(profile, p.budget * c.n_layers, costs, forced);
  return attention_plan_from_hylra(c, s, p.k, "hylra");
}

AttentionPlan attention_preset_retrieval(const ModelConfig& c, const RetrievalParams& p) {
  AttentionPlan plan = attention_plan_full(c, "retrieval");
  if (p.scores.empty()) {
    spdlog::warn("attention policy 'retrieval' has no retrieval scores for this model: every KV head keeps FULL "
                 "attention; run `lcllm calibrate MODEL --plan retrieval --out PLAN.json` and pass --policy PLAN.json");
    return plan;
  }
  LCLLM_ASSERT(p.scores.size() == size_t(c.n_layers) * size_t(c.n_kv_heads), "scores checked by the builder");
  HeadGroupPolicy stream = make_policy(AttentionPolicy::ATTENTION_POLICY_STREAM);
  stream.sink = p.sink;
  stream.recent = p.recent;
  for (int32_t l = 0; l < c.n_layers; ++l) {
    if (c.layers[size_t(l)].sliding_window > 0) continue;  // local layers keep their window (as in streaming)
    for (int32_t h = 0; h < c.n_kv_heads; ++h) {
      if (p.scores[size_t(l) * size_t(c.n_kv_heads) + size_t(h)] > p.threshold) continue;  // retrieval head: FULL
      for (AttentionPhase ph : {PREFILL, DECODE}) attention_plan_set(plan, l, ph, h, h + 1, stream);
    }
  }
  return plan;
}

AttentionPlan attention_preset_hip(const ModelConfig& c, const HipPresetParams& p) {
  AttentionPlan plan = attention_plan_full(c, "hip");
  HeadGroupPolicy g = make_policy(AttentionPolicy::ATTENTION_POLICY_HIP);
  g.hip = p.hip;
  HeadGroupPolicy prefill = g, decode = g;
  prefill.hip.dense_below = p.prefill_dense_below;
  prefill.hip.dense_tail = p.dense_tail;
  decode.hip.dense_tail = 0;  // one decode row: no prompt ends in a decode step
  decode.hip.dense_below = p.decode_dense_below;
  for (int32_t l = std::max(p.dense_layers, 0); l < c.n_layers; ++l) {
    if (c.layers[size_t(l)].sliding_window > 0) continue;  // local layers keep FULL (already window-bounded)
    attention_plan_set(plan, l, PREFILL, 0, c.n_kv_heads, prefill);
    attention_plan_set(plan, l, DECODE, 0, c.n_kv_heads, decode);
  }
  return plan;
}

std::vector<std::string> attention_preset_names() {
  return {"full", "streaming", "tidal", "hylra", "retrieval", "hip"};
}

AttentionPlan attention_preset_build(const std::string& name, const nlohmann::json& params, const ModelConfig& c,
                                     std::vector<std::string>& problems) {
  if (name == "full") {
    ParamReader r(params, name, problems);
    r.finish();
    return attention_plan_full(c, "full");
  }
  if (name == "streaming") {
    StreamingParams p;
    ParamReader r(params, name, problems);
    r.read("sink", p.sink, 0);
    r.read("recent", p.recent, 1);
    r.finish();
    return attention_preset_streaming(c, p);
  }
  if (name == "tidal") {
    TidalParams p;
    ParamReader r(params, name, problems);
    r.read("k", p.k, 1);
    r.read("select_layer", p.select_layer, 0);
    r.read("reselect_layer", p.reselect_layer, TidalParams::RESELECT_NONE);
    r.finish();
    // A layer index past the model is not an error: a 2-layer model has nothing to select at, and the plan
    // stays FULL (the same file serves every model); `lcllm policy show` makes that visible.
    if (p.reselect_layer >= 0 && p.reselect_layer <= p.select_layer) {
      problems.push_back("preset 'tidal': params.reselect_layer = " + std::to_string(p.reselect_layer) +
                         " must be after select_layer = " + std::to_string(p.select_layer) +
                         " (or -1 for no re-selection)");
    }
    return attention_preset_tidal(c, p);
  }
  if (name == "hylra") {
    HylraParams p;
    ParamReader r(params, name, problems);
    r.read("k", p.k, 1);
    r.read("dense_layers", p.dense_layers, 0);
    r.read("context", p.context, 1);
    r.read_double("budget", p.budget, 0.0, 1.0);
    if (const nlohmann::json* prof = r.take("profile")) {
      try {
        p.profile = hylra_profile_from_json(*prof, "preset 'hylra': params.profile");
        if (p.profile->n_layers != c.n_layers) {
          problems.push_back("preset 'hylra': params.profile has " + std::to_string(p.profile->n_layers) +
                             " layers but the model has " + std::to_string(c.n_layers));
          p.profile.reset();
        }
      } catch (const Error& e) {
        problems.push_back(e.what());
      }
    }
    r.finish();
    return attention_preset_hylra(c, p);
  }
  if (name == "retrieval") {
    RetrievalParams p;
    ParamReader r(params, name, problems);
    r.read_double("threshold", p.threshold, 0.0, 1.0);
    r.read("sink", p.sink, 0);
    r.read("recent", p.recent, 1);
    if (const nlohmann::json* s = r.take("scores")) {
      // [n_layers][n_kv_heads] numbers in [0, 1] (the calibration report's retrieval_scores).
      bool ok = s->is_array() && s->size() == size_t(c.n_layers);
      for (size_t l = 0; ok && l < s->size(); ++l) {
        const auto& row = (*s)[l];
        ok = row.is_array() && row.size() == size_t(c.n_kv_heads);
        for (size_t h = 0; ok && h < row.size(); ++h) {
          ok = row[h].is_number() && row[h].get<double>() >= 0 && row[h].get<double>() <= 1;
          if (ok) p.scores.push_back(row[h].get<double>());
        }
      }
      if (!ok) {
        p.scores.clear();
        problems.push_back("preset 'retrieval': params.scores must be " + std::to_string(c.n_layers) + " rows (layers) of " +
                           std::to_string(c.n_kv_heads) + " numbers in [0, 1] (KV heads)");
      }
    }
    r.finish();
    return attention_preset_retrieval(c, p);
  }
  if (name == "hip") {
    HipPresetParams p;
    ParamReader r(params, name, problems);
    r.read("k", p.hip.k, 1);
    r.read("block_size_q", p.hip.block_size_q, 1);
    r.read("block_size_k", p.hip.block_size_k, 1);
    r.read("sink", p.hip.sink, 0);
    r.read("recent", p.hip.recent, 0);
    r.read("refresh_every", p.hip.refresh_every, 1);
    r.read("coarse_refresh_every", p.hip.coarse_refresh_every, 0);
    r.read("coarse_piece_keys", p.hip.coarse_piece_keys, 1);
    r.read("dense_layers", p.dense_layers, 0);
    r.read("prefill_dense_below", p.prefill_dense_below, 0);
    r.read("decode_dense_below", p.decode_dense_below, 0);
    r.read("dense_tail", p.dense_tail, 0);
    r.finish();
    hip_refresh_problems(p.hip, "preset 'hip': params", problems);
    if (p.hip.k % p.hip.block_size_k != 0) {
      problems.push_back("preset 'hip': params.k = " + std::to_string(p.hip.k) + " must be a multiple of block_size_k = " +
                         std::to_string(p.hip.block_size_k));
    }
    return attention_preset_hip(c, p);
  }
  std::string known;
  for (const auto& p : attention_preset_names()) known += (known.empty() ? "" : ", ") + p;
  problems.push_back("unknown attention policy preset '" + name + "' (available: " + known +
                     "; or a path to a JSON plan file)");
  return attention_plan_full(c, name);
}

AttentionPlan attention_preset_resolve(const std::string& name, const nlohmann::json& params, const ModelConfig& c) {
  std::vector<std::string> problems;
  AttentionPlan plan = attention_preset_build(name, params, c, problems);
  if (problems.size() == 1 && problems[0].starts_with("unknown attention policy preset")) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, problems[0]);
  }
  if (!problems.empty()) {
    std::string msg = "preset '" + name + "': invalid parameters (" + std::to_string(problems.size()) + " problem" +
                      (problems.size() > 1 ? "s" : "") + "):";
    for (const auto& p : problems) msg += "\n  - " + p;
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, msg);
  }
  return plan;
}

}  // namespace lcllm
