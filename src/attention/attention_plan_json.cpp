#include "attention/attention_plan_json.h"

#include "io/json_file.h"
#include "io/text_file.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "attention/attention_presets.h"
#include "lcllm/error.h"

namespace lcllm {

namespace {

constexpr AttentionPhase PREFILL = AttentionPhase::ATTENTION_PHASE_PREFILL;
constexpr AttentionPhase DECODE = AttentionPhase::ATTENTION_PHASE_DECODE;

const AttentionPolicy kPolicies[] = {AttentionPolicy::ATTENTION_POLICY_FULL, AttentionPolicy::ATTENTION_POLICY_SELECT,
                                     AttentionPolicy::ATTENTION_POLICY_SPARSE, AttentionPolicy::ATTENTION_POLICY_STREAM,
                                     AttentionPolicy::ATTENTION_POLICY_HIP};

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
  return s;
}

// ---- writing ----

nlohmann::ordered_json policy_to_json(const HeadGroupPolicy& g) {
  nlohmann::ordered_json j;
  j["type"] = attention_policy_name(g.policy);
  switch (g.policy) {
    case AttentionPolicy::ATTENTION_POLICY_FULL: return "FULL";
    case AttentionPolicy::ATTENTION_POLICY_SELECT: j["k"] = g.k; break;
    case AttentionPolicy::ATTENTION_POLICY_SPARSE:
      j["from"] = g.from;
      j["sink"] = g.sink;
      j["recent"] = g.recent;
      break;
    case AttentionPolicy::ATTENTION_POLICY_STREAM:
      j["sink"] = g.sink;
      j["recent"] = g.recent;
      break;
    case AttentionPolicy::ATTENTION_POLICY_HIP:
      j["k"] = g.hip.k;
      j["block_size_q"] = g.hip.block_size_q;
      j["block_size_k"] = g.hip.block_size_k;
      j["sink"] = g.hip.sink;
      j["recent"] = g.hip.recent;
      j["refresh_every"] = g.hip.refresh_every;
      if (g.hip.dense_below > 0) j["dense_below"] = g.hip.dense_below;
      if (g.hip.dense_tail > 0) j["dense_tail"] = g.hip.dense_tail;
      if (g.hip.coarse_refresh_every > 0) {
        j["coarse_refresh_every"] = g.hip.coarse_refresh_every;
        j["coarse_piece_keys"] = g.hip.coarse_piece_keys;
      }
      break;
  }
  return j;
}

// ---- reading ----

// Reads one policy value ("FULL" or {"type": ..., params}); problems are prefixed with `at`.
bool policy_from_json(const nlohmann::json& j, const std::string& at, HeadGroupPolicy& g,
                      std::vector<std::string>& problems) {
  std::vector<std::string> names;
  for (AttentionPolicy p : kPolicies) names.push_back(attention_policy_name(p));
  const nlohmann::json* type = nullptr;
  if (j.is_string()) {
    type = &j;
  } else if (j.is_object() && j.contains("type")) {
    type = &j.at("type");
  }
  if (!type || !type->is_string()) {
    problems.push_back(at + ": policy must be a string or an object with \"type\" (valid types: " + join(names) + ")");
    return false;
  }
  const std::string t = type->get<std::string>();
  const auto it = std::find(names.begin(), names.end(), t);
  if (it == names.end()) {
    problems.push_back(at + ": unknown policy type '" + t + "' (valid: " + join(names) + ")");
    return false;
  }
  g = HeadGroupPolicy{};
  g.policy = kPolicies[it - names.begin()];
  // Parameters: key, where it goes, default, whether it is required.
  struct Param {
    const char* key;
    int32_t* dst;
    bool required;
  };
  std::vector<Param> params;
  switch (g.policy) {
    case AttentionPolicy::ATTENTION_POLICY_FULL: break;
    case AttentionPolicy::ATTENTION_POLICY_SELECT: params = {{"k", &g.k, true}}; break;
    case AttentionPolicy::ATTENTION_POLICY_SPARSE:
      params = {{"from", &g.from, true}, {"sink", &g.sink, false}, {"recent", &g.recent, false}};
      break;
    case AttentionPolicy::ATTENTION_POLICY_STREAM:
      g.sink = StreamingParams{}.sink;
      g.recent = StreamingParams{}.recent;
      params = {{"sink", &g.sink, false}, {"recent", &g.recent, false}};
      break;
    case AttentionPolicy::ATTENTION_POLICY_HIP:
      params = {{"k", &g.hip.k, false},           {"block_size_q", &g.hip.block_size_q, false},
                {"block_size_k", &g.hip.block_size_k, false}, {"sink", &g.hip.sink, false},
                {"recent", &g.hip.recent, false}, {"refresh_every", &g.hip.refresh_every, false},
                {"coarse_refresh_every", &g.hip.coarse_refresh_every, false},
                {"coarse_piece_keys", &g.hip.coarse_piece_keys, false}, {"dense_below", &g.hip.dense_below, false},
                {"dense_tail", &g.hip.dense_tail, false}};
      break;
  }
  std::vector<std::string> valid;
  for (const auto& p : params) valid.push_back(p.key);
  bool ok = true;
  if (j.is_object()) {
    for (const auto& [key, _] : j.items()) {
      if (key == "type" || std::find(valid.begin(), valid.end(), key) != valid.end()) continue;
      problems.push_back(at + ": " + t + " has no parameter '" + key + "' (valid: " +
                         (valid.empty() ? std::string("none") : join(valid)) + ")");
      ok = false;
    }
  }
  for (const auto& p : params) {
    if (!j.is_object() || !j.contains(p.key)) {
      if (p.required) {
        problems.push_back(at + ": " + t + "." + p.key + " is required (" + t + " takes " + join(valid) + ")");
        ok = false;
      }
      continue;
    }
    const auto& v = j.at(p.key);
    if (!v.is_number_integer() || v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX) {
      problems.push_back(at + ": " + t + "." + p.key + " = " + v.dump() + " must be an integer");
      ok = false;
      continue;
    }
    *p.dst = v.get<int32_t>();
  }
  return ok;
}

// "layers": 3 | [3, 5] | "3-7" | "all" -> layer list; out-of-range layers are problems.
bool layers_from_json(const nlohmann::json& j, int32_t n_layers, const std::string& at, std::vector<int32_t>& out,
                      std::vector<std::string>& problems) {
  const std::string range = n_layers > 0 ? "0.." + std::to_string(n_layers - 1) : "none";
  auto add = [&](int64_t l) {
    if (l < 0 || l >= n_layers) {
      problems.push_back(at + ": layer " + std::to_string(l) + " is out of range (the model has layers " + range + ")");
      return false;
    }
    out.push_back(int32_t(l));
    return true;
  };
  const std::string usage = " (valid: a layer index, a list of indices, \"A-B\" or \"all\")";
  if (j.is_number_integer()) return add(j.get<int64_t>());
  if (j.is_array()) {
    bool ok = true;
    for (const auto& e : j) {
      if (!e.is_number_integer()) {
        problems.push_back(at + ": layers entry " + e.dump() + " is not an integer" + usage);
        ok = false;
      } else {
        ok = add(e.get<int64_t>()) && ok;
      }
    }
    return ok;
  }
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    if (s == "all") {
      for (int32_t l = 0; l < n_layers; ++l) out.push_back(l);
      return true;
    }
    const size_t dash = s.find('-');
    long long a = -1, b = -1;
    try {
      size_t used_a = 0, used_b = 0;
      if (dash != std::string::npos && dash > 0) {
        a = std::stoll(s.substr(0, dash), &used_a);
        b = std::stoll(s.substr(dash + 1), &used_b);
        if (used_a != dash || used_b != s.size() - dash - 1) a = -1;
      }
    } catch (const std::exception&) {
      a = -1;
    }
    if (a < 0 || b < a) {
      problems.push_back(at + ": layers \"" + s + "\" is not a range" + usage);
      return false;
    }
    // A range reaching past the model is one problem, not one per layer: "1-36666666666666" (found by fuzz_plan)
    // must not loop over 3.6e13 layers.
    if (b >= n_layers) {
      problems.push_back(at + ": layers \"" + s + "\" reach past the model (it has layers " + range + ")");
      return false;
    }
    for (long long l = a; l <= b; ++l) out.push_back(int32_t(l));
    return true;
  }
  problems.push_back(at + ": layers " + j.dump() + " is not a layer selection" + usage);
  return false;
}

}  // namespace

nlohmann::ordered_json attention_plan_to_json(const AttentionPlan& plan) {
  nlohmann::ordered_json j;
  j["name"] = plan.name;
  j["n_layers"] = plan.layers.size();
  j["n_kv_heads"] = plan.n_kv_heads;
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (size_t l = 0; l < plan.layers.size(); ++l) {
    const LayerPlan& L = plan.layers[l];
    const bool same = L.prefill == L.decode;
    for (AttentionPhase ph : {PREFILL, DECODE}) {
      if (same && ph == DECODE) break;
      for (const auto& g : L.phase(ph)) {
        nlohmann::ordered_json e;
        e["layers"] = l;
        e["phase"] = same ? "both" : attention_phase_name(ph);
        e["kv_heads"] = {g.kv_head_begin, g.kv_head_end};
        e["policy"] = policy_to_json(g);
        layers.push_back(e);
      }
    }
  }
  j["layers"] = layers;
  return j;
}

AttentionPlan attention_plan_from_json(const nlohmann::json& j, const ModelConfig& c, const std::string& source) {
  std::vector<std::string> problems;
  auto fail = [&]() {
    std::string msg = source + ": invalid attention plan (" + std::to_string(problems.size()) + " problem" +
                      (problems.size() > 1 ? "s" : "") + "):";
    for (const auto& p : problems) msg += "\n  - " + p;
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, msg);
  };
  if (!j.is_object()) {
    problems.push_back("the plan must be a JSON object");
    fail();
  }
  const std::vector<std::string> top_keys = {"name",     "description", "calibration", "preset",
                                            "params",   "n_layers",    "n_kv_heads",  "layers"};
  for (const auto& [key, _] : j.items()) {
    if (std::find(top_keys.begin(), top_keys.end(), key) == top_keys.end()) {
      problems.push_back("unknown key '" + key + "' (valid: " + join(top_keys) + ")");
    }
  }
  auto check_count = [&](const char* key, int32_t expected) {
    if (!j.contains(key)) return;
    if (!j.at(key).is_number_integer() || j.at(key).get<int64_t>() != expected) {
      problems.push_back(std::string(key) + " = " + j.at(key).dump() + " does not match the model (" +
                         std::to_string(expected) + ")");
    }
  };
  check_count("n_layers", c.n_layers);
  check_count("n_kv_heads", c.n_kv_heads);

  // The base plan: a preset (with params) or every layer FULL.
  AttentionPlan plan = attention_plan_full(c, "plan");
  if (j.contains("preset")) {
    if (!j.at("preset").is_string()) {
      problems.push_back("preset " + j.at("preset").dump() + " must be a string (valid: " +
                         join(attention_preset_names()) + ")");
    } else {
      const nlohmann::json params = j.contains("params") ? j.at("params") : nlohmann::json::object();
      plan = attention_preset_build(j.at("preset").get<std::string>(), params, c, problems);
    }
  } else if (j.contains("params")) {
    problems.push_back("params is given without a preset (params configure the preset named by \"preset\")");
  }
  if (j.contains("name")) {
    if (j.at("name").is_string()) {
      plan.name = j.at("name").get<std::string>();
    } else {
      problems.push_back("name " + j.at("name").dump() + " must be a string");
    }
  }

  // Overrides, in order.
  if (j.contains("layers")) {
    const auto& entries = j.at("layers");
    if (!entries.is_array()) {
      problems.push_back("layers must be an array of overrides {\"layers\", \"phase\", \"kv_heads\", \"policy\"}");
    } else {
      for (size_t i = 0; i < entries.size(); ++i) {
        const auto& e = entries[i];
        std::string at = "layers[" + std::to_string(i) + "]";
        if (!e.is_object()) {
          problems.push_back(at + ": must be an object with \"layers\", \"phase\", \"kv_heads\", \"policy\"");
          continue;
        }
        if (e.contains("layers")) at += " (layers " + e.at("layers").dump() + ")";
        const std::vector<std::string> keys = {"layers", "phase", "kv_heads", "policy"};
        bool ok = true;
        for (const auto& [key, _] : e.items()) {
          if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
            problems.push_back(at + ": unknown key '" + key + "' (valid: " + join(keys) + ")");
            ok = false;
          }
        }
        std::vector<int32_t> layers;
        if (!e.contains("layers")) {
          problems.push_back(at + ": \"layers\" is required (a layer index, a list, \"A-B\" or \"all\")");
          ok = false;
        } else {
          ok = layers_from_json(e.at("layers"), c.n_layers, at, layers, problems) && ok;
        }
        std::vector<AttentionPhase> phases = {PREFILL, DECODE};
        if (e.contains("phase")) {
          const auto& p = e.at("phase");
          const std::string s = p.is_string() ? p.get<std::string>() : p.dump();
          if (s == "prefill") {
            phases = {PREFILL};
          } else if (s == "decode") {
            phases = {DECODE};
          } else if (s != "both") {
            problems.push_back(at + ": phase '" + s + "' is not valid (valid: prefill, decode, both)");
            ok = false;
          }
        }
        int32_t kv_begin = 0, kv_end = c.n_kv_heads;
        if (e.contains("kv_heads")) {
          const auto& kh = e.at("kv_heads");
          if (!kh.is_array() || kh.size() != 2 || !kh[0].is_number_integer() || !kh[1].is_number_integer() ||
              kh[0].get<int64_t>() < 0 || kh[1].get<int64_t>() <= kh[0].get<int64_t>() ||
              kh[1].get<int64_t>() > c.n_kv_heads) {
            problems.push_back(at + ": kv_heads " + kh.dump() + " must be [begin, end) with 0 <= begin < end <= " +
                               std::to_string(c.n_kv_heads) + " (the model's KV heads)");
            ok = false;
          } else {
            kv_begin = kh[0].get<int32_t>();
            kv_end = kh[1].get<int32_t>();
          }
        }
        HeadGroupPolicy g;
        if (!e.contains("policy")) {
          problems.push_back(at + ": \"policy\" is required");
          ok = false;
        } else {
          ok = policy_from_json(e.at("policy"), at + ", policy", g, problems) && ok;
        }
        if (!ok) continue;
        for (int32_t l : layers) {
          for (AttentionPhase ph : phases) attention_plan_set(plan, l, ph, kv_begin, kv_end, g);
        }
      }
    }
  }
  // Semantic problems of the result (SPARSE sources, ranges), named by layer.
  for (auto& p : attention_plan_problems(plan, c)) problems.push_back(std::move(p));
  if (!problems.empty()) fail();
  return plan;
}

AttentionPlan attention_plan_load(const std::string& path, const ModelConfig& c) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw Error(ErrorKind::ERROR_KIND_NOT_FOUND,
                "attention plan file '" + path + "' does not exist (presets: " + join(attention_preset_names()) + ")");
  }
  const std::string text = read_text_file(path, "attention plan file", kMaxConfigFileBytes);
  const nlohmann::json j = json_parse_bounded(text, path);
  AttentionPlan plan = attention_plan_from_json(j, c, path);
  if (!j.contains("name")) plan.name = std::filesystem::path(path).stem().string();
  return plan;
}

}  // namespace lcllm
