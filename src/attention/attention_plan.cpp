#include "attention/attention_plan.h"

#include <algorithm>

#include "attention/attention_plan_json.h"
#include "attention/attention_presets.h"
#include "lcllm/error.h"

namespace lcllm {

const char* attention_policy_name(AttentionPolicy p) {
  switch (p) {
    case AttentionPolicy::ATTENTION_POLICY_FULL: return "FULL";
    case AttentionPolicy::ATTENTION_POLICY_SELECT: return "SELECT";
    case AttentionPolicy::ATTENTION_POLICY_SPARSE: return "SPARSE";
    case AttentionPolicy::ATTENTION_POLICY_STREAM: return "STREAM";
    case AttentionPolicy::ATTENTION_POLICY_HIP: return "HIP";
  }
  return "?";
}

const char* attention_phase_name(AttentionPhase p) {
  return p == AttentionPhase::ATTENTION_PHASE_PREFILL ? "prefill" : "decode";
}

const HeadGroupPolicy& attention_plan_group(const AttentionPlan& plan, int32_t layer, AttentionPhase phase,
                                            int32_t kv_head) {
  for (const auto& g : plan.layers[size_t(layer)].phase(phase)) {
    if (g.kv_head_begin <= kv_head && kv_head < g.kv_head_end) return g;
  }
  LCLLM_ASSERT(false, "plan groups do not cover every KV head (validate the plan first)");
  return plan.layers[0].prefill[0];
}

std::string attention_group_describe(const HeadGroupPolicy& g) {
  const std::string name = attention_policy_name(g.policy);
  auto kv = [](const char* key, int32_t v) { return std::string(key) + "=" + std::to_string(v); };
  switch (g.policy) {
    case AttentionPolicy::ATTENTION_POLICY_FULL: return name;
    case AttentionPolicy::ATTENTION_POLICY_SELECT: return name + "{" + kv("k", g.k) + "}";
    case AttentionPolicy::ATTENTION_POLICY_SPARSE: {
      std::string s = name + "{" + kv("from", g.from);
      if (g.sink) s += ", " + kv("sink", g.sink);
      if (g.recent) s += ", " + kv("recent", g.recent);
      return s + "}";
    }
    case AttentionPolicy::ATTENTION_POLICY_STREAM:
      return name + "{" + kv("sink", g.sink) + ", " + kv("recent", g.recent) + "}";
    case AttentionPolicy::ATTENTION_POLICY_HIP: {
      const HipParams& h = g.hip;
      return name + "{" + kv("k", h.k) + ", " + kv("block_size_q", h.block_size_q) + ", " +
             kv("block_size_k", h.block_size_k) + ", " + kv("sink", h.sink) + ", " + kv("recent", h.recent) + ", " +
             kv("refresh_every", h.refresh_every) +
             (h.coarse_refresh_every > 0 ? ", " + kv("coarse_refresh_every", h.coarse_refresh_every) + ", " +
                                               kv("coarse_piece_keys", h.coarse_piece_keys)
                                         : std::string()) +
             (h.dense_below > 0 ? ", " + kv("dense_below", h.dense_below) : std::string()) +
             (h.dense_tail > 0 ? ", " + kv("dense_tail", h.dense_tail) : std::string()) +
             "}";
    }
  }
  return name;
}

AttentionPlan attention_plan_full(const ModelConfig& config, const std::string& name) {
  AttentionPlan plan;
  plan.name = name;
  plan.n_kv_heads = config.n_kv_heads;
  HeadGroupPolicy all;
  all.kv_head_begin = 0;
  all.kv_head_end = config.n_kv_heads;
  plan.layers.assign(size_t(config.n_layers), LayerPlan{{all}, {all}});
  return plan;
}

namespace {

bool same_policy(HeadGroupPolicy a, HeadGroupPolicy b) {
  a.kv_head_begin = b.kv_head_begin = 0;
  a.kv_head_end = b.kv_head_end = 0;
  return a == b;
}

}  // namespace

void attention_plan_set(AttentionPlan& plan, int32_t layer, AttentionPhase phase, int32_t kv_begin, int32_t kv_end,
                        const HeadGroupPolicy& policy) {
  LCLLM_ASSERT(layer >= 0 && size_t(layer) < plan.layers.size(), "layer out of range");
  LCLLM_ASSERT(0 <= kv_begin && kv_begin < kv_end && kv_end <= plan.n_kv_heads, "kv head range out of range");
  std::vector<HeadGroupPolicy>& groups = plan.layers[size_t(layer)].phase(phase);
  // Expand to one entry per head, overwrite, then merge runs of equal policies.
  std::vector<HeadGroupPolicy> per_head(size_t(plan.n_kv_heads));
  for (const auto& g : groups) {
    for (int32_t h = g.kv_head_begin; h < g.kv_head_end; ++h) per_head[size_t(h)] = g;
  }
  for (int32_t h = kv_begin; h < kv_end; ++h) per_head[size_t(h)] = policy;
  groups.clear();
  for (int32_t h = 0; h < plan.n_kv_heads; ++h) {
    if (!groups.empty() && same_policy(groups.back(), per_head[size_t(h)])) {
      groups.back().kv_head_end = h + 1;
      continue;
    }
    HeadGroupPolicy g = per_head[size_t(h)];
    g.kv_head_begin = h;
    g.kv_head_end = h + 1;
    groups.push_back(g);
  }
}

bool attention_plan_is_full(const AttentionPlan& plan) {
  for (const auto& L : plan.layers) {
    for (const auto* groups : {&L.prefill, &L.decode}) {
      for (const auto& g : *groups) {
        if (g.policy != AttentionPolicy::ATTENTION_POLICY_FULL) return false;
      }
    }
  }
  return true;
}

namespace {

// The group covering kv head h, or nullptr.
const HeadGroupPolicy* group_of(const std::vector<HeadGroupPolicy>& groups, int32_t h) {
  for (const auto& g : groups) {
    if (g.kv_head_begin <= h && h < g.kv_head_end) return &g;
  }
  return nullptr;
}

bool provides_selection(const HeadGroupPolicy* g) {
  return g && (g->policy == AttentionPolicy::ATTENTION_POLICY_SELECT ||
               g->policy == AttentionPolicy::ATTENTION_POLICY_SPARSE);
}

}  // namespace

void hip_refresh_problems(const HipParams& p, const std::string& at, std::vector<std::string>& problems) {
  if (p.dense_below < 0) problems.push_back(at + ".dense_below = " + std::to_string(p.dense_below) + " must be >= 0");
  if (p.dense_tail < 0) problems.push_back(at + ".dense_tail = " + std::to_string(p.dense_tail) + " must be >= 0");
  if (p.coarse_refresh_every > 0 && p.coarse_piece_keys < p.block_size_k) {
    problems.push_back(at + ".coarse_piece_keys = " + std::to_string(p.coarse_piece_keys) +
                       " must be at least block_size_k = " + std::to_string(p.block_size_k) +
                       " (a coarse stage's pieces are whole blocks)");
  }
  if (p.coarse_refresh_every != 0 && p.coarse_refresh_every <= p.refresh_every) {
    problems.push_back(at + ".coarse_refresh_every = " + std::to_string(p.coarse_refresh_every) +
                       " must be 0 (off) or more than refresh_every = " + std::to_string(p.refresh_every));
  }
}

std::vector<std::string> attention_plan_problems(const AttentionPlan& plan, const ModelConfig& config) {
  std::vector<std::string> problems;
  if (plan.layers.size() != size_t(config.n_layers)) {
    problems.push_back("the plan has " + std::to_string(plan.layers.size()) + " layers but the model has " +
                       std::to_string(config.n_layers));
    return problems;
  }
  if (plan.n_kv_heads != config.n_kv_heads) {
    problems.push_back("the plan has " + std::to_string(plan.n_kv_heads) + " KV heads but the model has " +
                       std::to_string(config.n_kv_heads));
    return problems;
  }
  const int32_t H = config.n_kv_heads;
  for (int32_t l = 0; l < config.n_layers; ++l) {
    for (AttentionPhase ph : {AttentionPhase::ATTENTION_PHASE_PREFILL, AttentionPhase::ATTENTION_PHASE_DECODE}) {
      const auto& groups = plan.layers[size_t(l)].phase(ph);
      const std::string where = "layer " + std::to_string(l) + ", " + attention_phase_name(ph);
      // The groups must partition [0, H) in order.
      int32_t next = 0;
      bool partition_ok = true;
      for (const auto& g : groups) {
        if (g.kv_head_begin != next || g.kv_head_end <= g.kv_head_begin || g.kv_head_end > H) partition_ok = false;
        next = g.kv_head_end;
      }
      if (!partition_ok || next != H) {
        problems.push_back(where + ": the head groups must partition KV heads [0, " + std::to_string(H) +
                           ") in ascending order");
        continue;
      }
      for (const auto& g : groups) {
        const std::string at = where + ", kv heads " + std::to_string(g.kv_head_begin) + "-" +
                               std::to_string(g.kv_head_end - 1) + ": " + attention_policy_name(g.policy);
        switch (g.policy) {
          case AttentionPolicy::ATTENTION_POLICY_FULL: break;
          case AttentionPolicy::ATTENTION_POLICY_SELECT:
            if (g.k < 1) problems.push_back(at + ".k = " + std::to_string(g.k) + " must be >= 1");
            break;
          case AttentionPolicy::ATTENTION_POLICY_SPARSE: {
            if (g.sink < 0) problems.push_back(at + ".sink = " + std::to_string(g.sink) + " must be >= 0");
            if (g.recent < 0) problems.push_back(at + ".recent = " + std::to_string(g.recent) + " must be >= 0");
            if (g.from < 0 || g.from >= l) {
              problems.push_back(at + ".from = " + std::to_string(g.from) + " must name an earlier layer (" +
                                 (l == 0 ? std::string("none: layer 0 has no earlier layer") : "0.." + std::to_string(l - 1)) + ")");
              break;
            }
            const auto& src = plan.layers[size_t(g.from)].phase(ph);
            for (int32_t h = g.kv_head_begin; h < g.kv_head_end; ++h) {
              const HeadGroupPolicy* s = group_of(src, h);
              if (!provides_selection(s)) {
                problems.push_back(at + ".from = " + std::to_string(g.from) + ": layer " + std::to_string(g.from) +
                                   " does not select for kv head " + std::to_string(h) + " in " +
                                   attention_phase_name(ph) + " (it is " +
                                   (s ? attention_policy_name(s->policy) : "?") + "; valid sources: SELECT or SPARSE)");
                break;
              }
            }
            break;
          }
          case AttentionPolicy::ATTENTION_POLICY_STREAM:
            if (g.sink < 0) problems.push_back(at + ".sink = " + std::to_string(g.sink) + " must be >= 0");
            if (g.recent < 1)
              problems.push_back(at + ".recent = " + std::to_string(g.recent) + " must be >= 1 (the query sees itself)");
            break;
          case AttentionPolicy::ATTENTION_POLICY_HIP: {
            const HipParams& p = g.hip;
            auto positive = [&](const char* key, int32_t v) {
              if (v < 1) problems.push_back(at + "." + key + " = " + std::to_string(v) + " must be >= 1");
            };
            positive("k", p.k);
            positive("block_size_q", p.block_size_q);
            positive("block_size_k", p.block_size_k);
            positive("refresh_every", p.refresh_every);
            positive("coarse_piece_keys", p.coarse_piece_keys);
            hip_refresh_problems(p, at, problems);
            if (p.sink < 0) problems.push_back(at + ".sink = " + std::to_string(p.sink) + " must be >= 0");
            if (p.recent < 0) problems.push_back(at + ".recent = " + std::to_string(p.recent) + " must be >= 0");
            if (p.block_size_k >= 1 && p.k >= 1 && p.k % p.block_size_k != 0) {
              problems.push_back(at + ".k = " + std::to_string(p.k) + " must be a multiple of block_size_k = " +
                                 std::to_string(p.block_size_k));
            }
            break;
          }
        }
      }
    }
  }
  return problems;
}

void attention_plan_validate(const AttentionPlan& plan, const ModelConfig& config, const std::string& source) {
  const std::vector<std::string> problems = attention_plan_problems(plan, config);
  if (problems.empty()) return;
  std::string msg = source + ": invalid attention plan (" + std::to_string(problems.size()) + " problem" +
                    (problems.size() > 1 ? "s" : "") + "):";
  for (const auto& p : problems) msg += "\n  - " + p;
  throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, msg);
}

AttentionPlan attention_plan_resolve(const std::string& name_or_file, const ModelConfig& config) {
  const bool is_file = name_or_file.find('/') != std::string::npos ||
                       (name_or_file.size() > 5 && name_or_file.ends_with(".json"));
  AttentionPlan plan = is_file ? attention_plan_load(name_or_file, config)
                               : attention_preset_resolve(name_or_file, nlohmann::json::object(), config);
  attention_plan_validate(plan, config, is_file ? name_or_file : "preset '" + name_or_file + "'");
  return plan;
}

std::vector<std::string> attention_plan_presets() { return attention_preset_names(); }

}  // namespace lcllm
