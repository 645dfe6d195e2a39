// What every family shares: sizes, eps, head layout, token ids, rope parsing and per-layer attention kinds.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "lcllm/error.h"
#include "models/model_family.h"
#include "models/gguf_model.h"
#include "io/json_file.h"
#include "io/text_file.h"

namespace lcllm {

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::ACTIVATION_SILU: return "silu";
    case Activation::ACTIVATION_GELU_TANH: return "gelu_pytorch_tanh";
    case Activation::ACTIVATION_GELU: return "gelu";
  }
  return "?";
}

const char* rope_type_name(RopeType t) {
  switch (t) {
    case RopeType::ROPE_TYPE_DEFAULT: return "default";
    case RopeType::ROPE_TYPE_LINEAR: return "linear";
    case RopeType::ROPE_TYPE_LLAMA3: return "llama3";
  }
  return "?";
}

void model_config_read_common(ConfigReader& r, ModelConfig& c) {
  // Bounds far above any released model of the supported families, far below what would exhaust memory first.
  c.vocab_size = r.require_size("vocab_size", int64_t(1) << 24);
  c.hidden_size = r.require_size("hidden_size", int64_t(1) << 17);
  c.intermediate_size = r.require_size("intermediate_size", int64_t(1) << 20);
  c.n_layers = r.require_size("num_hidden_layers", 1024);
  c.n_heads = r.require_size("num_attention_heads", 1024);
  c.n_kv_heads = r.has("num_key_value_heads") ? r.require_size("num_key_value_heads", 1024) : c.n_heads;
  if (r.has("head_dim")) {
    c.head_dim = r.require_size("head_dim", 1024);
  } else if (c.n_heads > 0 && c.hidden_size % c.n_heads == 0) {
    c.head_dim = c.hidden_size / c.n_heads;
  } else if (c.n_heads > 0) {
    r.fail("hidden_size " + std::to_string(c.hidden_size) + " is not divisible by num_attention_heads " +
           std::to_string(c.n_heads) + " and no head_dim is given");
  }
  if (c.n_heads > 0 && c.n_kv_heads > 0 && c.n_heads % c.n_kv_heads != 0) {
    r.fail("num_attention_heads " + std::to_string(c.n_heads) + " is not a multiple of num_key_value_heads " +
           std::to_string(c.n_kv_heads));
  }
  if (c.head_dim % 2 != 0) r.fail("head_dim " + std::to_string(c.head_dim) + " must be even for RoPE");
  c.max_position_embeddings = r.optional_int("max_position_embeddings").value_or(0);
  if (c.max_position_embeddings < 0 || c.max_position_embeddings > INT32_MAX) {
    r.fail("max_position_embeddings " + std::to_string(c.max_position_embeddings) + " must be in [0, 2^31)");
    c.max_position_embeddings = 0;
  }
  double eps = r.number_or("rms_norm_eps", 1e-6);
  if (!(eps > 0 && eps < 1)) r.fail("rms_norm_eps must be in (0, 1), got " + std::to_string(eps));
  c.norm_eps = static_cast<float>(eps);
  c.tie_word_embeddings = r.bool_or("tie_word_embeddings", c.tie_word_embeddings);
  c.bos_token_ids = r.token_ids("bos_token_id");
  c.eos_token_ids = r.token_ids("eos_token_id");
  if (c.head_dim > 0) c.query_scale = static_cast<float>(1.0 / std::sqrt(double(c.head_dim)));
}

Activation model_config_read_activation(ConfigReader& r, const char* default_name) {
  // Gemma 2/3 name it hidden_activation; everyone else hidden_act. Names follow transformers' ACT2FN.
  std::string name = r.string_or("hidden_activation", r.string_or("hidden_act", default_name));
  if (name == "silu" || name == "swish") return Activation::ACTIVATION_SILU;
  if (name == "gelu_pytorch_tanh" || name == "gelu_new" || name == "gelu_fast") return Activation::ACTIVATION_GELU_TANH;
  if (name == "gelu") return Activation::ACTIVATION_GELU;
  r.fail("unsupported activation '" + name + "' (lcllm implements silu, gelu, gelu_pytorch_tanh)");
  return Activation::ACTIVATION_SILU;
}

namespace {

// One rope description: {"rope_type"|"type": ..., "rope_theta"?, "factor"?, ...}.
RopeConfig parse_rope_object(ConfigReader& r, const nlohmann::json& o, double theta, const std::string& where) {
  RopeConfig rope;
  rope.theta = theta;
  if (!o.is_object()) {
    r.fail(where + " must be an object, got " + o.dump());
    return rope;
  }
  auto num = [&](const char* key, double fallback) {
    if (!o.contains(key) || o.at(key).is_null()) return fallback;
    if (!o.at(key).is_number() || !std::isfinite(o.at(key).get<double>())) {
      r.fail(where + "." + key + " must be a finite number, got " + o.at(key).dump());
      return fallback;
    }
    return o.at(key).get<double>();
  };
  rope.theta = num("rope_theta", theta);
  std::string type = "default";
  for (const char* key : {"rope_type", "type"}) {
    if (o.contains(key) && o.at(key).is_string()) {
      type = o.at(key).get<std::string>();
      break;
    }
  }
  if (type == "default") {
    rope.type = RopeType::ROPE_TYPE_DEFAULT;
  } else if (type == "linear") {
    rope.type = RopeType::ROPE_TYPE_LINEAR;
    rope.factor = num("factor", 1.0);
  } else if (type == "llama3") {
    rope.type = RopeType::ROPE_TYPE_LLAMA3;
    rope.factor = num("factor", 8.0);
    rope.low_freq_factor = num("low_freq_factor", 1.0);
    rope.high_freq_factor = num("high_freq_factor", 4.0);
    // A positive whole number of positions that fits an int64 (a cast of anything else is undefined).
    const double original = num("original_max_position_embeddings", 8192);
    if (!(original >= 1 && original <= 9.0e18) || original != std::floor(original)) {
      r.fail(where + ".original_max_position_embeddings must be a positive whole number, got " +
             nlohmann::json(original).dump());
    } else {
      rope.original_max_position_embeddings = static_cast<int64_t>(original);
    }
    if (rope.high_freq_factor <= rope.low_freq_factor) {
      r.fail(where + ": llama3 rope needs high_freq_factor > low_freq_factor");
    }
  } else {
    r.fail(where + ": unsupported rope type '" + type + "' (lcllm implements default, linear, llama3)");
  }
  if (!(rope.theta > 0)) r.fail(where + ": rope_theta must be positive");
  if (!(rope.factor > 0)) r.fail(where + ": rope factor must be positive");
  return rope;
}

}  // namespace

RopeConfig model_config_read_rope(ConfigReader& r, const std::string& layer_type, double legacy_theta) {
  const auto& j = r.raw();
  if (j.contains("rope_parameters") && !j.at("rope_parameters").is_null()) {
    const auto& p = j.at("rope_parameters");
    if (p.is_object() && p.contains(layer_type) && p.at(layer_type).is_object()) {
      return parse_rope_object(r, p.at(layer_type), legacy_theta, "rope_parameters." + layer_type);
    }
    return parse_rope_object(r, p, legacy_theta, "rope_parameters");
  }
  double theta = r.number_or("rope_theta", legacy_theta);
  if (j.contains("rope_scaling") && !j.at("rope_scaling").is_null()) {
    return parse_rope_object(r, j.at("rope_scaling"), theta, "rope_scaling");
  }
  RopeConfig rope;
  rope.theta = theta;
  return rope;
}

void model_config_apply_layer_types(ConfigReader& r, ModelConfig& c, const std::vector<std::string>& fallback,
                                    double sliding_legacy_theta) {
  std::vector<std::string> types = fallback;
  if (r.has("layer_types")) {
    const auto& lt = r.raw().at("layer_types");
    if (!lt.is_array() || lt.size() != size_t(c.n_layers)) {
      r.fail("layer_types must be an array of " + std::to_string(c.n_layers) + " strings");
    } else {
      types.clear();
      for (const auto& t : lt) types.push_back(t.is_string() ? t.get<std::string>() : std::string("?"));
    }
  }
  types.resize(size_t(std::max(c.n_layers, 0)), "full_attention");
  int64_t window = 0;
  bool any_sliding = false;
  for (const auto& t : types) any_sliding |= (t == "sliding_attention");
  if (any_sliding) {
    auto w = r.optional_int("sliding_window");
    if (!w || *w <= 0 || *w > INT32_MAX) {  // larger values would wrap in the layers' int32 window
      r.fail("sliding_attention layers need a sliding_window in [1, 2^31)" + (w ? ", got " + std::to_string(*w) : std::string()));
    } else {
      window = *w;
    }
  }
  RopeConfig full_rope = model_config_read_rope(r, "full_attention", 10000.0);
  RopeConfig sliding_rope = full_rope;
  // Gemma 3 (legacy config): local layers use rope_local_base_freq and no scaling.
  if (sliding_legacy_theta > 0 && !r.has("rope_parameters")) {
    sliding_rope = RopeConfig{};
    sliding_rope.theta = sliding_legacy_theta;
  } else if (r.has("rope_parameters")) {
    sliding_rope = model_config_read_rope(r, "sliding_attention", 10000.0);
  }
  c.layers.assign(types.size(), LayerConfig{});
  for (size_t i = 0; i < types.size(); ++i) {
    if (types[i] == "sliding_attention") {
      c.layers[i].sliding_window = static_cast<int32_t>(window);
      c.layers[i].rope = sliding_rope;
    } else if (types[i] == "full_attention") {
      c.layers[i].rope = full_rope;
    } else {
      r.fail("layer_types[" + std::to_string(i) + "] is '" + types[i] +
             "' (lcllm implements full_attention and sliding_attention)");
    }
  }
}

std::vector<std::string> model_config_supported_types() {
  return {"llama", "gemma", "gemma2", "gemma3_text", "qwen2", "qwen3"};
}

ModelConfig model_config_from_json(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, path + ": config.json must be a JSON object");
  ConfigReader r(j, path);
  ModelConfig c;
  c.model_type = r.string_or("model_type", "");
  using Configure = void (*)(ConfigReader&, ModelConfig&);
  static const std::map<std::string, Configure> families = {
      {"llama", llama_configure},   {"gemma", gemma_configure}, {"gemma2", gemma2_configure},
      {"gemma3_text", gemma3_configure}, {"qwen2", qwen2_configure}, {"qwen3", qwen3_configure},
  };
  auto it = families.find(c.model_type);
  if (it == families.end()) {
    std::string supported;
    for (const auto& t : model_config_supported_types()) supported += (supported.empty() ? "" : ", ") + t;
    throw Error(ErrorKind::ERROR_KIND_UNSUPPORTED,
                path + ": unsupported model_type '" + c.model_type + "' (lcllm supports " + supported + ")");
  }
  model_config_read_common(r, c);
  it->second(r, c);
  r.finish();
  return c;
}

ModelConfig model_config_load(const std::string& model_path) {
  if (gguf_is_file(model_path)) {
    return model_config_from_json(gguf_hf_config(gguf_open_model(model_path)), model_path);
  }
  std::string path = model_path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) path += "/config.json";
  if (!std::filesystem::exists(path, ec) || std::filesystem::is_directory(path, ec)) {
    throw Error(ErrorKind::ERROR_KIND_NOT_FOUND,
                "cannot read '" + path + "': expected a model directory holding config.json, or a config.json path");
  }
  const std::string text = read_text_file(path, "model config", kMaxConfigFileBytes);
  return model_config_from_json(json_parse_bounded(text, path), path);
}

}  // namespace lcllm
