#include "runtime/model_weights.h"

#include <cstring>
#include <string>

#include "kv/kv_rotation.h"
#include "lcllm/error.h"

namespace lcllm {

namespace {

struct Binding {
  std::string name;
  std::vector<int64_t> shape;
  Tensor* slot;
  bool required;
  bool attention_output = false;  // o_proj's weight: takes an fp8 cache's rotation back (fold_rotation_into_o_proj)
};

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// Every tensor the config implies, with the shape it must have.
std::vector<Binding> plan_bindings(const ModelConfig& c, ModelWeights& w) {
  const int64_t H = c.hidden_size, Q = c.q_dim(), KV = c.kv_dim(), I = c.intermediate_size, V = c.vocab_size;
  std::vector<Binding> b;
  b.push_back({"model.embed_tokens.weight", {V, H}, &w.embed, true});
  for (int32_t l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w.layers[size_t(l)];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    b.push_back({p + "input_layernorm.weight", {H}, &L.attn_norm, true});
    b.push_back({p + "self_attn.q_proj.weight", {Q, H}, &L.wq, true});
    b.push_back({p + "self_attn.k_proj.weight", {KV, H}, &L.wk, true});
    b.push_back({p + "self_attn.v_proj.weight", {KV, H}, &L.wv, true});
    b.push_back({p + "self_attn.o_proj.weight", {H, Q}, &L.wo, true, true});
    if (c.attn_qkv_bias) {
      b.push_back({p + "self_attn.q_proj.bias", {Q}, &L.bq, true});
      b.push_back({p + "self_attn.k_proj.bias", {KV}, &L.bk, true});
      b.push_back({p + "self_attn.v_proj.bias", {KV}, &L.bv, true});
    }
    if (c.attn_o_bias) b.push_back({p + "self_attn.o_proj.bias", {H}, &L.bo, true});
    if (c.qk_norm) {
      b.push_back({p + "self_attn.q_norm.weight", {c.head_dim}, &L.q_norm, true});
      b.push_back({p + "self_attn.k_norm.weight", {c.head_dim}, &L.k_norm, true});
    }
    if (c.post_attn_norm) {
      b.push_back({p + "post_attention_layernorm.weight", {H}, &L.post_attn_norm, true});
      b.push_back({p + "pre_feedforward_layernorm.weight", {H}, &L.ffn_norm, true});
      b.push_back({p + "post_feedforward_layernorm.weight", {H}, &L.post_ffn_norm, true});
    } else {
      b.push_back({p + "post_attention_layernorm.weight", {H}, &L.ffn_norm, true});
    }
    b.push_back({p + "mlp.gate_proj.weight", {I, H}, &L.w_gate, true});
    b.push_back({p + "mlp.up_proj.weight", {I, H}, &L.w_up, true});
    b.push_back({p + "mlp.down_proj.weight", {H, I}, &L.w_down, true});
    if (c.mlp_bias) {
      b.push_back({p + "mlp.gate_proj.bias", {I}, &L.b_gate, true});
      b.push_back({p + "mlp.up_proj.bias", {I}, &L.b_up, true});
      b.push_back({p + "mlp.down_proj.bias", {H}, &L.b_down, true});
    }
  }
  b.push_back({"model.norm.weight", {H}, &w.final_norm, true});
  if (!c.tie_word_embeddings) b.push_back({"lm_head.weight", {V, H}, &w.lm_head, true});
  return b;
}

// o_proj [hidden, n_heads * head_dim] with each head's input columns multiplied by H (kv/kv_rotation.h): a cache
// that keeps H v makes attention return H o per head, and W_o H^T (H o) = W_o o, H being symmetric. Row r's slice
// w of head h becomes H w. The copy keeps the checkpoint's dtype for bf16 (rounded once, as a GPU upload of it
// would be) and is fp32 otherwise; `out` owns its bytes.
TensorView fold_rotation_into_o_proj(const TensorView& w, int32_t head_dim, std::vector<std::byte>& out) {
  const int64_t rows = w.shape[0], cols = w.shape[1];
  const DType dtype = w.dtype == DType::DTYPE_BF16 ? DType::DTYPE_BF16 : DType::DTYPE_F32;
  out.resize(size_t(rows * cols) * dtype_size(dtype));
  std::vector<float> slice(static_cast<size_t>(head_dim));  // [head_dim]: one row's columns of one head
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c0 = 0; c0 < cols; c0 += head_dim) {
      for (int32_t j = 0; j < head_dim; ++j) slice[size_t(j)] = w.at(size_t(r * cols + c0 + j));
      kv_rotate_vector(slice.data(), head_dim);
      for (int32_t j = 0; j < head_dim; ++j) {
        const size_t i = size_t(r * cols + c0 + j);
        if (dtype == DType::DTYPE_BF16) {
          const uint16_t b = f32_to_bf16(slice[size_t(j)]);
          std::memcpy(out.data() + 2 * i, &b, 2);
        } else {
          std::memcpy(out.data() + 4 * i, &slice[size_t(j)], 4);
        }
      }
    }
  }
  TensorView folded = w;
  folded.dtype = dtype;
  folded.data = out.data();
  folded.nbytes = out.size();
  return folded;
}

}  // namespace

ModelWeights model_weights_bind(const ModelConfig& config, const Checkpoint& ckpt, Backend& backend,
                                const std::function<void(size_t, size_t)>& progress) {
  ModelWeights w;
  w.layers.resize(size_t(config.n_layers));
  std::vector<Binding> bindings = plan_bindings(config, w);

  // Validate everything before touching the backend, so one error message lists every problem.
  std::vector<std::string> problems;
  for (const auto& b : bindings) {
    const TensorView* v = ckpt.find(b.name);
    if (!v) {
      if (b.required) problems.push_back("missing tensor '" + b.name + "' (expected shape " + shape_str(b.shape) + ")");
      continue;
    }
    if (v->shape != b.shape) {
      problems.push_back("tensor '" + b.name + "' in '" + v->file + "' has shape " + shape_str(v->shape) +
                         ", the config implies " + shape_str(b.shape));
    }
  }
  if (!problems.empty()) {
    std::string msg = "checkpoint does not match config.json (" + std::to_string(problems.size()) + " problem" +
                      (problems.size() > 1 ? "s" : "") + "):";
    const size_t shown = std::min<size_t>(problems.size(), 20);
    for (size_t i = 0; i < shown; ++i) msg += "\n  - " + problems[i];
    if (shown < problems.size()) msg += "\n  - ... and " + std::to_string(problems.size() - shown) + " more";
    throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, msg);
  }

  // An fp8 cache keeps rotated K and V (kv/kv_rotation.h): o_proj takes the rotation back. The backend's KV dtype
  // is set before the weights are bound (Engine::load).
  const bool fold = kv_rotated(backend.kv_dtype(), config.head_dim);
  for (size_t i = 0; i < bindings.size(); ++i) {
    const TensorView* v = ckpt.find(bindings[i].name);
    if (v) {
      std::vector<std::byte> folded_bytes;
      const bool folded = fold && bindings[i].attention_output;
      *bindings[i].slot = backend.weight(folded ? fold_rotation_into_o_proj(*v, config.head_dim, folded_bytes) : *v);
      w.bytes += v->nbytes;
      w.device_bytes += size_t(bindings[i].slot->numel()) * dtype_size(bindings[i].slot->dtype);
      if (folded && backend.weights_alias_views()) w.folded.push_back(std::move(folded_bytes));
    }
    if (progress) progress(i + 1, bindings.size());
  }
  // Tied embeddings: transformers ignores a stored lm_head.weight and reuses the embedding table.
  if (config.tie_word_embeddings) w.lm_head = w.embed;
  return w;
}

std::vector<WeightSpec> model_weight_specs(const ModelConfig& config) {
  ModelWeights scratch;
  scratch.layers.resize(size_t(config.n_layers));
  std::vector<WeightSpec> specs;
  for (const Binding& b : plan_bindings(config, scratch)) specs.push_back({b.name, b.shape});
  return specs;
}

int64_t model_parameter_count(const ModelConfig& c) {
  const int64_t H = c.hidden_size, Q = c.q_dim(), KV = c.kv_dim(), I = c.intermediate_size, V = c.vocab_size;
  int64_t per_layer = H + Q * H + 2 * KV * H + H * Q + 3 * I * H + H;
  if (c.attn_qkv_bias) per_layer += Q + 2 * KV;
  if (c.attn_o_bias) per_layer += H;
  if (c.qk_norm) per_layer += 2 * c.head_dim;
  if (c.post_attn_norm) per_layer += 2 * H;
  if (c.mlp_bias) per_layer += 2 * I + H;
  int64_t total = V * H + per_layer * c.n_layers + H;
  if (!c.tie_word_embeddings) total += V * H;
  return total;
}

}  // namespace lcllm
