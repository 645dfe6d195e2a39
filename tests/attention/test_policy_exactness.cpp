// ARCHITECTURE.md §4.1 on real-format models (the parity fixtures): every sparse policy whose budget covers the
// context computes what FULL computes, in prefill and in decode; and SPARSE layers read exactly the selection of
// the layer their plan names (reuse chains included).
#include <catch2/catch.hpp>

#include "attention/attention_plan_json.h"
#include "attention/attention_presets.h"
#include "attention/hip_mask.h"
#include "attention/hip_policy.h"
#include "backend/cpu/cpu_backend.h"
#include "delegating_backend.h"
#include "io/safetensors.h"
#include "policy_test_util.h"
#include "runtime/forward.h"

using namespace lcllm;
using namespace policy_test;

namespace {

constexpr AttentionPhase PREFILL = AttentionPhase::ATTENTION_PHASE_PREFILL;
constexpr AttentionPhase DECODE = AttentionPhase::ATTENTION_PHASE_DECODE;

}  // namespace

TEST_CASE("sparse policies with a budget covering the context equal FULL (prefill and decode, every fixture)",
          "[attention][exactness]") {
  for (const auto& dir : fixture_dirs()) {
    const Fixture f = load_fixture(dir);
    const ModelConfig c = model_config_load(dir);
    auto full = load_engine(dir, attention_plan_full(c));
    const std::vector<float> ref = run_prefill_decode(*full, f);
    const size_t n_prompt = f.prompt.size(), n_all = n_prompt + f.continuation.size();
    for (const AttentionPlan& plan : covering_plans(c, true)) {
      auto e = load_engine(dir, plan);
      for (int32_t chunk : {0, 37}) {  // one prefill step, and chunked prefill (earlier chunks stay in the cache)
        const std::vector<float> got = run_prefill_decode(*e, f, chunk);
        INFO(f.name << " plan '" << plan.name << "' chunk " << chunk);
        CHECK(worst_row_error(got, ref, c.vocab_size, 0, n_prompt) <= 1e-6);
        CHECK(worst_row_error(got, ref, c.vocab_size, n_prompt, n_all) <= 1e-6);
      }
    }
  }
}

TEST_CASE("a small budget changes the output (the exactness test is not vacuous)", "[attention][exactness]") {
  const std::string dir = std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/parity/llama3";
  const Fixture f = load_fixture(dir);
  const ModelConfig c = model_config_load(dir);
  const std::vector<float> ref = run_prefill_decode(*load_engine(dir, attention_plan_full(c)), f);
  const size_t n_prompt = f.prompt.size(), n_all = n_prompt + f.continuation.size();
  const auto tidal = attention_preset_resolve("tidal", {{"k", 8}, {"select_layer", 0}}, c);
  const std::vector<float> got = run_prefill_decode(*load_engine(dir, tidal), f);
  CHECK(worst_row_error(got, ref, c.vocab_size, 0, n_prompt) == 0.0);  // TidalDecode leaves prefill dense
  CHECK(worst_row_error(got, ref, c.vocab_size, n_prompt, n_all) > 1e-3);
  const auto stream = attention_preset_resolve("streaming", {{"sink", 4}, {"recent", 16}}, c);
  const std::vector<float> s = run_prefill_decode(*load_engine(dir, stream), f);
  CHECK(worst_row_error(s, ref, c.vocab_size, 0, n_prompt) > 1e-3);
  const auto hip = attention_preset_resolve(
      "hip",
      {{"k", 8}, {"dense_layers", 0}, {"sink", 0}, {"recent", 4}, {"block_size_q", 8}, {"prefill_dense_below", 0},
       {"decode_dense_below", 0}, {"dense_tail", 0}},
      c);
  const std::vector<float> h = run_prefill_decode(*load_engine(dir, hip), f);
  CHECK(worst_row_error(h, ref, c.vocab_size, 0, n_prompt) > 1e-3);
  CHECK(worst_row_error(h, ref, c.vocab_size, n_prompt, n_all) > 1e-3);
}

namespace {

// Delegates to the CPU backend and records, per layer, the keys each (row, KV head) attended to and the selection
// the layer left in its slot.
class SpyBackend final : public DelegatingBackend {
 public:
  std::vector<std::vector<std::vector<int32_t>>> key_lists;  // [layer][item] keys of the last attention_key_sets
  std::vector<std::vector<std::vector<int32_t>>> selected;   // [layer][item] the last selection the layer made
  std::vector<HipBlockRequest> hip_requests;                 // every attention_hip_blocks request
  std::vector<std::vector<HipPiece>> hip_stages;             // [hip_requests] the stage each stored (or empty)
  int32_t n_kv_heads = 0;

  std::string name() const override { return "spy"; }
  void kv_reserve(int32_t a, int32_t b, int32_t c, int32_t d, int32_t e) override {
    cpu.kv_reserve(a, b, c, d, e);
    n_kv_heads = d;
    key_lists.assign(size_t(a), {});
    selected.assign(size_t(a), {});
  }
  std::vector<std::vector<int32_t>> slot_lists(int32_t slot) {
    std::vector<int64_t> indptr;
    std::vector<int32_t> positions;
    cpu.selection_read(slot, indptr, positions);
    std::vector<std::vector<int32_t>> lists;
    for (size_t i = 0; i + 1 < indptr.size(); ++i) lists.emplace_back(positions.begin() + indptr[i], positions.begin() + indptr[i + 1]);
    return lists;
  }
  void attention_key_sets(Tensor o, const Tensor& q, int32_t l, const AttentionBatch& b, const AttentionParams& p,
                          const LayerKeySets& keys) override {
    const size_t n_items = size_t(b.query_start[b.kv_len.size()]) * size_t(n_kv_heads);
    auto& out = key_lists[size_t(l)];
    out.assign(n_items, {});
    for (size_t i = 0; i < n_items; ++i) {
      const KeySet& s = keys.sets[i];
      for (int32_t j = s.lo; j < s.sink_end; ++j) out[i].push_back(j);
      if (s.list >= 0) {
        const std::vector<std::vector<int32_t>> lists = slot_lists(s.list);
        for (int32_t j : lists[i]) {
          if (j >= s.sink_end && j < s.recent_begin) out[i].push_back(j);
        }
      }
      for (int32_t j = s.recent_begin; j < s.hi; ++j) out[i].push_back(j);
    }
    cpu.attention_key_sets(o, q, l, b, p, keys);
    if (keys.select_k != nullptr) selected[size_t(l)] = slot_lists(keys.select_slot);
  }
  void attention_hip_blocks(const Tensor& q, int32_t l, const AttentionBatch& b, const AttentionParams& p,
                            std::span<const HipBlockRequest> r, HipBlocks& out) override {
    hip_requests.insert(hip_requests.end(), r.begin(), r.end());
    cpu.attention_hip_blocks(q, l, b, p, r, out);
    for (size_t i = 0; i < r.size(); ++i) {
      hip_stages.emplace_back();
      if (!out.stage_indptr.empty()) {
        hip_stages.back().assign(out.stage.begin() + out.stage_indptr[i], out.stage.begin() + out.stage_indptr[i + 1]);
      }
    }
  }
};

// An engine over the fixture on a SpyBackend (be: the backend it owns), the step sizes of the HiP tests.
std::unique_ptr<Engine> spy_engine(const std::string& dir, const AttentionPlan& plan, SpyBackend*& be) {
  EngineOptions o;
  o.model_path = dir;
  o.context_tokens = 512;
  o.max_step_tokens = 160;
  o.plan = plan;
  auto spy = std::make_unique<SpyBackend>();
  be = spy.get();
  return Engine::load(o, std::move(spy));
}

// Prefills the prompt, then runs one DECODE step on the first continuation token through forward_step on `be`.
void prefill_and_decode_once(SpyBackend& be, const std::string& dir, const Fixture& f, const AttentionPlan& plan) {
  const ModelConfig c = model_config_load(dir);
  Checkpoint ckpt = Checkpoint::open(dir);
  const ModelWeights w = model_weights_bind(c, ckpt, be);
  KvCache kv(KvCacheConfig{16, 32});
  be.kv_reserve(c.n_layers, 32, 16, c.n_kv_heads, c.head_dim);
  ForwardBuffers buf = forward_buffers_alloc(be, c, 160);
  const int32_t seq = kv.create_sequence();
  std::vector<float> logits(size_t(c.vocab_size));
  for (AttentionPhase phase : {PREFILL, DECODE}) {
    const std::span<const int32_t> tokens =
        phase == PREFILL ? std::span<const int32_t>(f.prompt) : std::span<const int32_t>(f.continuation).first(1);
    const int32_t start = kv.length(seq), n = int32_t(tokens.size());
    const AppendPlan append = kv.append_tokens(seq, n);
    const std::vector<int32_t> seqs = {seq};
    const CsrPages pages = kv.export_csr(seqs);
    std::vector<int32_t> positions(static_cast<size_t>(n)), query_start{0, n}, kv_len{start + n}, rows{n - 1};
    for (int32_t i = 0; i < n; ++i) positions[size_t(i)] = start + i;
    const AttentionPhase phases[1] = {phase};
    StepInput in;
    in.tokens = tokens;
    in.positions = positions;
    in.slots = append.slots;
    in.attention = AttentionBatch{query_start, positions, kv_len, &pages};
    in.phases = phases;
    in.logit_rows = rows;
    forward_step(be, c, w, plan, buf, in, logits.data());
  }
}

}  // namespace

TEST_CASE("SPARSE{from} reads exactly the named layer's selection; chains pass it on unchanged", "[attention][exactness]") {
  for (const auto& dir : fixture_dirs()) {
    const ModelConfig c = model_config_load(dir);
    if (c.n_layers < 3) continue;  // qwen3 (3 layers), gemma2 (4), gemma3 (6)
    const Fixture f = load_fixture(dir);
    const int32_t H = c.n_kv_heads;
    const int32_t pos = int32_t(f.prompt.size());  // the decode row's position
    // Keys layer 2 may see under FULL rules (gemma's local layers clip to their window).
    const int32_t win = c.layers[2].sliding_window;
    const int32_t lo = win > 0 ? std::max(0, pos - win + 1) : 0;
    auto clip = [&](const std::vector<std::vector<int32_t>>& s, int32_t h) {
      std::vector<int32_t> v;
      for (int32_t j : s.at(size_t(h))) {
        if (j >= lo) v.push_back(j);
      }
      return v;
    };
    auto list = [&](const SpyBackend& be, int32_t layer, int32_t h) { return be.key_lists[size_t(layer)].at(size_t(h)); };
    const int32_t k = 8;
    // Plan A: layers 0 and 1 both SELECT; layer 2 SPARSE{from=1}.
    AttentionPlan a = attention_plan_full(c, "a");
    attention_plan_set(a, 0, DECODE, 0, H, policy(AttentionPolicy::ATTENTION_POLICY_SELECT, k));
    attention_plan_set(a, 1, DECODE, 0, H, policy(AttentionPolicy::ATTENTION_POLICY_SELECT, k));
    attention_plan_set(a, 2, DECODE, 0, H, policy(AttentionPolicy::ATTENTION_POLICY_SPARSE, 0, 1));
    SpyBackend spy_a;
    prefill_and_decode_once(spy_a, dir, f, a);
    // Plan B: layer 1 SPARSE{from=0}, layer 2 SPARSE{from=1}: the chain resolves to layer 0's selection.
    AttentionPlan b = a;
    attention_plan_set(b, 1, DECODE, 0, H, policy(AttentionPolicy::ATTENTION_POLICY_SPARSE, 0, 0));
    SpyBackend spy_b;
    prefill_and_decode_once(spy_b, dir, f, b);
    bool layers_differ = false;
    for (int32_t h = 0; h < H; ++h) {
      INFO(dir << " kv head " << h);
      const auto sel0 = clip(spy_a.selected[0], h), sel1 = clip(spy_a.selected[1], h);
      layers_differ = layers_differ || sel0 != sel1;
      CHECK(list(spy_a, 2, h) == sel1);
      CHECK(spy_b.selected[1].empty());  // layer 1 no longer selects
      CHECK(list(spy_b, 2, h) == clip(spy_b.selected[0], h));
      CHECK(spy_b.selected[0] == spy_a.selected[0]);  // same prefix, same layer-0 selection
    }
    CHECK(layers_differ);  // the case is one where reading the wrong layer would show
  }
}

TEST_CASE("HiP: prefill masks per query block; decode masks live in the sequence and refresh every N steps",
          "[attention][hip]") {
  const std::string dir = std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/parity/llama3";
  const Fixture f = load_fixture(dir);
  const ModelConfig c = model_config_load(dir);
  const AttentionPlan plan = attention_preset_resolve(
      "hip",
      {{"k", 16}, {"dense_layers", 1}, {"block_size_q", 32}, {"refresh_every", 5}, {"recent", 8}, {"prefill_dense_below", 0},
       {"decode_dense_below", 0}, {"dense_tail", 0}},
      c);
  SpyBackend* be = nullptr;
  auto e = spy_engine(dir, plan, be);
  const int32_t seq = e->create_sequence();
  e->feed(seq, f.prompt, false);
  // Prefill: HIP layers 1..L-1, ceil(prompt / 32) query blocks per KV head.
  const size_t blocks = (f.prompt.size() + 31) / 32;
  CHECK(be->hip_requests.size() == size_t(c.n_layers - 1) * size_t(c.n_kv_heads) * blocks);
  for (const auto& r : be->hip_requests) {
    CHECK(r.row_end - r.row_begin <= 32);
    CHECK_FALSE(r.descent);  // prefill query blocks: centre representative
  }
  be->hip_requests.clear();
  // 12 decode steps with refresh_every 5: masks computed at steps 1, 6, 11.
  for (int i = 0; i < 12; ++i) {
    const int32_t tok = f.continuation[size_t(i)];
    e->feed(seq, std::span<const int32_t>(&tok, 1), false, 0, DECODE);
  }
  CHECK(be->hip_requests.size() == size_t(3 * (c.n_layers - 1) * c.n_kv_heads));
  for (const auto& r : be->hip_requests) {
    CHECK(r.row_end - r.row_begin == 1);
    CHECK(r.descent);  // decode rows: descent representative
  }
  // A second sequence has its own masks: its first decode step searches again.
  be->hip_requests.clear();
  const int32_t other = e->create_sequence();
  e->feed(other, f.prompt, false);
  const int32_t tok = f.continuation[0];
  be->hip_requests.clear();
  e->feed(other, std::span<const int32_t>(&tok, 1), false, 0, DECODE);
  CHECK(be->hip_requests.size() == size_t((c.n_layers - 1) * c.n_kv_heads));
  be->hip_requests.clear();
  e->feed(seq, std::span<const int32_t>(&tok, 1), false, 0, DECODE);  // step 13 of seq: cached (from step 11)
  CHECK(be->hip_requests.empty());
}

TEST_CASE("HiP stage-wise refresh: a coarse search every N steps keeps its stage; the searches between resume from it",
          "[attention][hip]") {
  const std::string dir = std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/parity/llama3";
  const Fixture f = load_fixture(dir);
  const ModelConfig c = model_config_load(dir);
  // Masks every 2 steps, coarse stages every 6 (pieces of <= 4 keys): over [2, pos - 7) the search keeps 8 of ~48
  // blocks of 2, in chunks of 6 blocks, so the stage is round 2 (6 -> 3 -> 2 blocks).
  const HipParams hp = [&] {
    HipParams p;
    p.k = 16, p.block_size_q = 32, p.block_size_k = 2, p.sink = 2, p.recent = 8, p.refresh_every = 2;
    p.coarse_refresh_every = 6, p.coarse_piece_keys = 4;
    return p;
  }();
  const AttentionPlan plan = attention_preset_resolve(
      "hip", {{"k", hp.k}, {"dense_layers", 1}, {"block_size_q", hp.block_size_q}, {"block_size_k", hp.block_size_k},
              {"sink", hp.sink}, {"recent", hp.recent}, {"refresh_every", hp.refresh_every},
              {"coarse_refresh_every", hp.coarse_refresh_every}, {"coarse_piece_keys", hp.coarse_piece_keys},
              {"prefill_dense_below", 0}, {"decode_dense_below", 0}}, c);
  SpyBackend* be = nullptr;
  auto e = spy_engine(dir, plan, be);
  const int32_t seq = e->create_sequence();
  e->feed(seq, f.prompt, false);
  for (const auto& r : be->hip_requests) {  // prefill: plain searches
    CHECK(r.stage_round == -1);
    CHECK(r.start.empty());
  }
  be->hip_requests.clear();
  be->hip_stages.clear();
  // 12 decode steps at positions 104..115: masks searched at steps 0, 2, .., 10; from step 1's chunks (keeping the
  // stage) at 0 and 6, resumed from that stage at 2, 4, 8, 10.
  const int32_t first_pos = int32_t(f.prompt.size());
  const size_t per_step = size_t(c.n_layers - 1) * size_t(c.n_kv_heads);
  int32_t searches = 0;
  for (int32_t i = 0; i < 12; ++i) {
    const size_t before = be->hip_requests.size();
    const int32_t tok = f.continuation[size_t(i)];
    e->feed(seq, std::span<const int32_t>(&tok, 1), false, 0, DECODE);
    const size_t made = be->hip_requests.size() - before;
    INFO("decode step " << i);
    if (i % 2 == 1) {
      CHECK(made == 0);  // the mask of the step before serves
      continue;
    }
    REQUIRE(made == per_step);
    ++searches;
    const int32_t pos = first_pos + i, coarse_pos = first_pos + (i / 6) * 6;
    for (size_t j = before; j < before + made; ++j) {
      const HipBlockRequest& r = be->hip_requests[j];
      CHECK(r.lo == hp.sink);
      CHECK(r.hi == coarse_pos - hp.recent + 1);  // a resumed search covers the coarse search's keys only
      if (pos == coarse_pos) {
        CHECK(r.start.empty());
        CHECK(r.stage_round == hip_stage_round(r.lo, r.hi, hp.k, hp.block_size_k, hp.coarse_piece_keys));
        CHECK(r.stage_round == 2);
        CHECK(be->hip_stages[j].size() == size_t(hp.k / hp.block_size_k));
      } else {
        CHECK(r.stage_round == -1);
        // Its row attends every key from the coarse search's end on (all_from = stage_hi: keys that arrived since
        // the coarse search were never searched), the sinks, and the mask's blocks.
        const int32_t layer = 1 + int32_t((j - before) / size_t(c.n_kv_heads));
        const int32_t head = int32_t((j - before) % size_t(c.n_kv_heads));
        const std::vector<int32_t>& keys = be->key_lists[size_t(layer)].at(size_t(head));
        for (int32_t key = r.hi; key <= pos; ++key) CHECK(std::binary_search(keys.begin(), keys.end(), key));
        for (int32_t key = 0; key < hp.sink; ++key) CHECK(std::binary_search(keys.begin(), keys.end(), key));
        // The stage the coarse search of the same (layer, head) stored, aged by the steps since.
        const size_t coarse = j - size_t((pos - coarse_pos) / 2) * per_step;
        CHECK(r.start == be->hip_stages[coarse]);
        CHECK(r.start_shift == hip_reuse_shift_blocks(pos - coarse_pos, hp.block_size_k));
        CHECK(hip_start_usable(r.start, r.lo, r.hi, r.k, r.block_size_k));
      }
    }
  }
  CHECK(searches == 6);
  // A prefill step (new keys) drops the stage with the mask: the next decode search starts from step 1.
  e->feed(seq, std::span<const int32_t>(f.prompt.data(), 3), false);
  be->hip_requests.clear();
  const int32_t tok = f.continuation[0];
  e->feed(seq, std::span<const int32_t>(&tok, 1), false, 0, DECODE);
  REQUIRE(be->hip_requests.size() == per_step);
  for (const auto& r : be->hip_requests) {
    CHECK(r.start.empty());
    CHECK(r.stage_round >= 0);
  }
}

TEST_CASE("HiP dense_below: query blocks and decode rows under the threshold attend as FULL, without a search",
          "[attention][hip]") {
  const std::string dir = std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/parity/llama3";
  const Fixture f = load_fixture(dir);
  const ModelConfig c = model_config_load(dir);
  // A budget far below the context (masks of 4 blocks of 2 keys), prefill query blocks of 32 rows: blocks starting
  // at positions 0 and 32 see at most 64 keys (dense), 64 and 96 search; decode rows up to position 109 see at
  // most 110 keys (dense), later ones search.
  const nlohmann::json params = {{"k", 8},  {"block_size_k", 2}, {"block_size_q", 32}, {"sink", 2}, {"recent", 4},
                                 {"dense_layers", 0}, {"prefill_dense_below", 64}, {"decode_dense_below", 110},
                                 {"dense_tail", 0}};
  const AttentionPlan plan = attention_preset_resolve("hip", params, c);
  SpyBackend* be = nullptr;
  auto e = spy_engine(dir, plan, be);
  const int32_t seq = e->create_sequence();
  e->feed(seq, f.prompt, false);
  const size_t per_block = size_t(c.n_layers) * size_t(c.n_kv_heads);
  REQUIRE(be->hip_requests.size() == 2 * per_block);  // the blocks at 64 and 96
  for (const auto& r : be->hip_requests) CHECK(r.row_begin >= 64);
  be->hip_requests.clear();
  const int32_t first_pos = int32_t(f.prompt.size());
  for (int32_t i = 0; i < 12; ++i) {
    const size_t before = be->hip_requests.size();
    const int32_t tok = f.continuation[size_t(i)];
    e->feed(seq, std::span<const int32_t>(&tok, 1), false, 0, DECODE);
    INFO("decode position " << first_pos + i);
    CHECK(be->hip_requests.size() - before == (first_pos + i + 1 <= 110 ? 0 : per_block));
  }
  // What those rows compute is FULL's: the prompt's rows 0-63 (every key they see was computed densely) and the
  // rows of the whole run with thresholds covering the context; the rows that searched differ.
  auto full = load_engine(dir, attention_plan_full(c));
  const std::vector<float> ref = run_prefill_decode(*full, f);
  const std::vector<float> got = run_prefill_decode(*load_engine(dir, plan), f);
  const size_t n_prompt = f.prompt.size(), n_all = n_prompt + f.continuation.size();
  CHECK(worst_row_error(got, ref, c.vocab_size, 0, 64) <= 1e-6);
  CHECK(worst_row_error(got, ref, c.vocab_size, 64, n_prompt) > 5e-2);  // 1.49 on the CPU (2026-12-07)
  nlohmann::json covering = params;
  covering["prefill_dense_below"] = covering["decode_dense_below"] = 1024;
  const std::vector<float> all = run_prefill_decode(*load_engine(dir, attention_preset_resolve("hip", covering, c)), f);
  CHECK(worst_row_error(all, ref, c.vocab_size, 0, n_all) <= 1e-6);
}

TEST_CASE("HiP dense_tail: the query blocks holding a prompt's last rows attend as FULL, only in the step that ends it",
          "[attention][hip]") {
  const std::string dir = std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/parity/llama3";
  const Fixture f = load_fixture(dir);
  const ModelConfig c = model_config_load(dir);
  const int32_t n = int32_t(f.prompt.size()), tail = 40;
  REQUIRE(n > 96);
  const nlohmann::json params = {{"k", 8},  {"block_size_k", 2}, {"block_size_q", 32}, {"sink", 2}, {"recent", 4},
                                 {"dense_layers", 0}, {"prefill_dense_below", 0}, {"decode_dense_below", 0},
                                 {"dense_tail", tail}};
  const AttentionPlan plan = attention_preset_resolve("hip", params, c);
  CHECK(attention_plan_group(plan, 0, PREFILL, 0).hip.dense_tail == tail);
  CHECK(attention_plan_group(plan, 0, DECODE, 0).hip.dense_tail == 0);
  const size_t per_block = size_t(c.n_layers) * size_t(c.n_kv_heads);
  // Query blocks [b, min(b + 32, n)); those ending after n - tail hold a tail row.
  auto searched_blocks = [&](int32_t first_row) {
    size_t count = 0;
    for (int32_t b = first_row; b < n; b += 32) count += std::min(b + 32, n) <= n - tail ? 1 : 0;
    return count;
  };
  SpyBackend* be = nullptr;
  auto e = spy_engine(dir, plan, be);
  const int32_t seq = e->create_sequence();
  e->feed(seq, f.prompt, false);  // one step, its last row's logits returned: it ends the prompt
  REQUIRE(be->hip_requests.size() == searched_blocks(0) * per_block);
  for (const auto& r : be->hip_requests) CHECK(r.row_end <= n - tail);
  // The tail rows of the last layer attended to every key they see; the rows before it did not.
  const auto& lists = be->key_lists[size_t(c.n_layers - 1)];
  for (int32_t r = 0; r < n; ++r) {
    const bool in_tail = std::min((r / 32 + 1) * 32, n) > n - tail;
    const std::vector<int32_t>& keys = lists[size_t(r) * size_t(c.n_kv_heads)];
    INFO("row " << r);
    if (in_tail) CHECK(keys.size() == size_t(r + 1));
    else if (r >= 32) CHECK(keys.size() < size_t(r + 1));
  }
  // Fed in chunks of 64 rows, only the last chunk ends the prompt: the first chunk's blocks all search.
  be->hip_requests.clear();
  const int32_t chunked = e->create_sequence();
  e->feed(chunked, f.prompt, false, 64);
  CHECK(be->hip_requests.size() == (2 + searched_blocks(64)) * per_block);
  // A tail covering the prompt makes its prefill FULL's exactly, while decode rows still search.
  auto full = load_engine(dir, attention_plan_full(c));
  const std::vector<float> ref = run_prefill_decode(*full, f);
  nlohmann::json covering = params;
  covering["dense_tail"] = 1024;
  const std::vector<float> got =
      run_prefill_decode(*load_engine(dir, attention_preset_resolve("hip", covering, c)), f);
  const size_t n_all = size_t(n) + f.continuation.size();
  CHECK(worst_row_error(got, ref, c.vocab_size, 0, size_t(n)) <= 1e-6);
  CHECK(worst_row_error(got, ref, c.vocab_size, size_t(n), n_all) > 1e-3);
  // Without the tail the prompt's last rows differ from FULL's (the test above is not vacuous).
  covering["dense_tail"] = 0;
  const std::vector<float> none =
      run_prefill_decode(*load_engine(dir, attention_preset_resolve("hip", covering, c)), f);
  CHECK(worst_row_error(none, ref, c.vocab_size, size_t(n) - 1, size_t(n)) > 1e-3);
}
