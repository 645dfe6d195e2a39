// Binds checkpoint tensors (Hugging Face names) to the slots the forward pass uses, checking every shape
// against the ModelConfig first and reporting all mismatches at once.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "io/model_config.h"
#include "io/safetensors.h"

namespace lcllm {

struct LayerWeights {
  Tensor attn_norm;              // [hidden]              input_layernorm
  Tensor wq, wk, wv, wo;         // [q_dim, hidden] [kv_dim, hidden] [kv_dim, hidden] [hidden, q_dim]
  Tensor bq, bk, bv, bo;         // [q_dim] [kv_dim] [kv_dim] [hidden], empty when the family has none
  Tensor q_norm, k_norm;         // [head_dim], qk-norm families only
  Tensor post_attn_norm;         // [hidden], Gemma 2/3 post_attention_layernorm (on the attention output)
  Tensor ffn_norm;               // [hidden], Llama post_attention_layernorm / Gemma 2/3 pre_feedforward_layernorm
  Tensor post_ffn_norm;          // [hidden], Gemma 2/3 post_feedforward_layernorm
  Tensor w_gate, w_up, w_down;   // [inter, hidden] [inter, hidden] [hidden, inter]
  Tensor b_gate, b_up, b_down;   // mlp_bias only
};

struct ModelWeights {
  Tensor embed;       // [vocab, hidden]
  std::vector<LayerWeights> layers;
  Tensor final_norm;  // [hidden]
  Tensor lm_head;     // [vocab, hidden] (the embedding table when tied)
  size_t bytes = 0;         // checkpoint bytes bound
  size_t device_bytes = 0;  // bytes the bound tensors occupy on the backend
  // o_proj copies folded with an fp8 cache's rotation (kv/kv_rotation.h), kept while the backend reads its
  // weights in place (Backend::weights_alias_views; the CPU).
  std::vector<std::vector<std::byte>> folded;
};

// `progress(done, total)` is called after each tensor (for the loading progress bar).
ModelWeights model_weights_bind(const ModelConfig& config, const Checkpoint& ckpt, Backend& backend,
                                const std::function<void(size_t, size_t)>& progress = {});

// Every tensor name the config implies with its shape (what model_weights_bind looks for), in binding order.
struct WeightSpec {
  std::string name;
  std::vector<int64_t> shape;
};
std::vector<WeightSpec> model_weight_specs(const ModelConfig& config);

// Parameter count and bytes a config implies (for `lcllm info`, independent of any checkpoint).
int64_t model_parameter_count(const ModelConfig& config);

}  // namespace lcllm
