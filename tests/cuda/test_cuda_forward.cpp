// End to end: the forward pass (src/runtime/forward.cpp) on the CUDA backend against (1) the CPU backend on small
// random models in the shapes of real families (configs/models/*.json, shrunk), and (2) every parity fixture
// (tests/fixtures/parity/*/: transformers' fp32 logits and greedy continuation). Prefill runs as one chunk (prefill
// kernel), the continuation token by token (decode kernel), as Engine::generate drives it.
//
// Two references each time: the fp32 one (CPU backend or transformers), which the CUDA backend can only approach
// within what bf16 storage costs, and Bf16EmulationBackend (the CPU math with the same three bf16 roundings), which
// it must match closely: that second check is what catches a kernel error hidden inside the bf16 budget.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "lcllm/error.h"
#include "io/safetensors.h"
#include "models/model_family.h"
#include "runtime/engine.h"
#include "tests/cuda/bf16_emulation_backend.h"
#include "tests/cuda/test_cuda_util.h"
#include "tests/io/safetensors_test_util.h"
#include "tests/runtime/forward_test_util.h"

namespace fs = std::filesystem;
using namespace lcllm;
using namespace lcllm::test;

namespace {

// The engine on a given backend (the CUDA one, or the bf16 emulation that no --device names).
struct MiniEngine {
  std::unique_ptr<Engine> engine;

  MiniEngine(const std::string& dir, std::unique_ptr<Backend> be, int32_t context_tokens, int32_t max_step) {
    EngineOptions o;
    o.model_path = dir;
    o.context_tokens = context_tokens;
    o.max_step_tokens = max_step;
    engine = Engine::load(o, std::move(be));
  }

  const ModelConfig& config() const { return engine->config(); }

  // All logits [prompt + continuation, vocab]: the prompt in one step (prefill kernel), then one token per step
  // (decode kernel), as Engine::generate drives it.
  std::vector<float> prefill_then_decode(std::span<const int32_t> prompt, std::span<const int32_t> continuation) {
    const int32_t seq = engine->create_sequence();
    std::vector<float> logits = engine->feed(seq, prompt, true);
    if (!continuation.empty()) {
      const std::vector<float> more =
          engine->feed(seq, continuation, true, 1, AttentionPhase::ATTENTION_PHASE_DECODE);
      logits.insert(logits.end(), more.begin(), more.end());
    }
    engine->free_sequence(seq);
    return logits;
  }
};

std::unique_ptr<Backend> cuda() { return backend_create_cuda(0, 0.9f); }

// Worst ‖Δ‖/‖ref‖ over the rows of two [rows, V] logit arrays.
double worst_row_error(const std::vector<float>& got, const std::vector<float>& ref, int64_t V) {
  double worst = 0;
  for (size_t p = 0; p * size_t(V) < ref.size(); ++p) {
    worst = std::max(worst, relative_error(got.data() + p * size_t(V), ref.data() + p * size_t(V), size_t(V)));
  }
  return worst;
}

// GPU vs the bf16 emulation: both round the same values to bf16; what differs is fp32 summation order, which now
// and then moves a value across a bf16 rounding boundary (one bf16 ulp, 2^-8 relative), and these tiny random models
// amplify such flips through their layers: measured on the H100 (2026-11-25) 1e-3..3e-3 on the random models and
// 4e-3..7.8e-3 on the fixtures (deterministic there), against 1.1e-2..3.4e-2 for the same pipeline vs fp32. So the
// bound was the bf16 budget, 1e-2. The tensor-core prefill also rounds q and the softmax weights P to bf16 for its
// MMAs (as FlashAttention-2 does), which the emulation does not model; with head_dim 256 on tensor cores too
// (session 2) the gemma fixture (hd 256, MQA) measured 1.33e-2 vs the emulation and 2.26e-2 vs transformers (whose
// own bf16 run is 3.06e-2). So the bound was 1.5e-2. Session 24 added a fourth rounding point on both sides (prefill
// rows keep the MLP's gate and up projections in bf16, CudaBackend::gated_mlp_hidden, modelled by the emulation):
// every rounding point adds summation-order flips, and the gemma fixture (GELU over 256-dim MQA heads, the most
// sensitive) went from 1.28e-2 to 1.61e-2 vs the emulation (the others 0.35e-2..0.73e-2; vs transformers 2.47e-2
// against transformers' own bf16 3.06e-2; H100, bench/results/prefill_bf16_mlp_h100_2026-12-07/). So the bound is
// 2e-2: the bf16 budget of one more rounding, still below what transformers' own bf16 run differs by.
constexpr double kVsEmulationBound = 2e-2;
// GPU vs transformers' fp32 logits: the target, 2e-2, or — where transformers itself cannot reach it in bf16 —
// no worse than transformers run in bf16 on the same fixture (reference.json "bf16_peer", measured by
// tools/measure_bf16_parity.py: 2.1e-2..5.1e-2 on these tiny random models, above 2e-2 on every one). bf16 storage
// alone costs lcllm up to 3.4e-2 here (weights 2.4e-2, GEMM inputs 1.5e-2, K/V 1.3e-2; docs/KERNEL_NOTES.md).
constexpr double kVsTransformersTarget = 2e-2;

// ---- random models in real families' shapes ----

// Writes DIR/config.json (a real config with small dims) and DIR/model.safetensors (random bf16 weights).
// The shrunk shape every test here writes its random model in (config.json overrides of a family's config).
nlohmann::json small_model_overrides(int layers = 2, int vocab = 1000) {
  return {{"hidden_size", 256},       {"intermediate_size", 512}, {"num_hidden_layers", layers},
          {"num_attention_heads", 8}, {"num_key_value_heads", 2}, {"head_dim", 32},
          {"vocab_size", vocab},      {"bos_token_id", 1},        {"eos_token_id", 2},
          {"pad_token_id", 0}};
}

std::string write_random_model(const std::string& family_config, const nlohmann::json& overrides) {
  nlohmann::json j;
  std::ifstream(source_dir() / "configs/models" / family_config) >> j;
  for (auto it = overrides.begin(); it != overrides.end(); ++it) j[it.key()] = it.value();
  const fs::path dir = fs::temp_directory_path() / ("lcllm_cuda_" + family_config + std::to_string(seed_used()));
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << j.dump(2);
  const ModelConfig c = model_config_load(dir.string());

  SafetensorsBuilder sb;
  auto mat = [&](const std::string& name, int64_t out, int64_t in) {
    sb.add_bf16(name, {out, in}, random_bf16(size_t(out * in), 1.0f / std::sqrt(float(in))));
  };
  auto vec = [&](const std::string& name, int64_t n, float base, float spread) {
    std::vector<float> v = random_bf16(size_t(n), spread);
    for (auto& x : v) x = round_bf16(x + base);
    sb.add_bf16(name, {n}, v);
  };
  const int64_t H = c.hidden_size, Q = c.q_dim(), KV = c.kv_dim(), I = c.intermediate_size, V = c.vocab_size;
  const float norm_base = c.norm_one_plus ? 0.f : 1.f;
  sb.add_bf16("model.embed_tokens.weight", {V, H}, random_bf16(size_t(V * H), 1.0f));
  for (int32_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    vec(p + "input_layernorm.weight", H, norm_base, 0.2f);
    mat(p + "self_attn.q_proj.weight", Q, H);
    mat(p + "self_attn.k_proj.weight", KV, H);
    mat(p + "self_attn.v_proj.weight", KV, H);
    mat(p + "self_attn.o_proj.weight", H, Q);
    if (c.attn_qkv_bias) {
      vec(p + "self_attn.q_proj.bias", Q, 0.f, 0.5f);
      vec(p + "self_attn.k_proj.bias", KV, 0.f, 0.5f);
      vec(p + "self_attn.v_proj.bias", KV, 0.f, 0.5f);
    }
    if (c.attn_o_bias) vec(p + "self_attn.o_proj.bias", H, 0.f, 0.5f);
    if (c.qk_norm) {
      vec(p + "self_attn.q_norm.weight", c.head_dim, norm_base, 0.2f);
      vec(p + "self_attn.k_norm.weight", c.head_dim, norm_base, 0.2f);
    }
    if (c.post_attn_norm) {
      vec(p + "post_attention_layernorm.weight", H, norm_base, 0.2f);
      vec(p + "pre_feedforward_layernorm.weight", H, norm_base, 0.2f);
      vec(p + "post_feedforward_layernorm.weight", H, norm_base, 0.2f);
    } else {
      vec(p + "post_attention_layernorm.weight", H, norm_base, 0.2f);
    }
    mat(p + "mlp.gate_proj.weight", I, H);
    mat(p + "mlp.up_proj.weight", I, H);
    mat(p + "mlp.down_proj.weight", H, I);
    if (c.mlp_bias) {
      vec(p + "mlp.gate_proj.bias", I, 0.f, 0.5f);
      vec(p + "mlp.up_proj.bias", I, 0.f, 0.5f);
      vec(p + "mlp.down_proj.bias", H, 0.f, 0.5f);
    }
  }
  vec("model.norm.weight", H, norm_base, 0.2f);
  if (!c.tie_word_embeddings) mat("lm_head.weight", V, H);
  std::ofstream(dir / "model.safetensors", std::ios::binary) << sb.build();
  return dir.string();
}

}  // namespace

TEST_CASE("cuda forward matches the CPU forward on random models of each family", "[cuda][forward]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  const nlohmann::json small = small_model_overrides();
  struct Family {
    const char* config;
    nlohmann::json extra;
  };
  const std::vector<Family> families = {
      {"llama-3.1-8b.json", nlohmann::json::object()},
      {"qwen2.5-7b.json", {{"num_attention_heads", 7}, {"num_key_value_heads", 1}, {"hidden_size", 448}}},  // GQA 7, biases
      {"qwen3-8b.json", nlohmann::json::object()},                                                        // qk-norm
      {"gemma-2-9b.json", {{"sliding_window", 8}, {"query_pre_attn_scalar", 32}}},  // softcaps, window, (1+w)
      {"gemma-3-4b-text.json", {{"sliding_window", 8}, {"query_pre_attn_scalar", 32}, {"num_hidden_layers", 6}}},
  };
  std::uniform_int_distribution<int32_t> tok(3, 999);
  std::vector<int32_t> prompt(41), cont(9);
  for (auto& t : prompt) t = tok(rng());
  for (auto& t : cont) t = tok(rng());
  for (const auto& f : families) {
    nlohmann::json o = small;
    for (auto it = f.extra.begin(); it != f.extra.end(); ++it) o[it.key()] = it.value();
    INFO("family " << f.config);
    std::string dir;
    try {
      dir = write_random_model(f.config, o);
    } catch (const Error& e) {
      FAIL("could not build a random " << f.config << " model: " << e.what());
    }
    MiniEngine cpu_engine(dir, backend_create_cpu(0), 256, 64);
    MiniEngine emu_engine(dir, std::make_unique<Bf16EmulationBackend>(), 256, 64);
    MiniEngine gpu_engine(dir, cuda(), 256, 64);
    const std::vector<float> ref = cpu_engine.prefill_then_decode(prompt, cont);
    const std::vector<float> emu = emu_engine.prefill_then_decode(prompt, cont);
    const std::vector<float> got = gpu_engine.prefill_then_decode(prompt, cont);
    const int64_t V = cpu_engine.config().vocab_size;
    const double worst = worst_row_error(got, ref, V), worst_emu = worst_row_error(got, emu, V);
    WARN("forward " << f.config << " (random): worst rel err over " << prompt.size() + cont.size()
                    << " positions vs CPU fp32 " << worst << ", vs CPU bf16 emulation " << worst_emu);
    CHECK(worst <= 2e-2);
    CHECK(worst_emu <= kVsEmulationBound);
    fs::remove_all(dir);
  }
}

// The logits buffer holds at most 256 MiB; a step wanting more rows computes them piece by piece, the first piece
// inside the step, the rest eagerly after it (forward.cpp). Pieces of 3 rows must give every row, in its place.
TEST_CASE("cuda logits computed in pieces of 3 rows equal the one-piece logits", "[cuda][forward]") {
  LCLLM_REQUIRE_GPU();
  const nlohmann::json small = small_model_overrides();
  const std::string dir = write_random_model("llama-3.1-8b.json", small);
  std::uniform_int_distribution<int32_t> tok(3, 999);
  std::vector<int32_t> prompt(41);
  for (auto& t : prompt) t = tok(rng());
  auto whole_be = cuda(), piece_be = cuda();
  const std::vector<float> whole = prefill_all_logits(dir, *whole_be, prompt, 0);
  const std::vector<float> pieces = prefill_all_logits(dir, *piece_be, prompt, 3);
  // The GEMM may tile 3 rows differently from 41, so allow summation-order noise; a misplaced row is off by ~1.
  const double err = worst_row_error(pieces, whole, 1000);
  WARN("logits in pieces of 3 vs one piece: worst row rel err " << err);
  CHECK(err <= 1e-3);
  fs::remove_all(dir);
}

TEST_CASE("cuda forward matches transformers on every parity fixture", "[cuda][forward][parity]") {
  LCLLM_REQUIRE_GPU();
  const fs::path root = source_dir() / "tests/fixtures/parity";
  std::vector<fs::path> dirs;
  if (fs::exists(root)) {
    for (const auto& e : fs::directory_iterator(root)) {
      if (e.is_directory() && fs::exists(e.path() / "reference.json")) dirs.push_back(e.path());
    }
  }
  std::sort(dirs.begin(), dirs.end());
  if (dirs.empty()) {
    WARN("no parity fixtures under " << root.string() << ": test skipped");
    return;
  }
  for (const auto& dir : dirs) {
    std::ifstream in(dir / "reference.json");
    const auto j = nlohmann::json::parse(in);
    const std::string name = j.at("name").get<std::string>();
    const auto prompt = j.at("prompt_ids").get<std::vector<int32_t>>();
    const auto greedy = j.at("greedy_ids").get<std::vector<int32_t>>();
    const int64_t V = j.at("vocab_size").get<int64_t>();
    auto file = SafetensorsFile::open((dir / "logits.safetensors").string());
    const TensorView* t = file->find("logits");
    REQUIRE(t != nullptr);
    const size_t P = prompt.size(), G = greedy.size();
    REQUIRE(t->shape == std::vector<int64_t>{int64_t(P + G), V});
    std::vector<float> ref(size_t(t->numel()));
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = t->at(i);

    INFO("fixture " << name);
    // Teacher-forced: the reference's greedy tokens are fed one per step, so every row is comparable.
    const auto continuation = std::span<const int32_t>(greedy).first(G - 1);
    MiniEngine engine(dir.string(), cuda(), 512, 256);
    const std::vector<float> got = engine.prefill_then_decode(prompt, continuation);
    MiniEngine emu_engine(dir.string(), std::make_unique<Bf16EmulationBackend>(), 512, 256);
    const std::vector<float> emu = emu_engine.prefill_then_decode(prompt, continuation);
    const double worst_emu = worst_row_error(got, emu, V);
    const double emu_vs_ref = worst_row_error(emu, std::vector<float>(ref.begin(), ref.begin() + int64_t(emu.size())), V);
    double worst = 0;
    int32_t checked = 0, skipped = 0;
    for (size_t p = 0; p + 1 < P + G; ++p) {
      const float* g = got.data() + p * size_t(V);
      const float* r = ref.data() + p * size_t(V);
      worst = std::max(worst, relative_error(g, r, size_t(V)));
      if (p + 1 < P) continue;
      // Greedy token after row p: must match where the reference's top-2 margin exceeds our error on that row.
      double max_abs = 0;
      size_t top = 0, mine = 0;
      for (size_t i = 0; i < size_t(V); ++i) {
        max_abs = std::max(max_abs, double(std::abs(g[i] - r[i])));
        if (r[i] > r[top]) top = i;
        if (g[i] > g[mine]) mine = i;
      }
      float second = -INFINITY;
      for (size_t i = 0; i < size_t(V); ++i) {
        if (i != top) second = std::max(second, r[i]);
      }
      const int32_t expected = greedy[p + 1 - P];
      if (double(r[top] - second) > 2 * max_abs) {
        CHECK(int32_t(mine) == expected);
        ++checked;
      } else {
        ++skipped;
      }
    }
    WARN("parity " << name << ": worst rel err vs transformers " << worst << " (CPU bf16 emulation: " << emu_vs_ref
                   << "), vs CPU bf16 emulation " << worst_emu << ", over " << P + G - 1
                   << " positions; greedy checked " << checked << ", skipped (margin <= 2x error) " << skipped);
    REQUIRE(j.contains("bf16_peer"));  // written by tools/measure_bf16_parity.py
    const double peer_bf16 = j.at("bf16_peer").at("transformers_bf16_worst_rel_err").get<double>();
    WARN("parity " << name << ": bound max(2e-2, transformers bf16 " << peer_bf16 << ")");
    CHECK(worst <= std::max(kVsTransformersTarget, peer_bf16));
    CHECK(worst_emu <= kVsEmulationBound);
  }
}

// Decode steps recorded and replayed as CUDA graphs must be exactly the eager steps: same kernels, same buffers, only
// the staged bytes (tokens, positions, slots, block tables) differ between replays. Batched decode of 1-3 sequences
// over ~200 steps crosses page boundaries (a new page every 16 tokens), a change of the decode split plan (at 512
// keys) and batch-size changes, so graphs are both replayed and re-captured.
TEST_CASE("cuda decode steps replayed from CUDA graphs equal eager steps", "[cuda][forward][graphs]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  const nlohmann::json small = small_model_overrides(3);
  const std::string dir = write_random_model("qwen2.5-7b.json", small);  // biases: the fused GEMM epilogue too
  std::uniform_int_distribution<int32_t> tok(3, 999);
  auto random_tokens = [&](size_t n) {
    std::vector<int32_t> t(n);
    for (auto& x : t) x = tok(rng());
    return t;
  };
  const std::vector<std::vector<int32_t>> prompts = {random_tokens(5), random_tokens(37), random_tokens(400),
                                                     random_tokens(11)};
  constexpr int kSteps = 200;
  std::vector<std::vector<int32_t>> forced;  // [step][sequence] teacher-forced decode inputs
  for (int s = 0; s < kSteps; ++s) forced.push_back(random_tokens(3));

  auto run = [&](bool graphs, StepGraphStats& stats) {
    auto be = std::make_unique<CudaBackend>(0, 0.9f);
    CudaBackend* gpu = be.get();
    gpu->set_graphs_enabled(graphs);
    EngineOptions o;
    o.model_path = dir;
    o.context_tokens = 2048;
    o.max_step_tokens = 512;
    std::unique_ptr<Engine> engine = Engine::load(o, std::move(be));
    std::vector<int32_t> live;
    for (int i = 0; i < 3; ++i) {
      live.push_back(engine->create_sequence());
      engine->feed(live.back(), prompts[size_t(i)], false);
    }
    std::vector<float> all;
    for (int s = 0; s < kSteps; ++s) {
      if (s == 60) {  // batch 3 -> 2
        engine->free_sequence(live[1]);
        live.erase(live.begin() + 1);
      }
      if (s == 120) {  // batch 2 -> 3
        live.push_back(engine->create_sequence());
        engine->feed(live.back(), prompts[3], false);
      }
      std::vector<SequenceChunk> chunks;
      for (size_t i = 0; i < live.size(); ++i) {
        SequenceChunk c;
        c.seq = live[i];
        c.tokens = std::span<const int32_t>(&forced[size_t(s)][i], 1);
        c.phase = AttentionPhase::ATTENTION_PHASE_DECODE;
        chunks.push_back(c);
      }
      const std::vector<float> logits = engine->step(chunks);
      all.insert(all.end(), logits.begin(), logits.end());
    }
    stats = gpu->graph_stats();
    return all;
  };
  StepGraphStats with_stats, without_stats;
  const std::vector<float> with_graphs = run(true, with_stats);
  const std::vector<float> eager = run(false, without_stats);
  REQUIRE(with_graphs.size() == eager.size());
  size_t differing = 0;
  for (size_t i = 0; i < eager.size(); ++i) differing += with_graphs[i] != eager[i];
  WARN("graphs: " << with_stats.replays << " replays, " << with_stats.captures << " captures, " << with_stats.eager
                  << " eager; logits differing from the eager run: " << differing << " of " << eager.size());
  CHECK(relative_error(with_graphs, eager) <= 1e-6);
  CHECK(with_stats.replays >= kSteps * 3 / 4);  // most steps replay a cached graph
  CHECK(with_stats.captures >= 3);              // batch 3, batch 2, batch 3 again with a new split plan at least
  CHECK(without_stats.replays == 0);
  CHECK(without_stats.captures == 0);
  fs::remove_all(dir);
}

// Greedy decode's argmax on the device (SequenceChunk::argmax_only), inside replayed decode graphs: each argmax
// row's token is the lowest index of the largest logit the same step returns when it copies the row out, and the
// rows still copied out are unchanged by their argmax neighbours. Steps alternate all-logits, mixed and all-argmax,
// so the graphs with and without the argmax launch are both captured and replayed.
TEST_CASE("cuda argmax_only decode rows equal the argmax of the logits rows, in replayed graphs",
          "[cuda][forward][graphs]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  const nlohmann::json small = small_model_overrides(2, 3000);
  const std::string dir = write_random_model("llama-3.2-1b.json", small);
  std::uniform_int_distribution<int32_t> tok(3, 2999);
  constexpr int kSeqs = 3, kSteps = 48;
  std::vector<int32_t> forced(size_t(kSteps * kSeqs));  // [step][sequence] teacher-forced decode inputs
  for (auto& t : forced) t = tok(rng());
  auto load = [&] {
    EngineOptions o;
    o.model_path = dir;
    o.context_tokens = 1024;
    o.max_step_tokens = 64;
    auto engine = Engine::load(o, std::make_unique<CudaBackend>(0, 0.9f));
    std::vector<int32_t> seqs;  // [kSeqs]
    for (int i = 0; i < kSeqs; ++i) {
      seqs.push_back(engine->create_sequence());
      engine->feed(seqs.back(), std::vector<int32_t>{5, 7, 11 + i}, false);
    }
    return std::pair{std::move(engine), seqs};
  };
  auto [logits_engine, seqs] = load();
  auto [argmax_engine, argmax_seqs] = load();
  REQUIRE(argmax_seqs == seqs);
  const int64_t V = logits_engine->config().vocab_size;
  int64_t argmax_rows = 0;
  for (int s = 0; s < kSteps; ++s) {
    std::vector<SequenceChunk> all, mixed;
    for (int i = 0; i < kSeqs; ++i) {
      SequenceChunk c;
      c.seq = seqs[size_t(i)];
      c.tokens = std::span<const int32_t>(&forced[size_t(s * kSeqs + i)], 1);
      c.phase = AttentionPhase::ATTENTION_PHASE_DECODE;
      all.push_back(c);
      c.argmax_only = s % 3 == 2 || (s % 3 == 1 && i == 1);  // all logits / the middle row / every row
      mixed.push_back(c);
    }
    const std::vector<float> want = logits_engine->step(all);
    const StepOutputs got = argmax_engine->step_outputs(mixed);
    REQUIRE(want.size() == size_t(kSeqs * V));
    size_t next_logits = 0, next_argmax = 0;
    for (int i = 0; i < kSeqs; ++i) {
      const std::span<const float> row(want.data() + i * V, size_t(V));
      if (mixed[size_t(i)].argmax_only) {
        REQUIRE(next_argmax < got.argmax.size());
        CHECK(got.argmax[next_argmax++] == int32_t(std::max_element(row.begin(), row.end()) - row.begin()));
        ++argmax_rows;
      } else {
        REQUIRE((next_logits + 1) * size_t(V) <= got.logits.size());
        CHECK(std::equal(row.begin(), row.end(), got.logits.begin() + std::ptrdiff_t(next_logits++ * size_t(V))));
      }
    }
    CHECK(next_argmax == got.argmax.size());
    CHECK(next_logits * size_t(V) == got.logits.size());
  }
  CHECK(argmax_rows == kSteps / 3 * (kSeqs + 1));
  fs::remove_all(dir);
}

// Pipelined greedy decode on the GPU (Engine::step_launch, --async-decode): step i + 1 is recorded and launched on
// step i's argmax (embed_chained reading the device buffer) before the host reads step i, with its staging in the
// ring half step i leaves free. The chain must decode exactly the tokens of step-by-step greedy decoding on a second
// engine, replay its graphs (one per ring half, plus the first step's), and leave nothing in flight.
TEST_CASE("cuda chained decode steps (step_launch) decode the tokens step_outputs decodes, from replayed graphs",
          "[cuda][forward][graphs]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  const nlohmann::json small = small_model_overrides(2, 3000);
  const std::string dir = write_random_model("llama-3.2-1b.json", small);
  constexpr int kSeqs = 3, kSteps = 40;
  auto load = [&](CudaBackend** backend) {
    EngineOptions o;
    o.model_path = dir;
    o.context_tokens = 1024;
    o.max_step_tokens = 64;
    auto be = std::make_unique<CudaBackend>(0, 0.9f);
    *backend = be.get();
    auto engine = Engine::load(o, std::move(be));
    std::vector<int32_t> seqs;  // [kSeqs]
    for (int i = 0; i < kSeqs; ++i) {
      seqs.push_back(engine->create_sequence());
      engine->feed(seqs.back(), std::vector<int32_t>{5, 7, 11 + i}, false);
    }
    return std::pair{std::move(engine), seqs};
  };
  CudaBackend* ref_be = nullptr;
  CudaBackend* chain_be = nullptr;
  auto [ref, seqs] = load(&ref_be);
  auto [chain, chain_seqs] = load(&chain_be);
  REQUIRE(chain_seqs == seqs);
  const std::vector<int32_t> start = {17, 23, 29};  // [kSeqs] the first decode inputs
  auto chunks = [&](const std::vector<int32_t>& tokens, bool chained) {
    std::vector<SequenceChunk> c(kSeqs);
    for (int i = 0; i < kSeqs; ++i) {
      c[size_t(i)].seq = seqs[size_t(i)];
      c[size_t(i)].tokens = std::span<const int32_t>(&tokens[size_t(i)], 1);
      c[size_t(i)].phase = AttentionPhase::ATTENTION_PHASE_DECODE;
      c[size_t(i)].argmax_only = true;
      c[size_t(i)].token_from_previous = chained ? i : -1;
    }
    return c;
  };
  std::vector<std::vector<int32_t>> want;  // [step][sequence]
  std::vector<int32_t> last = start;
  for (int s = 0; s < kSteps; ++s) {
    last = ref->step_outputs(chunks(last, false)).argmax;
    want.push_back(last);
  }
  const std::vector<int32_t> placeholder(kSeqs, 0);
  std::vector<std::vector<int32_t>> got;
  const StepGraphStats before = chain_be->graph_stats();
  LaunchedStep in_flight = chain->step_launch(chunks(start, false));
  for (int s = 0; s < kSteps; ++s) {
    std::optional<LaunchedStep> next;
    if (s + 1 < kSteps) next = chain->step_launch(chunks(placeholder, true));
    got.push_back(chain->step_wait(in_flight));
    if (next) in_flight = std::move(*next);
  }
  CHECK(got == want);
  const StepGraphStats& after = chain_be->graph_stats();
  WARN("chained graphs: " << after.replays - before.replays << " replays, " << after.captures - before.captures
                          << " captures, " << after.eager - before.eager << " eager");
  CHECK(after.captures - before.captures <= 4);  // the first step, then one graph per ring half (a page bucket may add one)
  CHECK(after.replays - before.replays >= kSteps - 4);
  // Step-by-step decoding still works on the engine after a chain (nothing left in flight, the ring back to one).
  const StepOutputs after_chain = chain->step_outputs(chunks(want.back(), false));
  CHECK(after_chain.argmax == ref->step_outputs(chunks(want.back(), false)).argmax);
  fs::remove_all(dir);
}
