// ModelConfig: everything the forward pass needs, normalised across model families.
//
// Built from a Hugging Face `config.json` by the family files in models/ (model_config_from_json). The forward
// pass reads only this struct, never the JSON, so a new family is a new file in models/ and nothing else.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lcllm {

enum class Activation { ACTIVATION_SILU, ACTIVATION_GELU_TANH, ACTIVATION_GELU };

enum class RopeType {
  ROPE_TYPE_DEFAULT,  // inv_freq[i] = theta^(-2i/d)
  ROPE_TYPE_LINEAR,   // inv_freq / factor (position interpolation)
  ROPE_TYPE_LLAMA3,   // Llama 3.1 piecewise wavelength scaling
};

struct RopeConfig {
  RopeType type = RopeType::ROPE_TYPE_DEFAULT;
  double theta = 10000.0;
  double factor = 1.0;
  double low_freq_factor = 1.0;               // llama3 only
  double high_freq_factor = 4.0;              // llama3 only
  int64_t original_max_position_embeddings = 0;  // llama3 only
};

// What differs from layer to layer (Gemma 2/3 alternate sliding and global layers with their own rope bases).
struct LayerConfig {
  int32_t sliding_window = 0;  // 0: full causal attention; W > 0: query i sees keys j with i - W < j <= i
  RopeConfig rope;
};

struct ModelConfig {
  std::string model_type;  // as in config.json: llama, gemma, gemma2, gemma3_text, qwen2, qwen3
  int32_t vocab_size = 0;
  int32_t hidden_size = 0;
  int32_t intermediate_size = 0;
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t head_dim = 0;
  int64_t max_position_embeddings = 0;

  float norm_eps = 1e-6f;
  bool norm_one_plus = false;      // Gemma: y = x̂ * (1 + w)
  Activation activation = Activation::ACTIVATION_SILU;
  bool attn_qkv_bias = false;      // Qwen2, Llama attention_bias
  bool attn_o_bias = false;        // Llama attention_bias
  bool mlp_bias = false;           // Llama mlp_bias
  bool qk_norm = false;            // Qwen3, Gemma 3: RMSNorm over head_dim on q and k, before RoPE
  bool post_attn_norm = false;     // Gemma 2/3: norm the attention output before the residual add
  bool ffn_sandwich_norm = false;  // Gemma 2/3: pre_feedforward + post_feedforward norms
  float embedding_scale = 1.0f;    // Gemma: sqrt(hidden_size)
  float query_scale = 0.0f;        // softmax scale: 1/sqrt(head_dim) or 1/sqrt(query_pre_attn_scalar)
  float attn_logit_softcap = 0.0f;   // 0: off; else scores = cap * tanh(scores / cap)
  float final_logit_softcap = 0.0f;  // 0: off
  bool tie_word_embeddings = false;

  std::vector<LayerConfig> layers;  // [n_layers]

  std::vector<int32_t> bos_token_ids;
  std::vector<int32_t> eos_token_ids;

  int64_t q_dim() const { return int64_t(n_heads) * head_dim; }
  int64_t kv_dim() const { return int64_t(n_kv_heads) * head_dim; }
};

const char* activation_name(Activation a);
const char* rope_type_name(RopeType t);

}  // namespace lcllm
