#include "attention/attention_presets.h"

#include <algorithm>

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

std::vector<std::string> attention_preset_names() { return {"full", "streaming", "tidal"}; }

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
  if (name == "hylra" || name == "retrieval" || name == "hip") {
    throw Error(ErrorKind::ERROR_KIND_UNSUPPORTED,
                "attention policy preset '" + name +
                    "' is not implemented yet (issue 5, E4: HyLRA, retrieval heads and HiP come with calibration); "
                    "available now: full, streaming, tidal, or a JSON plan file");
  }
  std::string known;
  for (const auto& p : attention_preset_names()) known += (known.empty() ? "" : ", ") + p;
  problems.push_back("unknown attention policy preset '" + name + "' (available: " + known +
                     "; planned: hylra, retrieval, hip; or a path to a JSON plan file)");
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
