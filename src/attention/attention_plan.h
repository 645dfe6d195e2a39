// AttentionPlan: for every layer, phase (prefill/decode) and KV-head group, how attention is computed.
//
// E1 defines the shape and the first policy, FULL (exact causal attention, sliding windows as the model
// declares). E4 adds SELECT{k}, SPARSE{from}, HIP{...} and STREAM{sink, recent}; a plan is data, and the
// attention op receives index lists / masks without knowing which paper chose them (ARCHITECTURE.md §4).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/model_config.h"

namespace lcllm {

enum class AttentionPolicy { ATTENTION_POLICY_FULL };

enum class AttentionPhase { ATTENTION_PHASE_PREFILL = 0, ATTENTION_PHASE_DECODE = 1 };

struct HeadGroupPolicy {
  int32_t kv_head_begin = 0;  // KV heads [begin, end) use this policy
  int32_t kv_head_end = 0;
  AttentionPolicy policy = AttentionPolicy::ATTENTION_POLICY_FULL;
};

struct LayerPlan {
  std::vector<HeadGroupPolicy> prefill;  // groups partition [0, n_kv_heads)
  std::vector<HeadGroupPolicy> decode;
};

struct AttentionPlan {
  std::string name;
  std::vector<LayerPlan> layers;  // [n_layers]
};

const char* attention_policy_name(AttentionPolicy p);
// Resolves a preset name for a model. E1 knows "full"; an unknown name gives an error listing the known ones.
AttentionPlan attention_plan_resolve(const std::string& preset, const ModelConfig& config);
std::vector<std::string> attention_plan_presets();

}  // namespace lcllm
