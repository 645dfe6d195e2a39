// HiP's reused decode masks kept on the backend (Backend::hip_cache_keep, ARCHITECTURE.md §3) against masks kept
// on the host: a backend that emulates the device cache on the CPU (its rows are host vectors) must give the same
// logits, bit for bit, as the CPU backend itself — so the policy code names the right row for every (sequence,
// layer, KV head), keeps masks exactly on the steps that search, releases a freed sequence's rows and lets a fork
// search anew. The CUDA backend's rows are checked against the same host rule in tests/cuda.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <map>
#include <tuple>

#include "attention/hip_policy.h"
#include "delegating_backend.h"
#include "policy_test_util.h"

using namespace lcllm;
using namespace policy_test;

namespace {

// The CPU backend plus a device-style HiP cache: searches leave their blocks "on the device" (last_search), kept
// masks live in rows, and selection_write_hip resolves both before expanding on the host.
// What the backend saw; outlives the engine that owns the backend.
struct CacheRecord {
  std::vector<HipCacheKeep> keeps;  // every hip_cache_keep, in order
  std::vector<int32_t> released;    // every hip_cache_release
  int64_t reused_masks = 0;         // masks a step read from a row
  int64_t stages_kept = 0;          // keeps that also kept a coarse stage
  int64_t resumed = 0;              // searches that started from a row's stage
};

class CacheEmulatingBackend final : public DelegatingBackend {
 public:
  explicit CacheEmulatingBackend(CacheRecord& record) : rec_(record) {}
  std::string name() const override { return "hip-cache-emulating"; }
  bool attention_hip_blocks_device(const Tensor& q, int32_t l, const AttentionBatch& b, const AttentionParams& p,
                                   std::span<const HipBlockRequest> r) override {
    // A start named by its row becomes the row's kept stage (the host rule then ages it).
    std::vector<HipBlockRequest> with_start(r.begin(), r.end());
    for (HipBlockRequest& x : with_start) {
      REQUIRE(x.start.empty());  // on a caching backend starts are rows
      if (x.start_row < 0) continue;
      REQUIRE(size_t(x.start_row) < stages_.size());
      x.start = stages_[size_t(x.start_row)];
      ++rec_.resumed;
    }
    cpu.attention_hip_blocks(q, l, b, p, with_start, last_search_);
    return true;
  }
  bool supports_hip_cache() const override { return true; }
  void hip_cache_keep(std::span<const HipCacheKeep> k, std::vector<int32_t>& rows) override {
    rows.clear();
    for (const HipCacheKeep& x : k) {
      const auto key = std::make_tuple(x.seq, x.layer, x.kv_head);
      auto it = row_of_.find(key);
      if (it == row_of_.end()) {
        it = row_of_.emplace(key, int32_t(rows_.size())).first;
        rows_.emplace_back();
        stages_.emplace_back();
      }
      rows_[size_t(it->second)].assign(last_search_.blocks.begin() + last_search_.indptr[size_t(x.request)],
                                       last_search_.blocks.begin() + last_search_.indptr[size_t(x.request) + 1]);
      if (x.stage) {
        REQUIRE(!last_search_.stage_indptr.empty());
        stages_[size_t(it->second)].assign(last_search_.stage.begin() + last_search_.stage_indptr[size_t(x.request)],
                                           last_search_.stage.begin() + last_search_.stage_indptr[size_t(x.request) + 1]);
        ++rec_.stages_kept;
      }
      rows.push_back(it->second);
      rec_.keeps.push_back(x);
    }
  }
  void hip_cache_release(int32_t seq) override {
    rec_.released.push_back(seq);
    for (auto it = row_of_.begin(); it != row_of_.end();) {
      if (std::get<0>(it->first) == seq) {
        rows_[size_t(it->second)] = {-7};  // poisoned: a row read after its release gives other lists
        stages_[size_t(it->second)] = {{0, 1}};  // and an unusable start
        it = row_of_.erase(it);
      } else {
        ++it;
      }
    }
  }
  bool selection_write_hip(int32_t slot, const HipMaskLists& masks, const KeySet* sets) override {
    HipLayerMasks host;  // every mask's blocks on the host
    host.indptr = {0};
    for (size_t m = 0; m + 1 < masks.indptr.size(); ++m) {
      const int32_t dev = masks.on_device.empty() ? -1 : masks.on_device[m];
      const int32_t row = masks.cache_row.empty() ? -1 : masks.cache_row[m];
      if (dev >= 0) {
        host.blocks.insert(host.blocks.end(), last_search_.blocks.begin() + last_search_.indptr[size_t(dev)],
                           last_search_.blocks.begin() + last_search_.indptr[size_t(dev) + 1]);
      } else if (row >= 0) {
        REQUIRE(size_t(row) < rows_.size());
        host.blocks.insert(host.blocks.end(), rows_[size_t(row)].begin(), rows_[size_t(row)].end());
        ++rec_.reused_masks;
      } else {
        host.blocks.insert(host.blocks.end(), masks.blocks.begin() + masks.indptr[m],
                           masks.blocks.begin() + masks.indptr[m + 1]);
      }
      host.indptr.push_back(int64_t(host.blocks.size()));
    }
    host.block_size.assign(masks.block_size.begin(), masks.block_size.end());
    host.all_from.assign(masks.all_from.begin(), masks.all_from.end());
    host.mask_of.assign(masks.mask_of.begin(), masks.mask_of.end());
    host.shift.assign(masks.shift.begin(), masks.shift.end());
    const std::vector<KeySet> set_list(sets, sets + host.mask_of.size());
    std::vector<int64_t> indptr;
    std::vector<int32_t> positions;
    hip_expand_lists(host.view(), set_list, slot, indptr, positions);
    cpu.selection_write(slot, indptr, positions);
    return true;
  }

 private:
  CacheRecord& rec_;
  HipBlocks last_search_;
  std::map<std::tuple<int32_t, int32_t, int32_t>, int32_t> row_of_;
  std::vector<std::vector<int32_t>> rows_;
  std::vector<std::vector<HipPiece>> stages_;  // [rows] each row's kept coarse stage
};

// run_batch_free_fork with the emulated device cache (recorded in rec) and on the plain CPU backend (host-kept
// masks and stages): the logits must be equal, bit for bit. Returns the cached run.
BatchRun run_cached_and_host(const std::string& dir, const AttentionPlan& plan, const Fixture& f, int32_t vocab_size,
                             CacheRecord& rec) {
  BatchRun on = run_batch_free_fork(*load_engine(dir, plan, std::make_unique<CacheEmulatingBackend>(rec)), f, vocab_size);
  const BatchRun off = run_batch_free_fork(*load_engine(dir, plan), f, vocab_size);
  REQUIRE(on.logits.size() == off.logits.size());
  REQUIRE(!on.logits.empty());
  CHECK(std::memcmp(on.logits.data(), off.logits.data(), on.logits.size() * sizeof(float)) == 0);
  return on;
}

}  // namespace

TEST_CASE("HiP decode masks kept on the backend give the host-kept masks' logits (batches, frees, forks)",
          "[attention][hip]") {
  const std::string dir = std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/parity/llama3";
  const Fixture f = load_fixture(dir);
  const ModelConfig c = model_config_load(dir);
  const AttentionPlan plan = small_hip_plan(c, 1, 3);
  CacheRecord rec;
  const BatchRun on = run_cached_and_host(dir, plan, f, c.vocab_size, rec);
  // The cache was used as the refresh rule says (refresh 3: a sequence searches at its decode steps 0, 3, 6, ...).
  // In run_batch_free_fork A decodes 7 steps (3 searches), B 17 (6), C 10 (4), the fork 5 (2: it searches anew at
  // its first step); every search keeps one mask per HIP layer and KV head, every other step reads one.
  const int64_t per_step = int64_t(c.n_layers - 1) * c.n_kv_heads;
  CHECK(int64_t(rec.keeps.size()) == (3 + 6 + 4 + 2) * per_step);
  CHECK(rec.reused_masks == ((7 - 3) + (17 - 6) + (10 - 4) + (5 - 2)) * per_step);
  CHECK(std::count(rec.released.begin(), rec.released.end(), on.ids[0]) == 1);
  // Every keep names a live (sequence, layer, head) of a HIP layer.
  for (const HipCacheKeep& k : rec.keeps) {
    CHECK(k.layer >= 1);
    CHECK(k.kv_head < c.n_kv_heads);
  }
}

TEST_CASE("HiP coarse stages kept on the backend give the host-kept stages' logits (batches, frees, forks)",
          "[attention][hip]") {
  const std::string dir = std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/parity/llama3";
  const Fixture f = load_fixture(dir);
  const ModelConfig c = model_config_load(dir);
  // Masks every 2 steps, resumed from a coarse stage kept every 5 (a step's searches are either kind).
  const AttentionPlan plan = small_hip_plan(c, 1, 2, 5);
  CacheRecord rec;
  const BatchRun on = run_cached_and_host(dir, plan, f, c.vocab_size, rec);
  // Per sequence, searches at decode steps 0, 2, 4, ..; coarse (keeping a stage) at 0, 6, 12, .. (the first search
  // at least 5 steps after the last coarse one), resumed at the others. A decodes 7 steps (searches 0 2 4 6: 2
  // coarse), B 17 (0..16: 9 searches, coarse 0 6 12), C 10 (5 searches, coarse 0 6), the fork 5 (3 searches, coarse
  // at its first step and none after).
  const int64_t per_step = int64_t(c.n_layers - 1) * c.n_kv_heads;
  CHECK(int64_t(rec.keeps.size()) == (4 + 9 + 5 + 3) * per_step);
  CHECK(rec.stages_kept == (2 + 3 + 2 + 1) * per_step);
  CHECK(rec.resumed == ((4 - 2) + (9 - 3) + (5 - 2) + (3 - 1)) * per_step);
}
