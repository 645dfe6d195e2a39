// config.json -> ModelConfig. One file per architecture family (llama.cpp, gemma.cpp, qwen.cpp) says how the
// family differs; what all families share (sizes, rope parsing, layer types) lives in common.cpp.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/model_config.h"
#include "models/config_reader.h"

namespace lcllm {

// Throws lcllm::Error listing every problem (unsupported model_type, missing or invalid fields).
ModelConfig model_config_from_json(const nlohmann::json& j, const std::string& path);
// Accepts a model directory (reads DIR/config.json) or the path of a config.json itself.
ModelConfig model_config_load(const std::string& model_path);
// The model_type values lcllm implements, for error messages and --help.
std::vector<std::string> model_config_supported_types();

// ---- shared by the family files ----------------------------------------------------------------
void model_config_read_common(ConfigReader& r, ModelConfig& c);
Activation model_config_read_activation(ConfigReader& r, const char* default_name);
// Rope of layers of kind `layer_type` ("full_attention" or "sliding_attention"), from either the
// transformers-5 `rope_parameters` (flat, or keyed by layer type) or the legacy `rope_theta`/`rope_scaling`.
RopeConfig model_config_read_rope(ConfigReader& r, const std::string& layer_type, double legacy_theta);
// `layer_types` when present, else `fallback` (one entry per layer); fills sliding windows and rope per layer.
void model_config_apply_layer_types(ConfigReader& r, ModelConfig& c, const std::vector<std::string>& fallback,
                                    double sliding_legacy_theta);

// ---- family entry points -----------------------------------------------------------------------
void llama_configure(ConfigReader& r, ModelConfig& c);
void gemma_configure(ConfigReader& r, ModelConfig& c);
void gemma2_configure(ConfigReader& r, ModelConfig& c);
void gemma3_configure(ConfigReader& r, ModelConfig& c);
void qwen2_configure(ConfigReader& r, ModelConfig& c);
void qwen3_configure(ConfigReader& r, ModelConfig& c);

}  // namespace lcllm
