// `lcllm info MODEL`: the resolved config, parameter count, weight bytes and KV bytes per token.
#include <cstdio>
#include <map>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "io/gguf.h"
#include "io/gguf_types.h"
#include "io/safetensors.h"
#include "lcllm/error.h"
#include "models/model_family.h"
#include "runtime/model_weights.h"
#include "runtime/roofline.h"

namespace lcllm {

namespace {

// A GGUF file's container summary (E10 item 1): what it holds, by the file's own metadata.
int gguf_info(const std::string& path) {
  const auto f = GgufFile::open(path);
  const GgufContents& g = f->contents();
  struct TypeUse {
    int64_t tensors = 0;
    uint64_t bytes = 0;
    bool dequantizable = true;
  };
  std::map<std::string, TypeUse> by_type;  // ggml type name -> what uses it
  uint64_t bytes = 0;
  int64_t params = 0;
  for (const GgufTensorInfo& t : g.tensors) {
    const GgmlTypeInfo* info = ggml_type_info(t.type);  // known: gguf_parse refuses unknown types
    TypeUse& u = by_type[info->name];
    ++u.tensors;
    u.bytes += t.nbytes;
    u.dequantizable = info->dequantizable;
    bytes += t.nbytes;
    params += t.n_elements();
  }
  auto str = [&](const char* key) {
    const GgufValue* v = f->find(key);
    return v && v->type == GgufType::GGUF_TYPE_STRING ? v->s : std::string("-");
  };
  const std::string arch = str("general.architecture");
  std::printf("GGUF file           version %u, %zu tensors, %zu metadata keys\n", g.version, g.tensors.size(),
              g.metadata.size());
  std::printf("architecture        %s\n", arch.c_str());
  std::printf("name                %s\n", str("general.name").c_str());
  if (const GgufValue* v = f->find(arch + ".context_length"); v && v->is_integer()) {
    std::printf("context length      %lld\n", static_cast<long long>(v->i));
  }
  if (const GgufValue* v = f->find(arch + ".block_count"); v && v->is_integer()) {
    std::printf("layers              %lld\n", static_cast<long long>(v->i));
  }
  const GgufValue* tokens = f->find("tokenizer.ggml.tokens");
  std::printf("tokenizer           %s, %zu tokens, chat template %s\n", str("tokenizer.ggml.model").c_str(),
              tokens ? tokens->size() : size_t(0), f->find("tokenizer.chat_template") ? "yes" : "no");
  std::printf("parameters          %lld (%.3f B)\n", static_cast<long long>(params), double(params) / 1e9);
  std::printf("weights             %s\n", format_bytes(double(bytes)).c_str());
  for (const auto& [name, u] : by_type) {
    std::printf("  %-8s %4lld tensors  %s%s\n", name.c_str(), static_cast<long long>(u.tensors),
                format_bytes(double(u.bytes)).c_str(), u.dequantizable ? "" : "  (lcllm cannot dequantize this type)");
  }
  return 0;
}

int info(const std::string& model) {
  if (gguf_is_file(model)) return gguf_info(model);
  const ModelConfig c = model_config_load(model);
  std::printf("model_type          %s\n", c.model_type.c_str());
  std::printf("vocab_size          %d\n", c.vocab_size);
  std::printf("hidden_size         %d\n", c.hidden_size);
  std::printf("intermediate_size   %d\n", c.intermediate_size);
  std::printf("layers              %d\n", c.n_layers);
  std::printf("heads / kv heads    %d / %d (head_dim %d)\n", c.n_heads, c.n_kv_heads, c.head_dim);
  std::printf("activation          %s\n", activation_name(c.activation));
  std::printf("norm                rms eps %g%s\n", double(c.norm_eps), c.norm_one_plus ? ", (1 + w)" : "");
  std::printf("biases              qkv %s, o %s, mlp %s\n", c.attn_qkv_bias ? "yes" : "no", c.attn_o_bias ? "yes" : "no",
              c.mlp_bias ? "yes" : "no");
  std::printf("qk-norm             %s\n", c.qk_norm ? "yes" : "no");
  std::printf("sandwich norms      %s\n", c.post_attn_norm ? "yes" : "no");
  std::printf("embedding scale     %g\n", double(c.embedding_scale));
  std::printf("query scale         %g\n", double(c.query_scale));
  std::printf("softcap attn/final  %g / %g\n", double(c.attn_logit_softcap), double(c.final_logit_softcap));
  std::printf("tied embeddings     %s\n", c.tie_word_embeddings ? "yes" : "no");
  std::printf("max positions       %lld\n", static_cast<long long>(c.max_position_embeddings));
  std::printf("layers (window, rope):\n");
  for (size_t l = 0; l < c.layers.size(); ++l) {
    const auto& L = c.layers[l];
    std::printf("  %3zu  %-8s theta %-10g %s", l, L.sliding_window ? ("win " + std::to_string(L.sliding_window)).c_str() : "global",
                L.rope.theta, rope_type_name(L.rope.type));
    if (L.rope.type != RopeType::ROPE_TYPE_DEFAULT) std::printf(" factor %g", L.rope.factor);
    std::printf("\n");
  }
  const int64_t params = model_parameter_count(c);
  std::printf("parameters          %lld (%.3f B)\n", static_cast<long long>(params), double(params) / 1e9);
  // KV bytes per token: K and V of every layer and KV head, for each --kv-cache-dtype (fp8: one scale byte per
  // head vector); fp32 is what the CPU reference stores whatever it emulates.
  std::printf("KV bytes per token  %s (bf16), %s (fp8, scales included), %s (fp32, cpu)\n",
              format_bytes(double(kv_bytes_per_token(c, KvDtype::KV_DTYPE_BF16))).c_str(),
              format_bytes(double(kv_bytes_per_token(c, KvDtype::KV_DTYPE_FP8_E4M3))).c_str(),
              format_bytes(double(kv_bytes_per_token(c, KvDtype::KV_DTYPE_F32))).c_str());
  try {
    Checkpoint ck = Checkpoint::open(model);
    std::printf("weights             %s in %zu file(s)\n", format_bytes(double(ck.total_bytes())).c_str(), ck.file_count());
  } catch (const Error& e) {
    std::printf("weights             not readable: %s\n", e.what());
  }
  return 0;
}

}  // namespace

CliHandler cli_add_info(CLI::App& app) {
  auto model = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("info", "Print a model's resolved config, size and KV bytes per token");
  cmd->add_option("MODEL", *model, "Model directory (config.json + *.safetensors) or a config.json")->required();
  return [cmd, model]() -> int { return cmd->parsed() ? info(*model) : -1; };
}

}  // namespace lcllm
