// Llama 2 / 3 / 3.1 / 3.2 (model_type "llama"): pre-norm decoder, RMSNorm y = x̂·w, SwiGLU MLP, RoPE
// (default, linear or llama3 wavelength scaling), optional attention/MLP biases, tied or untied embeddings.
#include "models/model_family.h"

namespace lcllm {

void llama_configure(ConfigReader& r, ModelConfig& c) {
  c.activation = model_config_read_activation(r, "silu");
  c.attn_qkv_bias = c.attn_o_bias = r.bool_or("attention_bias", false);
  c.mlp_bias = r.bool_or("mlp_bias", false);
  if (r.has("pretraining_tp") && r.optional_int("pretraining_tp").value_or(1) != 1) {
    // transformers only uses it to split matmuls; the math is identical, so accept it.
  }
  model_config_apply_layer_types(r, c, std::vector<std::string>(size_t(std::max(c.n_layers, 0)), "full_attention"), 0);
}

}  // namespace lcllm
