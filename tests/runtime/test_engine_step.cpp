// Engine::step, the batched forward step continuous batching runs on: a ragged batch mixing chunked prefill and
// decode of several sequences must give the same logits as feeding each sequence alone (CPU backend, fp32).
#include <cmath>
#include <fstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "lcllm/error.h"
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
