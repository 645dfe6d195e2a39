// Engine::step, the batched forward step continuous batching runs on: a ragged batch mixing chunked prefill and
// decode of several sequences must give the same logits as feeding each sequence alone (CPU backend, fp32).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <optional>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "lcllm/error.h"
#include "backend/cpu/cpu_backend.h"
#include "attention/attention_plan.h"
#include "runtime/engine.h"

using namespace lcllm;

namespace {

const std::string kFixture = std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/parity/llama2";

std::unique_ptr<Engine> load_engine(int32_t context_tokens = 512) {
  EngineOptions o;
  o.model_path = kFixture;
  o.threads = 2;
  o.context_tokens = context_tokens;
  o.page_size = 4;  // small pages so sequences straddle page boundaries
  o.max_step_tokens = 128;
  return Engine::load(o);
}

std::vector<int32_t> fixture_prompt() {
  std::ifstream in(kFixture + "/reference.json");
  return nlohmann::json::parse(in).at("prompt_ids").get<std::vector<int32_t>>();
}

double max_abs_diff(std::span<const float> a, std::span<const float> b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}

}  // namespace

TEST_CASE("batched step with chunked prefill and decode equals one-sequence feeds", "[engine][step]") {
  const std::vector<int32_t> base = fixture_prompt();
  REQUIRE(base.size() >= 10);
  // Three prompts of different lengths and contents.
  const std::vector<int32_t> p0(base.begin(), base.end());
  const std::vector<int32_t> p1(base.begin() + 3, base.begin() + 10);
  const std::vector<int32_t> p2 = {7, 3, 11};
  const int32_t d0 = 5, d1 = 9, d2 = 13;  // the "sampled" decode tokens
  const auto ATT_DECODE = AttentionPhase::ATTENTION_PHASE_DECODE;

  // Reference: each sequence alone: prompt, then one decode token.
  auto ref = load_engine();
  const int64_t V = ref->config().vocab_size;
  std::vector<std::vector<float>> want_prompt, want_decode;
  for (auto [p, d] : {std::pair{p0, d0}, std::pair{p1, d1}, std::pair{p2, d2}}) {
    const int32_t s = ref->create_sequence();
    want_prompt.push_back(ref->feed(s, p, false));
    want_decode.push_back(ref->feed(s, std::span<const int32_t>(&d, 1), false, 0, ATT_DECODE));
  }

  auto e = load_engine();
  const int32_t s0 = e->create_sequence(), s1 = e->create_sequence(), s2 = e->create_sequence();
  const std::span<const int32_t> sp0(p0);
  // Step 1: s0's first 5 prompt tokens (no logits wanted), s1's whole prompt.
  std::vector<SequenceChunk> c1 = {{s0, sp0.subspan(0, 5), AttentionPhase::ATTENTION_PHASE_PREFILL, false},
                                   {s1, p1, AttentionPhase::ATTENTION_PHASE_PREFILL, true}};
  std::vector<float> l1 = e->step(c1);
  REQUIRE(l1.size() == size_t(V));
  CHECK(max_abs_diff(l1, want_prompt[1]) < 1e-6);
  // Step 2: s1 decodes while s0 finishes its prompt and s2 prefills.
  std::vector<SequenceChunk> c2 = {{s1, std::span<const int32_t>(&d1, 1), ATT_DECODE, true},
                                   {s0, sp0.subspan(5), AttentionPhase::ATTENTION_PHASE_PREFILL, true},
                                   {s2, p2, AttentionPhase::ATTENTION_PHASE_PREFILL, true}};
  std::vector<float> l2 = e->step(c2);
  REQUIRE(l2.size() == size_t(3 * V));
  CHECK(max_abs_diff(std::span(l2).subspan(0, V), want_decode[1]) < 1e-6);
  CHECK(max_abs_diff(std::span(l2).subspan(V, V), want_prompt[0]) < 1e-6);
  CHECK(max_abs_diff(std::span(l2).subspan(2 * V, V), want_prompt[2]) < 1e-6);
  // Step 3: two decodes together.
  std::vector<SequenceChunk> c3 = {{s2, std::span<const int32_t>(&d2, 1), ATT_DECODE, true},
                                   {s0, std::span<const int32_t>(&d0, 1), ATT_DECODE, true}};
  std::vector<float> l3 = e->step(c3);
  CHECK(max_abs_diff(std::span(l3).subspan(0, V), want_decode[2]) < 1e-6);
  CHECK(max_abs_diff(std::span(l3).subspan(V, V), want_decode[0]) < 1e-6);
  CHECK(e->kv_cache().length(s0) == int32_t(p0.size()) + 1);
}

TEST_CASE("argmax_only chunks get the argmax of the logits the others get, in chunk order", "[engine][step]") {
  const std::vector<int32_t> prompt = fixture_prompt();
  const std::vector<int32_t> other(prompt.begin() + 2, prompt.begin() + 9);
  const auto DECODE = AttentionPhase::ATTENTION_PHASE_DECODE, PREFILL = AttentionPhase::ATTENTION_PHASE_PREFILL;
  // The same three sequences on two engines: one returns every row's logits, the other mixes argmax_only rows
  // between logits rows (two decodes take the argmax, the prefill its logits).
  auto ref = load_engine(), e = load_engine();
  const int64_t V = ref->config().vocab_size;
  std::vector<int32_t> seqs_ref, seqs;
  for (int i = 0; i < 3; ++i) {
    seqs_ref.push_back(ref->create_sequence());
    seqs.push_back(e->create_sequence());
  }
  const int32_t t0 = 5, t1 = 9;
  for (Engine* eng : {ref.get(), e.get()}) {
    const std::vector<int32_t>& s = eng == ref.get() ? seqs_ref : seqs;
    std::vector<SequenceChunk> warm = {{s[0], prompt, PREFILL, false}, {s[1], other, PREFILL, false}};
    eng->step(warm);
  }
  std::vector<SequenceChunk> all = {{seqs_ref[0], std::span<const int32_t>(&t0, 1), DECODE, true},
                                    {seqs_ref[2], other, PREFILL, true},
                                    {seqs_ref[1], std::span<const int32_t>(&t1, 1), DECODE, true}};
  const std::vector<float> want = ref->step(all);
  REQUIRE(want.size() == size_t(3 * V));
  std::vector<SequenceChunk> mixed = {{seqs[0], std::span<const int32_t>(&t0, 1), DECODE, true, nullptr, true},
                                      {seqs[2], other, PREFILL, true},
                                      {seqs[1], std::span<const int32_t>(&t1, 1), DECODE, true, nullptr, true}};
  const StepOutputs got = e->step_outputs(mixed);
  REQUIRE(got.logits.size() == size_t(V));
  REQUIRE(got.argmax.size() == 2);
  CHECK(max_abs_diff(got.logits, std::span(want).subspan(size_t(V), size_t(V))) == 0.0);
  for (int k = 0; k < 2; ++k) {  // rows 0 and 2 of the reference
    const auto row = std::span(want).subspan(size_t(2 * k * V), size_t(V));
    CHECK(got.argmax[size_t(k)] == int32_t(std::max_element(row.begin(), row.end()) - row.begin()));
  }
}

TEST_CASE("launched steps chained on the device's argmax decode the tokens step_outputs decodes", "[engine][step]") {
  // Two sequences decode greedily for 6 steps: once step by step (step_outputs, tokens through the host), once as a
  // chain (step_launch: step i + 1 launched on step i's argmax before step i is read, one step in flight). The
  // CPU backend runs embed_chained's default (ids read back in order): the chain must be the same tokens.
  const std::vector<int32_t> prompt = fixture_prompt();
  const std::vector<int32_t> other(prompt.begin() + 3, prompt.begin() + 11);
  const auto DECODE = AttentionPhase::ATTENTION_PHASE_DECODE, PREFILL = AttentionPhase::ATTENTION_PHASE_PREFILL;
  constexpr int kSteps = 6;
  auto run = [&](bool chained) {
    auto e = load_engine();
    const int32_t a = e->create_sequence(), b = e->create_sequence();
    std::vector<SequenceChunk> prefill = {{a, prompt, PREFILL, true, nullptr, true}, {b, other, PREFILL, true, nullptr, true}};
    std::vector<int32_t> last = e->step_outputs(prefill).argmax;  // [2] the prompts' greedy next tokens
    std::vector<std::vector<int32_t>> out = {{last[0]}, {last[1]}};  // [seq][token]
    if (!chained) {
      for (int i = 0; i < kSteps; ++i) {
        std::vector<SequenceChunk> c = {{a, std::span<const int32_t>(&last[0], 1), DECODE, true, nullptr, true},
                                        {b, std::span<const int32_t>(&last[1], 1), DECODE, true, nullptr, true}};
        last = e->step_outputs(c).argmax;
        out[0].push_back(last[0]);
        out[1].push_back(last[1]);
      }
      return out;
    }
    const int32_t placeholder = 0;
    std::vector<SequenceChunk> first = {{a, std::span<const int32_t>(&last[0], 1), DECODE, true, nullptr, true},
                                        {b, std::span<const int32_t>(&last[1], 1), DECODE, true, nullptr, true}};
    REQUIRE(e->can_launch(first));
    LaunchedStep in_flight = e->step_launch(first);
    for (int i = 0; i < kSteps; ++i) {
      std::optional<LaunchedStep> next;
      if (i + 1 < kSteps) {
        // Row order swapped: token_from_previous names the row, not the position in this step.
        std::vector<SequenceChunk> c = {{b, std::span<const int32_t>(&placeholder, 1), DECODE, true, nullptr, true},
                                        {a, std::span<const int32_t>(&placeholder, 1), DECODE, true, nullptr, true}};
        const bool swapped_before = i % 2 == 1;  // in_flight's rows: (a, b) on even i, (b, a) on odd i
        c[0].token_from_previous = swapped_before ? 0 : 1;
        c[1].token_from_previous = swapped_before ? 1 : 0;
        if (i % 2 == 1) std::swap(c[0], c[1]);  // back to (a, b) with rows from (b, a)
        next = e->step_launch(c);
      }
      const std::vector<int32_t> ids = e->step_wait(in_flight);
      const bool rows_swapped = i % 2 == 1;
      out[0].push_back(ids[rows_swapped ? 1 : 0]);
      out[1].push_back(ids[rows_swapped ? 0 : 1]);
      if (next) in_flight = std::move(*next);
    }
    return out;
  };
  const auto want = run(false), got = run(true);
  CHECK(got == want);
  CHECK(want[0].size() == size_t(kSteps + 1));
}

TEST_CASE("step_launch refuses what it cannot chain", "[engine][step]") {
  auto e = load_engine();
  const std::vector<int32_t> prompt = fixture_prompt();
  const auto DECODE = AttentionPhase::ATTENTION_PHASE_DECODE, PREFILL = AttentionPhase::ATTENTION_PHASE_PREFILL;
  const int32_t a = e->create_sequence(), b = e->create_sequence(), c = e->create_sequence();
  for (int32_t seq : {a, b, c}) e->feed(seq, prompt, false);
  const int32_t t = 7;
  std::vector<SequenceChunk> logits_row = {{a, std::span<const int32_t>(&t, 1), DECODE, true}};
  CHECK_FALSE(e->can_launch(logits_row));  // wants logits, not only the argmax
  CHECK_THROWS_WITH(e->step_launch(logits_row), Catch::Contains("argmax"));
  std::vector<SequenceChunk> prompt_chunk = {{a, std::span<const int32_t>(prompt).subspan(0, 2), PREFILL, true, nullptr, true}};
  CHECK_FALSE(e->can_launch(prompt_chunk));  // two tokens: a prompt chunk
  std::vector<SequenceChunk> from_nothing = {{a, std::span<const int32_t>(&t, 1), DECODE, true, nullptr, true}};
  from_nothing[0].token_from_previous = 0;
  CHECK_THROWS_WITH(e->step_outputs(from_nothing), Catch::Contains("step_launch"));
  CHECK_THROWS_WITH(e->step_launch(from_nothing), Catch::Contains("not a row of the step launched before"));
  CHECK(e->kv_cache().length(a) == int32_t(prompt.size()));  // refused before anything changed

  auto one = [&](int32_t seq) {
    return std::vector<SequenceChunk>{{seq, std::span<const int32_t>(&t, 1), DECODE, true, nullptr, true}};
  };
  LaunchedStep s1 = e->step_launch(one(a));
  LaunchedStep s2 = e->step_launch(one(b));
  CHECK_THROWS_WITH(e->step_launch(one(c)), Catch::Contains("two steps in flight"));
  CHECK(e->kv_cache().length(c) == int32_t(prompt.size()));
  CHECK(e->step_wait(s1).size() == 1);
  CHECK(e->step_wait(s2).size() == 1);
  CHECK(e->step_launch(one(c)).rows == 1);
}

TEST_CASE("batched step is all or nothing and rejects bad batches", "[engine][step]") {
  auto e = load_engine(16);  // 4 pages of 4 tokens
  const int32_t a = e->create_sequence(), b = e->create_sequence();
  const std::vector<int32_t> eight = {1, 2, 3, 4, 5, 6, 7, 8}, twelve = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::vector<SequenceChunk> full = {{a, eight}, {b, twelve}};  // needs 5 pages of 4
  CHECK_THROWS_AS(e->step(full), Error);
  CHECK(e->kv_cache().length(a) == 0);
  CHECK(e->kv_cache().length(b) == 0);
  CHECK(e->kv_cache().pages_free() == 4);

  std::vector<SequenceChunk> twice = {{a, eight}, {a, eight}};
  CHECK_THROWS_WITH(e->step(twice), Catch::Contains("given twice"));
  const std::vector<int32_t> bad = {1, -1};
  std::vector<SequenceChunk> bad_id = {{a, bad}};
  CHECK_THROWS_WITH(e->step(bad_id), Catch::Contains("outside the vocabulary"));
  const std::vector<int32_t> many(129, 1);
  std::vector<SequenceChunk> too_many = {{a, many}};
  CHECK_THROWS_WITH(e->step(too_many), Catch::Contains("exceed the step size"));
  CHECK(e->kv_cache().length(a) == 0);
  std::vector<SequenceChunk> ok = {{a, eight, AttentionPhase::ATTENTION_PHASE_PREFILL, false}};
  CHECK(e->step(ok).empty());  // no logits wanted
  CHECK(e->kv_cache().length(a) == 8);
}

// Relative RMS difference of two logit vectors.
double relative_rms(std::span<const float> want, std::span<const float> got) {
  double se = 0, ss = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    se += (double(want[i]) - got[i]) * (double(want[i]) - got[i]);
    ss += double(want[i]) * want[i];
  }
  return std::sqrt(se / ss);
}

TEST_CASE("--kv-cache-dtype on the CPU: fp8 and bf16 are emulated at the write; logits stay near fp32", "[engine][fp8]") {
  const std::vector<int32_t> prompt = fixture_prompt();
  auto run = [&](const std::string& dtype, CpuBackend** backend_out) {
    EngineOptions o;
    o.model_path = kFixture;
    o.context_tokens = 512;
    o.page_size = 4;
    o.kv_cache_dtype = dtype;
    auto be = std::make_unique<CpuBackend>(2);
    if (backend_out) *backend_out = be.get();
    auto e = Engine::load(o, std::move(be));
    const int32_t s = e->create_sequence();
    std::vector<float> logits = e->feed(s, prompt, true);
    return std::pair{std::move(e), std::move(logits)};
  };
  auto [full, want] = run("auto", nullptr);
  CHECK(full->kv_dtype() == KvDtype::KV_DTYPE_F32);
  CpuBackend* cpu = nullptr;
  auto [fp8, got] = run("fp8", &cpu);
  CHECK(fp8->kv_dtype() == KvDtype::KV_DTYPE_FP8_E4M3);
  CHECK(fp8->kv_storage_dtype() == KvDtype::KV_DTYPE_F32);  // the CPU stores the rounded values in fp32
  // Every stored K vector is e4m3 codes times one power-of-two scale: rounding it again changes nothing.
  const ModelConfig& c = fp8->config();
  const int32_t hd = c.head_dim;
  const float* k0 = cpu->kv_data(0, false);
  for (size_t slot = 0; slot < prompt.size(); ++slot) {
    for (int32_t h = 0; h < c.n_kv_heads; ++h) {
      std::vector<float> v(k0 + (slot * c.n_kv_heads + h) * hd, k0 + (slot * c.n_kv_heads + h + 1) * hd);
      const std::vector<float> before = v;
      kv_round_vector(v.data(), hd, KvDtype::KV_DTYPE_FP8_E4M3);
      CHECK(v == before);
    }
  }
  // The tiny random fixture amplifies K/V errors (~16x bf16's for e4m3's 4 significant bits against bf16's 8):
  // close to fp32, further than bf16, and not equal (the rounding happened). Accuracy on real models:
  // docs/EVALUATION.md.
  auto [bf16, got16] = run("bf16", nullptr);
  const double err8 = relative_rms(want, got), err16 = relative_rms(want, got16);
  INFO("relative rms of the logits: fp8 " << err8 << ", bf16 " << err16);
  CHECK(err16 > 0);
  CHECK(err16 < 0.01);
  CHECK(err8 > 4 * err16);
  CHECK(err8 < 0.15);
  EngineOptions bad;
  bad.model_path = kFixture;
  bad.kv_cache_dtype = "int4";
  CHECK_THROWS_WITH(Engine::load(bad), Catch::Contains("--kv-cache-dtype 'int4'"));
}

TEST_CASE("sequences under different plans share one step: each equals its sequence run alone under its plan",
          "[engine][step][plans]") {
  using enum AttentionPhase;
  auto e = load_engine();
  const ModelConfig& c = e->config();
  auto both = [](AttentionPlan& p, int32_t l, int32_t h0, int32_t h1, const HeadGroupPolicy& g) {
    for (auto ph : {ATTENTION_PHASE_PREFILL, ATTENTION_PHASE_DECODE}) attention_plan_set(p, l, ph, h0, h1, g);
  };
  // TidalDecode-like: layer 0 selects 4 keys per (row, head), layer 1 reads them beside 1 sink + 2 recent.
  AttentionPlan tidal = attention_plan_full(c, "select-reuse");
  HeadGroupPolicy select;
  select.policy = AttentionPolicy::ATTENTION_POLICY_SELECT;
  select.k = 4;
  both(tidal, 0, 0, c.n_kv_heads, select);
  HeadGroupPolicy reuse;
  reuse.policy = AttentionPolicy::ATTENTION_POLICY_SPARSE;
  reuse.from = 0;
  reuse.sink = 1;
  reuse.recent = 2;
  both(tidal, 1, 0, c.n_kv_heads, reuse);
  // Streaming heads beside full ones in layer 1.
  AttentionPlan stream = attention_plan_full(c, "half-stream");
  HeadGroupPolicy st;
  st.policy = AttentionPolicy::ATTENTION_POLICY_STREAM;
  st.sink = 2;
  st.recent = 3;
  both(stream, 1, 0, 2, st);
  // HiP on layer 1 (host masks per query block: chunk boundaries matter, so the reference chunks the same way).
  AttentionPlan hip = attention_plan_full(c, "hip-small");
  HeadGroupPolicy hg;
  hg.policy = AttentionPolicy::ATTENTION_POLICY_HIP;
  hg.hip.k = 4;
  hg.hip.block_size_q = 2;
  hg.hip.block_size_k = 2;
  hg.hip.sink = 1;
  hg.hip.recent = 2;
  both(hip, 1, 0, c.n_kv_heads, hg);
  const AttentionPlan full = attention_plan_full(c);
  for (const AttentionPlan* p : {&tidal, &stream, &hip}) REQUIRE_NOTHROW(attention_plan_validate(*p, c, p->name));

  const std::vector<int32_t> base = fixture_prompt();
  REQUIRE(base.size() >= 24);
  const std::vector<const AttentionPlan*> plans = {&full, &tidal, &stream, &hip};  // one per sequence
  std::vector<std::vector<int32_t>> prompts;  // [4] different lengths and contents
  for (size_t i = 0; i < plans.size(); ++i) {
    prompts.emplace_back(base.begin() + std::ptrdiff_t(i), base.begin() + std::ptrdiff_t(24 - i));
  }
  const std::vector<int32_t> dec = {5, 9, 13, 17};  // each sequence's decode token
  const int64_t V = c.vocab_size;
  // The schedule: step 1 prefills sequences 0-2 and the first half of 3; step 2 decodes 0-2 beside the rest of
  // 3's prompt; step 3 decodes 3.
  const size_t half = prompts[3].size() / 2;
  auto run = [&](Engine& eng, const std::vector<std::vector<SequenceChunk>>& steps) {
    std::vector<std::vector<float>> out;
    for (const auto& chunks_of_step : steps) out.push_back(eng.step(chunks_of_step));
    return out;
  };
  // Reference: each sequence alone, same chunks, its own plan.
  std::vector<std::vector<float>> want_prompt(4), want_decode(4);
  {
    auto ref = load_engine();
    for (size_t i = 0; i < 4; ++i) {
      const int32_t s = ref->create_sequence();
      const std::span<const int32_t> p(prompts[i]);
      if (i == 3) {
        run(*ref, {{{s, p.subspan(0, half), ATTENTION_PHASE_PREFILL, false, plans[i]}}});
        want_prompt[i] = run(*ref, {{{s, p.subspan(half), ATTENTION_PHASE_PREFILL, true, plans[i]}}})[0];
      } else {
        want_prompt[i] = run(*ref, {{{s, p, ATTENTION_PHASE_PREFILL, true, plans[i]}}})[0];
      }
      want_decode[i] = run(*ref, {{{s, std::span<const int32_t>(&dec[i], 1), ATTENTION_PHASE_DECODE, true, plans[i]}}})[0];
    }
  }
  std::vector<int32_t> seqs;
  for (int i = 0; i < 4; ++i) seqs.push_back(e->create_sequence());
  const std::span<const int32_t> p3(prompts[3]);
  std::vector<SequenceChunk> step1, step2, step3;
  for (size_t i = 0; i < 3; ++i) step1.push_back({seqs[i], prompts[i], ATTENTION_PHASE_PREFILL, true, plans[i]});
  step1.push_back({seqs[3], p3.subspan(0, half), ATTENTION_PHASE_PREFILL, false, plans[3]});
  for (size_t i = 0; i < 3; ++i) {
    step2.push_back({seqs[i], std::span<const int32_t>(&dec[i], 1), ATTENTION_PHASE_DECODE, true, plans[i]});
  }
  step2.push_back({seqs[3], p3.subspan(half), ATTENTION_PHASE_PREFILL, true, plans[3]});
  step3.push_back({seqs[3], std::span<const int32_t>(&dec[3], 1), ATTENTION_PHASE_DECODE, true, plans[3]});
  const auto got = run(*e, {step1, step2, step3});
  REQUIRE(got[0].size() == size_t(3 * V));
  REQUIRE(got[1].size() == size_t(4 * V));
  for (size_t i = 0; i < 3; ++i) {
    CHECK(max_abs_diff(std::span(got[0]).subspan(i * V, V), want_prompt[i]) < 1e-5);
    CHECK(max_abs_diff(std::span(got[1]).subspan(i * V, V), want_decode[i]) < 1e-5);
  }
  CHECK(max_abs_diff(std::span(got[1]).subspan(3 * V, V), want_prompt[3]) < 1e-5);
  CHECK(max_abs_diff(got[2], want_decode[3]) < 1e-5);
  // The plans matter here: under FULL, the sparse sequences' last logits differ (so a step that ran one plan for
  // all would fail the checks above).
  auto under_full = load_engine();
  for (size_t i = 1; i < 4; ++i) {
    const int32_t s = under_full->create_sequence();
    under_full->feed(s, prompts[i], false);
    const std::vector<float> f = under_full->feed(s, std::span<const int32_t>(&dec[i], 1), false, 0, ATTENTION_PHASE_DECODE);
    CHECK(max_abs_diff(f, want_decode[i]) > 1e-3);
  }
}

TEST_CASE("max_step_tokens 0 picks the backend's step size; a negative one is refused", "[engine][step]") {
  EngineOptions o;
  o.model_path = kFixture;
  o.threads = 2;
  o.context_tokens = 256;
  o.max_step_tokens = 0;
  auto e = Engine::load(o);
  CHECK(e->max_step_tokens() == engine_auto_step_tokens("cpu"));
  CHECK(e->options().max_step_tokens == e->max_step_tokens());
  CHECK(engine_auto_step_tokens("cpu") == 256);
  CHECK(engine_auto_step_tokens("cuda") == 4096);
  // The auto-sized engine runs (its buffers are sized for the resolved step).
  const std::vector<int32_t> prompt = fixture_prompt();
  const int32_t s = e->create_sequence();
  const std::vector<float> logits = e->feed(s, prompt, false);
  CHECK(logits.size() == size_t(e->config().vocab_size));
  o.max_step_tokens = -1;
  CHECK_THROWS_WITH(Engine::load(o), Catch::Contains("step size not negative"));
}
