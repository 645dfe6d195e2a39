// Gemma family. Shared: RMSNorm y = x̂·(1 + w), GeGLU MLP (gelu tanh), embeddings scaled by sqrt(hidden_size),
// tied embeddings.
//   gemma        (Gemma 1): Llama layout otherwise, head_dim 256.
//   gemma2       (Gemma 2, arXiv:2408.00118 §2): attention-logit and final-logit softcapping (cap·tanh(x/cap)),
//                post-attention and pre/post-feedforward norms, sliding and global layers alternating
//                (even layers slide), softmax scale 1/sqrt(query_pre_attn_scalar).
//   gemma3_text  (Gemma 3, arXiv:2503.19786 §2): as Gemma 2 plus qk-norm, 5 local : 1 global layers, local
//                layers with their own rope base (rope_local_base_freq) and no rope scaling.
#include <cmath>

#include "models/model_family.h"

namespace lcllm {

namespace {

void gemma_common(ConfigReader& r, ModelConfig& c) {
  c.norm_one_plus = true;
  c.activation = model_config_read_activation(r, "gelu_pytorch_tanh");
  c.tie_word_embeddings = r.bool_or("tie_word_embeddings", true);
  c.embedding_scale = static_cast<float>(std::sqrt(double(c.hidden_size)));
  c.attn_qkv_bias = c.attn_o_bias = r.bool_or("attention_bias", false);
}

void gemma_scale_and_caps(ConfigReader& r, ModelConfig& c) {
  double scalar = r.number_or("query_pre_attn_scalar", double(c.head_dim));
  if (!(scalar > 0)) r.fail("query_pre_attn_scalar must be positive");
  c.query_scale = static_cast<float>(1.0 / std::sqrt(scalar));
  c.attn_logit_softcap = static_cast<float>(r.optional_number("attn_logit_softcapping").value_or(0.0));
  c.final_logit_softcap = static_cast<float>(r.optional_number("final_logit_softcapping").value_or(0.0));
  if (c.attn_logit_softcap < 0 || c.final_logit_softcap < 0) r.fail("softcapping values must be positive or null");
  c.post_attn_norm = true;
  c.ffn_sandwich_norm = true;
}

}  // namespace

void gemma_configure(ConfigReader& r, ModelConfig& c) {
  // Gemma 1 checkpoints say hidden_act "gelu" but transformers (GemmaConfig.__post_init__) rewrites it to the
  // tanh approximation.
  gemma_common(r, c);
  if (c.activation == Activation::ACTIVATION_GELU) c.activation = Activation::ACTIVATION_GELU_TANH;
  model_config_apply_layer_types(r, c, std::vector<std::string>(size_t(std::max(c.n_layers, 0)), "full_attention"), 0);
}

void gemma2_configure(ConfigReader& r, ModelConfig& c) {
  gemma_common(r, c);
  gemma_scale_and_caps(r, c);
  std::vector<std::string> fallback;
  for (int32_t i = 0; i < c.n_layers; ++i) fallback.push_back(i % 2 == 0 ? "sliding_attention" : "full_attention");
  model_config_apply_layer_types(r, c, fallback, 0);
}

void gemma3_configure(ConfigReader& r, ModelConfig& c) {
  gemma_common(r, c);
  gemma_scale_and_caps(r, c);
  // transformers' Gemma3Attention never passes attn_logit_softcapping to the attention function (Gemma 3
  // replaced softcapping with qk-norm, arXiv:2503.19786 §2), so the field is ignored here too.
  c.attn_logit_softcap = 0.0f;
  c.qk_norm = true;
  int64_t pattern = r.optional_int("sliding_window_pattern").value_or(6);
  if (pattern <= 0) r.fail("sliding_window_pattern must be positive");
  std::vector<std::string> fallback;
  for (int32_t i = 0; i < c.n_layers; ++i) {
    fallback.push_back(pattern > 0 && (i + 1) % pattern == 0 ? "full_attention" : "sliding_attention");
  }
  double local_theta = r.number_or("rope_local_base_freq", 10000.0);
  model_config_apply_layer_types(r, c, fallback, local_theta);
}

}  // namespace lcllm
