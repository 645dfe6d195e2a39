// Qwen 2 / 2.5 (model_type "qwen2"): Llama layout with biases on q, k and v (not o).
// Qwen 3 (model_type "qwen3"): no biases, RMSNorm over head_dim on q and k before RoPE (qk-norm).
// Both may declare sliding-window layers (use_sliding_window, max_window_layers); real checkpoints disable it.
#include "models/model_family.h"

namespace lcllm {

namespace {

std::vector<std::string> qwen_legacy_layer_types(ConfigReader& r, const ModelConfig& c) {
  // transformers' legacy rule: layers at index >= max_window_layers slide, when use_sliding_window is set.
  std::vector<std::string> types(size_t(std::max(c.n_layers, 0)), "full_attention");
  if (!r.bool_or("use_sliding_window", false)) return types;
  int64_t first = r.optional_int("max_window_layers").value_or(c.n_layers);
  for (int64_t i = first; i < c.n_layers; ++i) types[size_t(i)] = "sliding_attention";
  return types;
}

void qwen_common(ConfigReader& r, ModelConfig& c) {
  c.activation = model_config_read_activation(r, "silu");
  std::vector<std::string> fallback = qwen_legacy_layer_types(r, c);
  // Without use_sliding_window, transformers ignores sliding_window and layer_types' sliding entries do not occur.
  model_config_apply_layer_types(r, c, fallback, 0);
}

}  // namespace

void qwen2_configure(ConfigReader& r, ModelConfig& c) {
  c.attn_qkv_bias = true;
  qwen_common(r, c);
}

void qwen3_configure(ConfigReader& r, ModelConfig& c) {
  c.attn_qkv_bias = c.attn_o_bias = r.bool_or("attention_bias", false);
  c.qk_norm = true;
  qwen_common(r, c);
}

}  // namespace lcllm
