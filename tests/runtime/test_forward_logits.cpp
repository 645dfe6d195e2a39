// forward_step returns the logits of every wanted row whether they fit one piece of the logits buffer or take
// several (ForwardBuffers::logits holds at most 256 MiB; scoring and parity steps may want more rows).
#include <catch2/catch.hpp>

#include "../attention/policy_test_util.h"
#include "attention/attention_presets.h"
#include "backend/cpu/cpu_backend.h"
#include "io/safetensors.h"
#include "kv/kv_cache.h"
#include "runtime/forward.h"

using namespace lcllm;
using namespace policy_test;

namespace {

// All of the prompt's logits in one prefill step, through a logits buffer of `piece_rows` rows (0: the default).
std::vector<float> prompt_logits(const std::string& dir, const std::vector<int32_t>& prompt, int64_t piece_rows) {
  const ModelConfig c = model_config_load(dir);
  Checkpoint ckpt = Checkpoint::open(dir);
  CpuBackend be(2);
  const ModelWeights w = model_weights_bind(c, ckpt, be);
  const int32_t n_pages = int32_t(prompt.size()) / 16 + 2;
  KvCache kv(KvCacheConfig{16, n_pages});
  be.kv_reserve(c.n_layers, n_pages, 16, c.n_kv_heads, c.head_dim);
  const AttentionPlan plan = attention_preset_resolve("full", nlohmann::json::object(), c);
  const int32_t seq = kv.create_sequence();
  const int32_t n = int32_t(prompt.size());
  ForwardBuffers buf = forward_buffers_alloc(be, c, n, piece_rows);
  const AppendPlan append = kv.append_tokens(seq, n);
  const std::vector<int32_t> seqs = {seq};
  const CsrPages pages = kv.export_csr(seqs);
  std::vector<int32_t> positions(static_cast<size_t>(n)), query_start{0, n}, kv_len{n}, rows(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) positions[size_t(i)] = rows[size_t(i)] = i;
  const AttentionPhase phases[1] = {AttentionPhase::ATTENTION_PHASE_PREFILL};
  StepInput in;
  in.tokens = prompt;
  in.positions = positions;
  in.slots = append.slots;
  in.attention = AttentionBatch{query_start, positions, kv_len, &pages};
  in.phases = phases;
  in.logit_rows = rows;
  std::vector<float> logits(size_t(n) * size_t(c.vocab_size), std::nanf(""));
  forward_step(be, c, w, plan, buf, in, logits.data());
  return logits;
}

}  // namespace

TEST_CASE("forward_step's logits are the same in one piece or in pieces of 3 rows", "[runtime][forward]") {
  for (const auto& dir : fixture_dirs()) {
    const Fixture f = load_fixture(dir);
    INFO(f.name << ": " << f.prompt.size() << " rows");
    REQUIRE(f.prompt.size() > 3);
    const std::vector<float> whole = prompt_logits(dir, f.prompt, 0), pieces = prompt_logits(dir, f.prompt, 3);
    CHECK(pieces == whole);  // also: no NaN left, every row written
  }
}
