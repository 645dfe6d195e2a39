// Windowed KV heads (src/kv/kv_window.h, src/attention/attention_kv_window.h): streaming heads keep only their
// sink + recent window. The results must be bit-identical to keeping every position, and the bytes the engine
// reserves must drop by exactly the windowed heads' share.
#include <catch2/catch.hpp>

#include "attention/attention_kv_window.h"
#include "attention/attention_presets.h"
#include "backend/cpu/cpu_backend.h"
#include "policy_test_util.h"

using namespace lcllm;
using namespace policy_test;

namespace {

constexpr AttentionPhase PREFILL = AttentionPhase::ATTENTION_PHASE_PREFILL;
constexpr AttentionPhase DECODE = AttentionPhase::ATTENTION_PHASE_DECODE;

// KV head 0 of every layer streams with a small window; the others are FULL (retrieval heads).
AttentionPlan head0_streams(const ModelConfig& c, int32_t sink, int32_t recent) {
  AttentionPlan p = attention_plan_full(c, "head 0 streams");
  HeadGroupPolicy g;
  g.policy = AttentionPolicy::ATTENTION_POLICY_STREAM;
  g.sink = sink;
  g.recent = recent;
  for (int32_t l = 0; l < c.n_layers; ++l) {
    for (auto ph : {PREFILL, DECODE}) attention_plan_set(p, l, ph, 0, 1, g);
  }
  return p;
}

std::unique_ptr<Engine> engine(const std::string& dir, const AttentionPlan& plan, bool window, int32_t step,
                               CpuBackend** cpu = nullptr) {
  EngineOptions o;
  o.model_path = dir;
  o.context_tokens = 512;
  o.max_step_tokens = step;
  o.plan = plan;
  o.kv_window = window;
  auto be = std::make_unique<CpuBackend>(2);
  if (cpu) *cpu = be.get();
  return Engine::load(o, std::move(be));
}

}  // namespace

TEST_CASE("streaming heads with windowed KV give bit-identical logits to keeping every position",
          "[attention][kv_window][exactness]") {
  for (const auto& dir : fixture_dirs()) {
    const ModelConfig c = model_config_load(dir);
    if (c.n_kv_heads < 2) continue;
    const Fixture f = load_fixture(dir);
    // ring = 3 + 8 + 24 = 35 positions: the 100-272 token contexts wrap it several times.
    const AttentionPlan plan = head0_streams(c, 3, 8);
    auto kept = engine(dir, plan, false, 24);
    auto windowed = engine(dir, plan, true, 24);
    REQUIRE(kept->kv_window().empty());
    REQUIRE(!windowed->kv_window().empty());
    for (int32_t chunk : {0, 7}) {
      const std::vector<float> want = run_prefill_decode(*kept, f, chunk);
      const std::vector<float> got = run_prefill_decode(*windowed, f, chunk);
      INFO(f.name << " chunk " << chunk);
      CHECK(got == want);
    }
    // ... and the stream really is restricted (the window changes the output vs FULL).
    auto full = engine(dir, attention_plan_full(c), true, 24);
    CHECK(worst_row_error(run_prefill_decode(*windowed, f), run_prefill_decode(*full, f), c.vocab_size, 0,
                          f.prompt.size()) > 1e-4);
  }
}

TEST_CASE("windowed KV: the pool drops the streaming heads, each sequence holds one ring", "[attention][kv_window]") {
  const std::string dir = std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/parity/qwen2";
  const ModelConfig c = model_config_load(dir);
  REQUIRE(c.n_kv_heads >= 2);
  const AttentionPlan plan = head0_streams(c, 4, 16);
  CpuBackend* cpu = nullptr;
  auto e = engine(dir, plan, true, 32, &cpu);
  const size_t elem = sizeof(float), hd = size_t(c.head_dim), L = size_t(c.n_layers), H = size_t(c.n_kv_heads);
  const size_t slots = 512;  // 32 pages of 16 tokens
  // Pool: every layer keeps H - 1 heads; K and V.
  CHECK(e->kv_bytes_full() == slots * L * H * hd * 2 * elem);
  CHECK(e->kv_bytes_reserved() == slots * L * (H - 1) * hd * 2 * elem);
  CHECK(cpu->kv_pool_bytes() == e->kv_bytes_reserved());
  CHECK(e->kv_window_bytes() == 0);
  // One live sequence: one ring of sink + recent + step = 52 positions per layer for its single windowed head.
  const Fixture f = load_fixture(dir);
  const int32_t seq = e->create_sequence();
  e->feed(seq, f.prompt, false);
  const size_t ring = size_t(4 + 16 + 32) * L * 1 * hd * 2 * elem;
  CHECK(e->kv_window_bytes() == ring);
  const int32_t fork = e->fork_sequence(seq);
  CHECK(e->kv_window_bytes() == 2 * ring);
  e->free_sequence(seq);
  e->free_sequence(fork);
  CHECK(e->kv_window_bytes() == 0);
  // The estimate `lcllm policy show` and `run` print agrees with what the backend holds.
  const KvMemoryEstimate m = attention_kv_memory(c, e->kv_window(), int64_t(slots), 1, KvDtype::KV_DTYPE_F32);
  CHECK(m.full_bytes == e->kv_bytes_full());
  CHECK(m.plan_bytes == e->kv_bytes_reserved() + ring);
  CHECK(m.saved() == e->kv_bytes_full() - e->kv_bytes_reserved() - ring);
}

TEST_CASE("window layout: only heads streaming with the plan's window in both phases", "[attention][kv_window]") {
  ModelConfig c;
  c.n_layers = 2;
  c.n_heads = 8;
  c.n_kv_heads = 4;
  c.head_dim = 16;
  c.layers.resize(2);
  AttentionPlan p = attention_plan_full(c, "mixed");
  HeadGroupPolicy s;
  s.policy = AttentionPolicy::ATTENTION_POLICY_STREAM;
  s.sink = 4;
  s.recent = 32;
  for (auto ph : {PREFILL, DECODE}) attention_plan_set(p, 0, ph, 0, 2, s);  // layer 0 heads 0-1: windowed
  attention_plan_set(p, 1, DECODE, 0, 1, s);                               // decode only: keeps all
  HeadGroupPolicy other = s;
  other.recent = 64;
  for (auto ph : {PREFILL, DECODE}) attention_plan_set(p, 1, ph, 3, 4, other);  // another window: keeps all
  const KvWindowLayout w = attention_kv_window_layout(p, 16);
  CHECK(w.sink == 4);
  CHECK(w.recent == 32);
  CHECK(w.ring_len == 4 + 32 + 16);
  CHECK(w.windowed == std::vector<uint8_t>{1, 1, 0, 0, 0, 0, 0, 0});
  CHECK(attention_kv_window_layout(attention_plan_full(c), 16).empty());
  // Ring slots: sinks fixed, the rest rotating with period ring_len - sink.
  CHECK(w.ring_slot(3) == 3);
  CHECK(w.ring_slot(4) == 4);
  CHECK(w.ring_slot(4 + 48) == 4);
  CHECK(w.ring_slot(4 + 49) == 5);
}

TEST_CASE("windowed KV: a per-request plan that needs the dropped keys is refused; batched steps use the rings",
          "[attention][kv_window]") {
  const std::string dir = std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/parity/qwen2";
  const ModelConfig c = model_config_load(dir);
  const Fixture f = load_fixture(dir);
  const AttentionPlan plan = head0_streams(c, 4, 16);
  auto e = engine(dir, plan, true, 32);
  auto kept = engine(dir, plan, false, 32);
  try {
    e->plan_for("full");
    FAIL("a FULL plan was accepted on an engine that keeps only a window of head 0");
  } catch (const Error& err) {
    CHECK_THAT(err.what(), Catch::Contains("layer 0, KV head 0") && Catch::Contains("keeps only a"));
  }
  // Engine::step (continuous batching) with two sequences gives what feed gives without windows.
  const std::span<const int32_t> prompt(f.prompt);
  std::vector<float> want_a = kept->feed(kept->create_sequence(), prompt.first(20), false);
  std::vector<float> want_b = kept->feed(kept->create_sequence(), prompt.first(9), false);
  const int32_t a = e->create_sequence(), b = e->create_sequence();
  const SequenceChunk chunks[2] = {{a, prompt.first(20), AttentionPhase::ATTENTION_PHASE_PREFILL, true},
                                   {b, prompt.first(9), AttentionPhase::ATTENTION_PHASE_PREFILL, true}};
  const std::vector<float> got = e->step(chunks);
  const size_t V = size_t(c.vocab_size);
  CHECK(std::vector<float>(got.begin(), got.begin() + long(V)) == want_a);
  CHECK(std::vector<float>(got.begin() + long(V), got.end()) == want_b);
}
