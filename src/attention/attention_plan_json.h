// JSON plan files (configs/policies/*.json; schema in docs/POLICIES.md):
//
//   { "name": "...", "description": "...",            optional
//     "preset": "tidal", "params": {"k": 2048},         optional base plan (default: every layer FULL)
//     "n_layers": 32, "n_kv_heads": 8,                  optional, checked against the model
//     "layers": [                                       overrides, applied in order
//       {"layers": 3 | [3, 5] | "3-7" | "all", "phase": "prefill" | "decode" | "both",
//        "kv_heads": [begin, end], "policy": "FULL" | {"type": "SELECT", "k": 64} } ] }
//
// attention_plan_to_json spells a plan out completely (no preset), so any plan round-trips.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "attention/attention_plan.h"

namespace lcllm {

nlohmann::ordered_json attention_plan_to_json(const AttentionPlan& plan);
// Builds and validates a plan; throws ERROR_KIND_INVALID_ARGUMENT listing every problem (syntax and semantics),
// each naming the entry or layer, the field and the valid values. `source` prefixes the message.
AttentionPlan attention_plan_from_json(const nlohmann::json& j, const ModelConfig& config, const std::string& source);
// Reads a plan file (NOT_FOUND / INVALID_FILE for unreadable or non-JSON files); the name defaults to the file stem.
AttentionPlan attention_plan_load(const std::string& path, const ModelConfig& config);

}  // namespace lcllm
