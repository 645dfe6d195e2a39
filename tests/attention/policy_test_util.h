// Shared helpers for the policy tests: the parity fixtures (tiny real-format models, tests/fixtures/parity) and a
// runner that prefills a prompt and decodes a continuation under a plan.
#pragma once
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attention/attention_plan.h"
#include "attention/attention_presets.h"
#include "models/model_family.h"
#include "runtime/engine.h"

namespace policy_test {

inline std::vector<std::string> fixture_dirs() {
  std::vector<std::string> dirs;
  const std::filesystem::path root = std::filesystem::path(LCLLM_SOURCE_DIR) / "tests/fixtures/parity";
  for (const auto& e : std::filesystem::directory_iterator(root)) {
    if (e.is_directory() && std::filesystem::exists(e.path() / "reference.json")) dirs.push_back(e.path().string());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

struct Fixture {
  std::string dir, name;
  std::vector<int32_t> prompt, continuation;  // continuation: transformers' greedy tokens
};

inline Fixture load_fixture(const std::string& dir) {
  std::ifstream in(dir + "/reference.json");
  const auto j = nlohmann::json::parse(in);
  return Fixture{dir, j.at("name").get<std::string>(), j.at("prompt_ids").get<std::vector<int32_t>>(),
                 j.at("greedy_ids").get<std::vector<int32_t>>()};
}

// backend: null for the CPU backend (2 threads), or one the test built (a spy, a CUDA backend with its switches).
inline std::unique_ptr<lcllm::Engine> load_engine(const std::string& dir, const lcllm::AttentionPlan& plan,
                                                  std::unique_ptr<lcllm::Backend> backend = nullptr) {
  lcllm::EngineOptions o;
  o.model_path = dir;
  o.threads = 2;
  o.context_tokens = 512;
  o.max_step_tokens = 160;
  o.plan = plan;
  return lcllm::Engine::load(o, std::move(backend));
}

// HiP with budgets far below a fixture's context (masks of 4 blocks of 2 keys), so that masks matter; optionally
// with stage-wise refresh (coarse stages of pieces of at most 4 keys, kept every coarse_refresh_every steps).
inline lcllm::AttentionPlan small_hip_plan(const lcllm::ModelConfig& c, int32_t dense_layers, int32_t refresh_every,
                                           int32_t coarse_refresh_every = 0) {
  return lcllm::attention_preset_resolve("hip", {{"k", 8}, {"block_size_k", 2}, {"block_size_q", 8}, {"sink", 2},
                                                 {"recent", 4}, {"dense_layers", dense_layers},
                                                 {"refresh_every", refresh_every},
                                                 {"coarse_refresh_every", coarse_refresh_every},
                                                 {"coarse_piece_keys", 4}, {"prefill_dense_below", 0},
                                                 {"decode_dense_below", 0}}, c);
}

// Sequences that come and go around HiP's per-sequence decode state: A (the prompt) and B (the prompt reversed)
// decode 7 steps in one batch; A is freed and C (whose id may be A's) prefills the prompt and decodes 5 steps with
// B; then a fork of C decodes 5 steps beside B and C. Decode tokens are the continuation's, offset per sequence.
// Returns every decode step's logits and the ids {A, B, C, fork}.
struct BatchRun {
  std::vector<float> logits;
  std::vector<int32_t> ids;
};
inline BatchRun run_batch_free_fork(lcllm::Engine& engine, const Fixture& f, int32_t vocab_size) {
  BatchRun out;
  auto decode = [&](const std::vector<int32_t>& seqs, int32_t steps) {
    for (int32_t s = 0; s < steps; ++s) {
      std::vector<lcllm::SequenceChunk> chunks;
      std::vector<int32_t> toks(seqs.size());
      for (size_t i = 0; i < seqs.size(); ++i) {
        toks[i] = (f.continuation[size_t(s) % f.continuation.size()] + int32_t(i)) % vocab_size;
        lcllm::SequenceChunk ch;
        ch.seq = seqs[i];
        ch.tokens = std::span<const int32_t>(&toks[i], 1);
        ch.phase = lcllm::AttentionPhase::ATTENTION_PHASE_DECODE;
        chunks.push_back(ch);
      }
      const std::vector<float> logits = engine.step(chunks);
      out.logits.insert(out.logits.end(), logits.begin(), logits.end());
    }
  };
  const std::vector<int32_t> prompt_a(f.prompt.begin(), f.prompt.end());
  const std::vector<int32_t> prompt_b(f.prompt.rbegin(), f.prompt.rend());
  const int32_t a = engine.create_sequence(), b = engine.create_sequence();
  engine.feed(a, prompt_a, false);
  engine.feed(b, prompt_b, false);
  decode({a, b}, 7);
  engine.free_sequence(a);
  const int32_t cs = engine.create_sequence();
  engine.feed(cs, prompt_a, false);
  decode({b, cs}, 5);
  const int32_t fork = engine.fork_sequence(cs);
  decode({b, cs, fork}, 5);
  out.ids = {a, b, cs, fork};
  return out;
}

// Logits of every prompt position (prefill, in chunks of `chunk`) followed by one row per continuation token,
// each fed as its own DECODE step: [prompt + continuation, vocab].
inline std::vector<float> run_prefill_decode(lcllm::Engine& e, const Fixture& f, int32_t chunk = 0) {
  const int32_t seq = e.create_sequence();
  std::vector<float> logits = e.feed(seq, f.prompt, true, chunk);
  for (int32_t tok : f.continuation) {
    const std::vector<float> row =
        e.feed(seq, std::span<const int32_t>(&tok, 1), false, 0, lcllm::AttentionPhase::ATTENTION_PHASE_DECODE);
    logits.insert(logits.end(), row.begin(), row.end());
  }
  e.free_sequence(seq);
  return logits;
}

// sqrt(sum (a-b)^2 / sum b^2) over one row of n values.
inline double relative_error(const float* got, const float* ref, int64_t n) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < n; ++i) {
    diff += double(got[i] - ref[i]) * double(got[i] - ref[i]);
    norm += double(ref[i]) * double(ref[i]);
  }
  return std::sqrt(diff / std::max(norm, 1e-30));
}

// Worst per-row relative error over rows [begin, end).
inline double worst_row_error(const std::vector<float>& got, const std::vector<float>& ref, int64_t vocab,
                              size_t begin, size_t end) {
  double worst = 0;
  for (size_t r = begin; r < end; ++r) {
    worst = std::max(worst, relative_error(got.data() + r * size_t(vocab), ref.data() + r * size_t(vocab), vocab));
  }
  return worst;
}

inline lcllm::HeadGroupPolicy policy(lcllm::AttentionPolicy p, int32_t k = 0, int32_t from = -1, int32_t sink = 0, int32_t recent = 0) {
  lcllm::HeadGroupPolicy g;
  g.policy = p;
  g.k = k;
  g.from = from;
  g.sink = sink;
  g.recent = recent;
  return g;
}

// Plans whose budgets cover every fixture's context (prompt + continuation <= 272 tokens).
// with_hip: include the HiP plans (the backend has HiP: the CPU; the GPU gets it in E9).
inline std::vector<lcllm::AttentionPlan> covering_plans(const lcllm::ModelConfig& c, bool with_hip) {
  std::vector<lcllm::AttentionPlan> plans;
  plans.push_back(lcllm::attention_preset_resolve("streaming", {{"sink", 0}, {"recent", 512}}, c));
  plans.back().name = "streaming recent 512";
  plans.push_back(lcllm::attention_preset_resolve("streaming", {{"sink", 100}, {"recent", 200}}, c));
  plans.back().name = "streaming sink 100 + recent 200";
  plans.push_back(lcllm::attention_preset_resolve("tidal", {{"k", 512}}, c));
  plans.back().name = "tidal k 512";
  plans.push_back(lcllm::attention_preset_resolve("tidal", {{"k", 300}, {"select_layer", 0}, {"reselect_layer", 1}}, c));
  plans.back().name = "tidal k 300 from layer 0";
  // HiP (both phases): k covers the context, so every block is kept; once without sink/window, once with the
  // defaults and a mask refresh every 4 decode steps (cached masks must still see every new key).
  if (with_hip) {
    // (dense thresholds 0: the sparse rule at the fixtures' lengths, which the preset would otherwise attend densely)
    plans.push_back(lcllm::attention_preset_resolve("hip", {{"k", 512}, {"dense_layers", 0}, {"sink", 0}, {"recent", 0},
                                                     {"prefill_dense_below", 0}, {"decode_dense_below", 0}}, c));
    plans.back().name = "hip k 512, no sink/window";
    plans.push_back(lcllm::attention_preset_resolve("hip", {{"k", 512}, {"dense_layers", 0}, {"refresh_every", 4},
                                                     {"prefill_dense_below", 0}, {"decode_dense_below", 0},
                                                     {"block_size_q", 16}, {"recent", 8}}, c));
    plans.back().name = "hip k 512 refresh 4";
    // Stage-wise refresh on: k covers the context, so every search is exact and keeps no stage — this checks the
    // plan's longer list bound and the refresh bookkeeping, not a resumed search (the HiP spy tests check those).
    plans.push_back(lcllm::attention_preset_resolve("hip", {{"k", 512}, {"dense_layers", 0}, {"refresh_every", 2},
                                                     {"prefill_dense_below", 0}, {"decode_dense_below", 0},
                                                     {"coarse_refresh_every", 5}, {"block_size_q", 16}, {"recent", 8}}, c));
    plans.back().name = "hip k 512 refresh 2, coarse stage every 5";
  }
  // Retrieval with every head scored 0: all heads stream (windowed KV) with a window covering the context.
  nlohmann::json zero = nlohmann::json::array();
  for (int32_t l = 0; l < c.n_layers; ++l) zero.push_back(std::vector<double>(size_t(c.n_kv_heads), 0.0));
  plans.push_back(lcllm::attention_preset_resolve("retrieval", {{"scores", zero}, {"sink", 0}, {"recent", 512}}, c));
  plans.back().name = "retrieval all streaming, recent 512";
  // HyLRA: the fallback profile, and a profile that reuses layer 0 everywhere; k covers the context.
  plans.push_back(lcllm::attention_preset_resolve("hylra", {{"k", 512}, {"dense_layers", 0}}, c));
  plans.back().name = "hylra k 512 (fallback profile)";
  nlohmann::json rows = nlohmann::json::array();
  for (int32_t l = 0; l < c.n_layers; ++l) rows.push_back(std::vector<double>(size_t(l + 1), 0.0));
  plans.push_back(lcllm::attention_preset_resolve(
      "hylra", {{"k", 400}, {"profile", {{"n_layers", c.n_layers}, {"loss", rows}}}}, c));
  plans.back().name = "hylra k 400, reuse everywhere";
  // SELECT / SPARSE in prefill too (each prefill row keeps its own top-k), with sink/recent extras. Selection
  // starts at the first global layer: a sliding-window layer can only select inside its window.
  int32_t g = 0;
  while (c.layers[size_t(g)].sliding_window > 0) ++g;
  lcllm::AttentionPlan both = lcllm::attention_plan_full(c, "select at the first global layer, sparse chain, both phases");
  for (auto ph : {lcllm::AttentionPhase::ATTENTION_PHASE_PREFILL, lcllm::AttentionPhase::ATTENTION_PHASE_DECODE}) {
    lcllm::attention_plan_set(both, g, ph, 0, c.n_kv_heads, policy(lcllm::AttentionPolicy::ATTENTION_POLICY_SELECT, 400));
    for (int32_t l = g + 1; l < c.n_layers; ++l) {
      lcllm::attention_plan_set(both, l, ph, 0, c.n_kv_heads,
                         policy(lcllm::AttentionPolicy::ATTENTION_POLICY_SPARSE, 0, l - 1, l == g + 1 ? 2 : 0, l == g + 1 ? 3 : 0));
    }
  }
  plans.push_back(both);
  // Per-KV-head groups: head 0 streams, the others select and reuse.
  if (c.n_kv_heads >= 2) {
    lcllm::AttentionPlan heads = lcllm::attention_plan_full(c, "per-head groups");
    for (auto ph : {lcllm::AttentionPhase::ATTENTION_PHASE_PREFILL, lcllm::AttentionPhase::ATTENTION_PHASE_DECODE}) {
      for (int32_t l = g; l < c.n_layers; ++l) {
        lcllm::attention_plan_set(heads, l, ph, 0, 1, policy(lcllm::AttentionPolicy::ATTENTION_POLICY_STREAM, 0, -1, 8, 400));
        lcllm::attention_plan_set(heads, l, ph, 1, c.n_kv_heads,
                           l == g ? policy(lcllm::AttentionPolicy::ATTENTION_POLICY_SELECT, 300)
                                  : policy(lcllm::AttentionPolicy::ATTENTION_POLICY_SPARSE, 0, g));
      }
    }
    plans.push_back(heads);
  }
  return plans;
}


}  // namespace policy_test
