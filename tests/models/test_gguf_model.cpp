// GGUF files as models (models/gguf_model.h, E10 items 3 and 6): the config.json their metadata stands for, the
// tensors under Hugging Face names with llama.cpp's conversions undone, and — when tools/fetch_models.sh's files are
// present (LCLLM_MODEL_CACHE, default ~/.cache/lcllm/models) — parity with transformers on the two real models:
// identical prompt ids, identical greedy tokens for 32 steps on 8 prompts, and fp32 logits within 1e-4 relative
// error (tests/fixtures/gguf_parity/, made by tools/make_gguf_refs.py).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "models/gguf_model.h"
#include "models/model_family.h"
#include "runtime/engine.h"
#include "tests/io/gguf_test_util.h"
#include "tokenizer/tokenizer.h"

using namespace lcllm;
using lcllm::test::GgufBuilder;
using lcllm::test::gguf_model_file;

namespace {

std::string write(const std::string& image, const std::string& name) {
  const auto path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path, std::ios::binary) << image;
  return path.string();
}

// A 1-layer llama GGUF: 2 heads of head_dim 4, hidden 8; q_proj's rows hold their GGUF row index.
GgufBuilder tiny_llama() {
  GgufBuilder b;
  b.kv_string("general.architecture", "llama");
  b.kv_u32("llama.embedding_length", 8).kv_u32("llama.feed_forward_length", 16).kv_u32("llama.block_count", 1);
  b.kv_u32("llama.attention.head_count", 2).kv_u32("llama.attention.head_count_kv", 1);
  b.kv_u32("llama.context_length", 64).kv_f32("llama.rope.freq_base", 5e4f);
  b.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  b.kv_strings("tokenizer.ggml.tokens", {"a", "b", "c", "d"});
  b.tensor_f32("token_embd.weight", {8, 4}).tensor_f32("output_norm.weight", {8});
  b.tensor_f32("blk.0.attn_norm.weight", {8}).tensor_f32("blk.0.ffn_norm.weight", {8});
  b.tensor_f32("blk.0.attn_q.weight", {8, 8}).tensor_f32("blk.0.attn_k.weight", {8, 4});
  b.tensor_f32("blk.0.attn_v.weight", {8, 4}).tensor_f32("blk.0.attn_output.weight", {8, 8});
  b.tensor_f32("blk.0.ffn_gate.weight", {8, 16}).tensor_f32("blk.0.ffn_up.weight", {8, 16});
  b.tensor_f32("blk.0.ffn_down.weight", {16, 8});
  return b;
}

}  // namespace

TEST_CASE("GGUF metadata becomes the config.json it stands for", "[models][gguf]") {
  const std::string path = write(tiny_llama().build(), "lcllm_tiny_llama.gguf");
  const ModelConfig c = model_config_load(path);
  CHECK(c.model_type == "llama");
  CHECK(c.hidden_size == 8);
  CHECK(c.n_heads == 2);
  CHECK(c.n_kv_heads == 1);
  CHECK(c.head_dim == 4);
  CHECK(c.vocab_size == 4);  // from the tokenizer when the file has no llama.vocab_size
  CHECK(c.tie_word_embeddings);  // no output.weight
  CHECK(c.layers.at(0).rope.theta == Approx(5e4));
  CHECK(c.max_position_embeddings == 64);
  GgufBuilder other = tiny_llama();
  other.kv_bytes.clear();
  other.n_kv = 0;
  other.kv_string("general.architecture", "mamba");
  CHECK_THROWS_WITH(model_config_load(write(other.build(), "lcllm_mamba.gguf")),
                    Catch::Contains("architecture 'mamba' is not supported"));
  GgufBuilder missing;
  missing.kv_string("general.architecture", "llama");
  CHECK_THROWS_WITH(model_config_load(write(missing.build(), "lcllm_missing.gguf")),
                    Catch::Contains("'llama.embedding_length' is missing"));
}

TEST_CASE("GGUF llama q/k rows are un-permuted to transformers' rotate-half order", "[models][gguf]") {
  const auto f = GgufFile::open(write(tiny_llama().build(), "lcllm_tiny_llama.gguf"));
  const Checkpoint ck = gguf_checkpoint(*f);
  const TensorView& q = ck.require("model.layers.0.self_attn.q_proj.weight");
  REQUIRE(q.shape == std::vector<int64_t>{8, 8});
  // Builder values: element i = i, so GGUF row g starts at 8g. Within a head of 4 rows, transformers' row
  // j * 2 + i is GGUF row 2i + j: rows 0,1,2,3 <- GGUF 0,2,1,3 (and 4..7 <- 4,6,5,7).
  const int gguf_row_of[8] = {0, 2, 1, 3, 4, 6, 5, 7};
  for (int r = 0; r < 8; ++r) CHECK(q.at(size_t(r) * 8) == float(gguf_row_of[r] * 8));
  const TensorView& v = ck.require("model.layers.0.self_attn.v_proj.weight");  // v is never permuted
  for (int r = 0; r < 4; ++r) CHECK(v.at(size_t(r) * 8) == float(r * 8));
  CHECK(ck.require("model.embed_tokens.weight").shape == std::vector<int64_t>{4, 8});
  CHECK(ck.require("model.layers.0.post_attention_layernorm.weight").at(3) == 3.f);  // ffn_norm for llama
}

TEST_CASE("a split GGUF model is read from its first split, the others found beside it", "[models][gguf]") {
  const auto dir = std::filesystem::temp_directory_path() / "lcllm_split_gguf";
  std::filesystem::create_directories(dir);
  GgufBuilder first = tiny_llama();  // metadata and most tensors
  first.kv_u32("split.count", 2);
  first.raw_kv("split.no", 2, "\0\0", 2);  // u16 0
  GgufBuilder second;                // llama.cpp's later splits: split keys and tensors only
  second.raw_kv("split.no", 2, "\1\0", 2);
  second.kv_u32("split.count", 2);
  second.tensor_f32("output.weight", {8, 4});  // in the second split: the embeddings are not tied
  const std::string p1 = (dir / "m-00001-of-00002.gguf").string(), p2 = (dir / "m-00002-of-00002.gguf").string();
  std::ofstream(p1, std::ios::binary) << first.build();
  std::ofstream(p2, std::ios::binary) << second.build();
  const ModelConfig c = model_config_load(p1);
  CHECK_FALSE(c.tie_word_embeddings);
  const Checkpoint ck = model_checkpoint_open(p1);
  CHECK(ck.find("lm_head.weight") != nullptr);
  CHECK(ck.find("model.layers.0.mlp.down_proj.weight") != nullptr);
  CHECK_THROWS_WITH(model_config_load(p2), Catch::Contains("pass the first split"));
  std::filesystem::remove(p2);
  CHECK_THROWS_WITH(model_checkpoint_open(p1), Catch::Contains("m-00002-of-00002.gguf"));
}

namespace {

void check_parity(const std::string& file, const std::string& fixture) {
  const std::string path = gguf_model_file(file);
  if (path.empty()) {
    WARN("skipped: " << file << " not found (run tools/fetch_models.sh)");
    return;
  }
  std::ifstream in(std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/gguf_parity/" + fixture);
  REQUIRE(in.good());
  const nlohmann::json ref = nlohmann::json::parse(in);
  const auto subset = ref.at("vocab_subset").get<std::vector<int64_t>>();
  EngineOptions o;
  o.model_path = path;
  o.device = "cpu";
  o.context_tokens = 1024;
  auto e = Engine::load(o);
  const auto tok = Tokenizer::load(path);
  const int64_t V = e->config().vocab_size;
  REQUIRE(ref.at("cases").size() >= 8);
  for (const auto& c : ref.at("cases")) {
    const std::string prompt = c.at("prompt").get<std::string>();
    INFO(file << " prompt " << nlohmann::json(prompt).dump());
    const auto ids = c.at("prompt_ids").get<std::vector<int32_t>>();
    const auto cont = c.at("continuation").get<std::vector<int32_t>>();
    REQUIRE(cont.size() == 32);
    CHECK(tok->encode(prompt, true) == ids);
    // Teacher-forced on transformers' greedy tokens: every step's argmax must be the token transformers chose. The
    // reference generated with min_new_tokens = 32, which masks end-of-sequence tokens; so does this check.
    std::vector<int32_t> all = ids;
    all.insert(all.end(), cont.begin(), cont.end());
    const int32_t seq = e->create_sequence();
    const std::vector<float> logits = e->feed(seq, all, true);
    e->free_sequence(seq);
    REQUIRE(logits.size() == all.size() * size_t(V));
    int mismatched = 0;
    for (size_t k = 0; k < cont.size(); ++k) {
      std::vector<float> row(logits.begin() + std::ptrdiff_t((ids.size() - 1 + k) * size_t(V)),
                             logits.begin() + std::ptrdiff_t((ids.size() + k) * size_t(V)));
      for (int32_t eos : e->config().eos_token_ids) row[size_t(eos)] = -INFINITY;
      if (tok->eos_id()) row[size_t(*tok->eos_id())] = -INFINITY;
      const int32_t best = int32_t(std::max_element(row.begin(), row.end()) - row.begin());
      mismatched += best != cont[k];
    }
    CHECK(mismatched == 0);
    for (const auto& [step, want] : c.at("rows").items()) {
      const float* row = logits.data() + (ids.size() - 1 + size_t(std::stoi(step))) * size_t(V);
      double diff = 0, norm = 0;
      for (size_t i = 0; i < subset.size(); ++i) {
        const double w = want[i].get<double>(), g = row[subset[i]];
        diff += (g - w) * (g - w);
        norm += w * w;
      }
      INFO("decode step " << step);
      CHECK(std::sqrt(diff / norm) <= 1e-4);
    }
  }
}

}  // namespace

TEST_CASE("SmolLM2-135M GGUF on the CPU matches transformers: ids, 32 greedy tokens, logits", "[models][gguf][real]") {
  check_parity("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m.json");
}

TEST_CASE("Gemma 3 270M GGUF on the CPU matches transformers: ids, 32 greedy tokens, logits", "[models][gguf][real]") {
  check_parity("gemma-3-270m-q4_k_m.gguf", "gemma3-270m.json");
}
