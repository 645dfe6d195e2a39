// The backend seam the policies run on (CPU reference): attention over key sets (ranges, sink + recent, a
// selection slot's list), top-k key selection into a slot by summed group attention mass; and the key sets the
// step plan compiles for STREAM / SELECT / SPARSE rows.
#include <algorithm>
#include <limits>
#include <numeric>
#include <random>

#include <catch2/catch.hpp>

#include "attention/hip_policy.h"
#include "backend/cpu/cpu_backend.h"
#include "runtime/step_plan.h"

using namespace lcllm;

namespace {

// A STREAM head group keeping `sink` first and `recent` last keys; a SELECT group keeping the top k.
HeadGroupPolicy stream_policy(int32_t sink, int32_t recent) {
  HeadGroupPolicy p;
  p.policy = AttentionPolicy::ATTENTION_POLICY_STREAM;
  p.sink = sink;
  p.recent = recent;
  return p;
}
HeadGroupPolicy select_policy(int32_t k) {
  HeadGroupPolicy p;
  p.policy = AttentionPolicy::ATTENTION_POLICY_SELECT;
  p.k = k;
  return p;
}
// A HIP group: k keys in blocks of block_size_k per query block of block_size_q, sinks, recent keys, decode refresh.
HeadGroupPolicy hip_policy(int32_t k, int32_t block_size_k, int32_t block_size_q, int32_t sink, int32_t recent,
                           int32_t refresh_every = 1) {
  HeadGroupPolicy p;
  p.policy = AttentionPolicy::ATTENTION_POLICY_HIP;
  p.hip.k = k;
  p.hip.block_size_k = block_size_k;
  p.hip.block_size_q = block_size_q;
  p.hip.sink = sink;
  p.hip.recent = recent;
  p.hip.refresh_every = refresh_every;
  return p;
}
// The shape a step plan needs: n_layers global layers of n_kv_heads KV heads.
ModelConfig plan_config(int32_t n_layers, int32_t n_kv_heads) {
  ModelConfig cfg;
  cfg.n_layers = n_layers;
  cfg.n_kv_heads = n_kv_heads;
  cfg.layers.resize(size_t(n_layers));
  return cfg;
}

// One layer of paged K/V for a few sequences with scattered pages, random queries for each sequence's new tokens.
struct OpCase {
  int32_t n_heads = 4, n_kv_heads = 2, head_dim = 8, page_size = 4;
  std::vector<int32_t> prior_len, new_len;
  CpuBackend be{2};
  CsrPages csr;
  std::vector<int32_t> query_start{0}, query_pos, kv_len;
  std::vector<float> qbuf;
  Tensor q;
  std::vector<std::vector<float>> dense_k, dense_v;  // [seq][len * n_kv_heads * head_dim]

  OpCase(std::vector<int32_t> prior, std::vector<int32_t> fresh, uint32_t seed, bool identical_keys = false,
         int32_t dim = 8)
      : head_dim(dim), prior_len(std::move(prior)), new_len(std::move(fresh)) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.f, 1.f);
    const size_t n_seq = prior_len.size();
    int32_t total_pages = 3;
    for (size_t s = 0; s < n_seq; ++s) total_pages += (prior_len[s] + new_len[s] + page_size - 1) / page_size;
    be.kv_reserve(1, total_pages, page_size, n_kv_heads, head_dim);
    std::vector<int32_t> perm(static_cast<size_t>(total_pages));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    csr.indptr.push_back(0);
    size_t next = 0;
    const int64_t row = int64_t(n_kv_heads) * head_dim;
    std::vector<int64_t> slots;
    std::vector<float> kbuf, vbuf;
    dense_k.resize(n_seq);
    dense_v.resize(n_seq);
    for (size_t s = 0; s < n_seq; ++s) {
      const int32_t len = prior_len[s] + new_len[s];
      kv_len.push_back(len);
      const int32_t pages = (len + page_size - 1) / page_size;
      for (int32_t p = 0; p < pages; ++p) csr.indices.push_back(perm[next++]);
      csr.indptr.push_back(int32_t(csr.indices.size()));
      csr.last_page_len.push_back(len - (pages - 1) * page_size);
      dense_k[s].resize(size_t(len * row));
      dense_v[s].resize(size_t(len * row));
      for (auto& x : dense_k[s]) x = identical_keys ? 0.5f : normal(rng);
      for (auto& x : dense_v[s]) x = normal(rng);
      for (int32_t j = 0; j < len; ++j) {
        slots.push_back(int64_t(csr.indices[size_t(csr.indptr[s] + j / page_size)]) * page_size + j % page_size);
      }
      kbuf.insert(kbuf.end(), dense_k[s].begin(), dense_k[s].end());
      vbuf.insert(vbuf.end(), dense_v[s].begin(), dense_v[s].end());
      for (int32_t j = prior_len[s]; j < len; ++j) query_pos.push_back(j);
      query_start.push_back(int32_t(query_pos.size()));
    }
    const int64_t n = int64_t(slots.size());
    be.kv_write(0, Tensor{kbuf.data(), DType::DTYPE_F32, {n, n_kv_heads, head_dim, 0}, 3},
                Tensor{vbuf.data(), DType::DTYPE_F32, {n, n_kv_heads, head_dim, 0}, 3}, slots);
    qbuf.resize(query_pos.size() * size_t(n_heads * head_dim));
    for (auto& x : qbuf) x = normal(rng);
    q = Tensor{qbuf.data(), DType::DTYPE_F32, {int64_t(query_pos.size()), n_heads, head_dim, 0}, 3};
  }
  int64_t n_rows() const { return int64_t(query_pos.size()); }
  AttentionBatch batch() const { return AttentionBatch{query_start, query_pos, kv_len, &csr}; }
  int32_t seq_of(int64_t r) const {
    int32_t s = 0;
    while (query_start[size_t(s + 1)] <= r) ++s;
    return s;
  }
  std::vector<float> out_buffer() const { return std::vector<float>(qbuf.size(), std::nanf("")); }
  Tensor out_tensor(std::vector<float>& o) const {
    return Tensor{o.data(), DType::DTYPE_F32, {n_rows(), n_heads, head_dim, 0}, 3};
  }
};

// Visible range of row r under FULL rules.
std::pair<int32_t, int32_t> visible(const OpCase& c, int64_t r, int32_t window) {
  const int32_t pos = c.query_pos[size_t(r)];
  const int32_t hi = std::min(pos + 1, c.kv_len[size_t(c.seq_of(r))]);
  return {window > 0 ? std::max(0, pos - window + 1) : 0, hi};
}

// The positions a key set names, ascending, given its slot list (the op's documented semantics, written plainly).
std::vector<int32_t> expand(const KeySet& s, const std::vector<int32_t>& list) {
  std::vector<int32_t> out;
  for (int32_t j = s.lo; j < s.sink_end; ++j) out.push_back(j);
  if (s.list >= 0) {
    for (int32_t j : list) {
      if (j >= s.sink_end && j < s.recent_begin) out.push_back(j);
    }
  }
  for (int32_t j = s.recent_begin; j < s.hi; ++j) out.push_back(j);
  return out;
}

std::vector<int32_t> slot_list(CpuBackend& be, int32_t slot, size_t item) {
  std::vector<int64_t> indptr;
  std::vector<int32_t> positions;
  be.selection_read(slot, indptr, positions);
  return std::vector<int32_t>(positions.begin() + indptr[item], positions.begin() + indptr[item + 1]);
}

}  // namespace

TEST_CASE("attention_key_sets over the full visible range reproduces attention() bit for bit", "[attention][ops]") {
  // Small (head_dim 8, <= 22 keys) and long: 170 keys cross several 64-key blocks, head_dim 72 takes the 64-wide
  // and the leftover paths of the CPU kernels, 20 prefill rows form blocks of 8 with ragged ends, and a 100-key
  // window cuts the blocks' shared key lists.
  for (int32_t window : {0, 5, 100}) {
    for (float softcap : {0.f, 20.f}) {
     for (const bool long_case : {false, true}) {
      OpCase c = long_case ? OpCase({0, 169, 40}, {20, 1, 13}, 9u + uint32_t(window), false, 72)
                           : OpCase({0, 13, 6}, {9, 1, 4}, 7u + uint32_t(window));
      const AttentionParams params{0.35f, softcap, window};
      const size_t n_items = size_t(c.n_rows() * c.n_kv_heads);
      // Three spellings of FULL's keys: a range; sink + list + recent with the list holding every position; and
      // the whole range from the list alone.
      for (int spelling = 0; spelling < 3; ++spelling) {
        std::vector<KeySet> sets;
        std::vector<int64_t> indptr{0};
        std::vector<int32_t> positions;
        for (int64_t r = 0; r < c.n_rows(); ++r) {
          const auto [lo, hi] = visible(c, r, window);
          for (int32_t h = 0; h < c.n_kv_heads; ++h) {
            KeySet s{lo, hi, hi, hi, -1};
            if (spelling > 0) {
              const int32_t cut1 = spelling == 1 ? std::min(hi, lo + 2) : lo, cut2 = spelling == 1 ? std::max(cut1, hi - 3) : hi;
              s = KeySet{lo, cut1, cut2, hi, 0};
              for (int32_t j = 0; j < hi; ++j) positions.push_back(j);  // outside-gap entries are ignored
            }
            sets.push_back(s);
            indptr.push_back(int64_t(positions.size()));
          }
        }
        int64_t longest = 1;
        for (size_t i = 0; i + 1 < indptr.size(); ++i) longest = std::max(longest, indptr[i + 1] - indptr[i]);
        c.be.selection_reserve(1, int32_t(n_items), int32_t(longest));
        c.be.selection_write(0, indptr, positions);
        std::vector<float> dense = c.out_buffer(), keyed = c.out_buffer();
        c.be.attention(c.out_tensor(dense), c.q, 0, c.batch(), params);
        LayerKeySets keys;
        keys.sets = sets.data();
        c.be.attention_key_sets(c.out_tensor(keyed), c.q, 0, c.batch(), params, keys);
        INFO("window " << window << " softcap " << softcap << " spelling " << spelling << " long " << long_case);
        CHECK(keyed == dense);
      }
     }
    }
  }
}

TEST_CASE("attention_key_sets over key subsets matches textbook softmax attention; empty sets give zeros",
          "[attention][ops]") {
  OpCase c({20, 3}, {1, 5}, 11u);
  std::mt19937 rng(5);
  const AttentionParams params{0.35f, 0.f, 0};
  std::vector<KeySet> sets;
  std::vector<int64_t> indptr{0};
  std::vector<int32_t> positions;
  std::vector<std::vector<int32_t>> want;  // [item] the keys the set names
  for (int64_t r = 0; r < c.n_rows(); ++r) {
    for (int32_t h = 0; h < c.n_kv_heads; ++h) {
      const auto [lo, hi] = visible(c, r, 0);
      KeySet s{lo, lo, lo, lo, -1};  // (row 1, kv head 1): empty
      if (!(r == 1 && h == 1)) {
        const int32_t sink_end = std::min(hi, lo + int32_t(rng() % 3));
        const int32_t recent_begin = std::max(sink_end, hi - int32_t(rng() % 3));
        s = KeySet{lo, sink_end, recent_begin, hi, 0};
        for (int32_t j = 0; j < hi; ++j) {
          if (rng() % 2 == 0) positions.push_back(j);
        }
      }
      indptr.push_back(int64_t(positions.size()));
      sets.push_back(s);
      want.push_back(expand(s, std::vector<int32_t>(positions.begin() + indptr[indptr.size() - 2], positions.end())));
    }
  }
  int64_t longest = 1;
  for (size_t i = 0; i + 1 < indptr.size(); ++i) longest = std::max(longest, indptr[i + 1] - indptr[i]);
  c.be.selection_reserve(1, int32_t(sets.size()), int32_t(longest));
  c.be.selection_write(0, indptr, positions);
  std::vector<float> out = c.out_buffer();
  LayerKeySets keys;
  keys.sets = sets.data();
  c.be.attention_key_sets(c.out_tensor(out), c.q, 0, c.batch(), params, keys);
  const int32_t group = c.n_heads / c.n_kv_heads, hd = c.head_dim;
  double worst = 0;
  for (int64_t r = 0; r < c.n_rows(); ++r) {
    const int32_t s = c.seq_of(r);
    for (int32_t h = 0; h < c.n_heads; ++h) {
      const int32_t kvh = h / group;
      const std::vector<int32_t>& keys_of = want[size_t(r * c.n_kv_heads + kvh)];
      std::vector<double> w;
      for (int32_t j : keys_of) {
        double dot = 0;
        for (int32_t d = 0; d < hd; ++d) {
          dot += double(c.qbuf[size_t((r * c.n_heads + h) * hd + d)]) *
                 double(c.dense_k[size_t(s)][size_t((j * c.n_kv_heads + kvh) * hd + d)]);
        }
        w.push_back(dot * params.scale);
      }
      const double mx = w.empty() ? 0 : *std::max_element(w.begin(), w.end());
      double den = 0;
      for (auto& x : w) den += (x = std::exp(x - mx));
      for (int32_t d = 0; d < hd; ++d) {
        double ref = 0;
        for (size_t i = 0; i < keys_of.size(); ++i) {
          ref += w[i] / den * double(c.dense_v[size_t(s)][size_t((keys_of[i] * c.n_kv_heads + kvh) * hd + d)]);
        }
        const float got = out[size_t((r * c.n_heads + h) * hd + d)];
        if (w.empty()) {
          CHECK(got == 0.f);
        }
        worst = std::max(worst, std::abs(double(got) - ref));
      }
    }
  }
  CHECK(worst < 1e-5);
}

TEST_CASE("SELECT keeps the top-k by summed group probability (brute-force full sort) in its slot", "[attention][ops]") {
  for (int32_t window : {0, 6}) {
    OpCase c({0, 25}, {12, 2}, 23u + uint32_t(window));
    const AttentionParams params{0.5f, 0.f, window};
    for (int32_t k : {1, 3, 8, 1000}) {
      const size_t n_items = size_t(c.n_rows() * c.n_kv_heads);
      std::vector<int32_t> kk(n_items, k);
      kk[1] = 0;  // (row 0, kv head 1) does not select
      std::vector<KeySet> sets;
      for (int64_t r = 0; r < c.n_rows(); ++r) {
        const auto [lo, hi] = visible(c, r, window);
        for (int32_t h = 0; h < c.n_kv_heads; ++h) sets.push_back(KeySet{lo, hi, hi, hi, -1});
      }
      c.be.selection_reserve(2, int32_t(n_items), k);
      std::vector<float> out = c.out_buffer();
      LayerKeySets keys;
      keys.sets = sets.data();
      keys.select_k = kk.data();
      keys.select_slot = 1;
      c.be.attention_key_sets(c.out_tensor(out), c.q, 0, c.batch(), params, keys);
      const int32_t group = c.n_heads / c.n_kv_heads, hd = c.head_dim;
      for (int64_t r = 0; r < c.n_rows(); ++r) {
        const int32_t s = c.seq_of(r);
        const auto [lo, hi] = visible(c, r, window);
        for (int32_t kvh = 0; kvh < c.n_kv_heads; ++kvh) {
          const size_t item = size_t(r * c.n_kv_heads + kvh);
          const std::vector<int32_t> got = slot_list(c.be, 1, item);
          CHECK(slot_list(c.be, 0, item).empty());  // other slots untouched
          if (kk[item] == 0) {
            CHECK(got.empty());
            continue;
          }
          // Brute force: textbook softmax per query head (double), summed over the group, full sort.
          std::vector<double> mass(size_t(hi - lo), 0.0);
          for (int32_t h = kvh * group; h < (kvh + 1) * group; ++h) {
            std::vector<double> sc;
            for (int32_t j = lo; j < hi; ++j) {
              double dot = 0;
              for (int32_t d = 0; d < hd; ++d) {
                dot += double(c.qbuf[size_t((r * c.n_heads + h) * hd + d)]) *
                       double(c.dense_k[size_t(s)][size_t((j * c.n_kv_heads + kvh) * hd + d)]);
              }
              sc.push_back(dot * params.scale);
            }
            const double mx = *std::max_element(sc.begin(), sc.end());
            double den = 0;
            for (auto& x : sc) den += (x = std::exp(x - mx));
            for (size_t i = 0; i < sc.size(); ++i) mass[i] += sc[i] / den;
          }
          std::vector<int32_t> order(mass.size());
          std::iota(order.begin(), order.end(), 0);
          std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return mass[size_t(a)] > mass[size_t(b)]; });
          order.resize(std::min(order.size(), size_t(k)));
          std::vector<int32_t> want;
          for (int32_t i : order) want.push_back(lo + i);
          std::sort(want.begin(), want.end());
          INFO("window " << window << " k " << k << " row " << r << " kv head " << kvh);
          CHECK(got == want);
        }
      }
    }
  }
}

TEST_CASE("SELECT breaks ties toward the lowest position", "[attention][ops]") {
  OpCase c({10}, {1}, 3u, /*identical_keys=*/true);  // every key equal: every position has the same mass
  const AttentionParams params{0.5f, 0.f, 0};
  std::vector<int32_t> kk(size_t(c.n_kv_heads), 4);
  std::vector<KeySet> sets(size_t(c.n_kv_heads), KeySet{0, 11, 11, 11, -1});
  c.be.selection_reserve(1, c.n_kv_heads, 4);
  std::vector<float> out = c.out_buffer();
  LayerKeySets keys;
  keys.sets = sets.data();
  keys.select_k = kk.data();
  keys.select_slot = 0;
  c.be.attention_key_sets(c.out_tensor(out), c.q, 0, c.batch(), params, keys);
  for (int32_t h = 0; h < c.n_kv_heads; ++h) CHECK(slot_list(c.be, 0, size_t(h)) == std::vector<int32_t>{0, 1, 2, 3});
}

TEST_CASE("step plan key sets: STREAM sinks + window, SELECT ranges and k, SPARSE lists, clipped to the window",
          "[attention][ops][step_plan]") {
  ModelConfig cfg = plan_config(3, 1);
  AttentionPlan plan = attention_plan_full(cfg, "t");
  const HeadGroupPolicy stream = stream_policy(2, 3);
  const HeadGroupPolicy sel = select_policy(2);
  HeadGroupPolicy sparse;
  sparse.policy = AttentionPolicy::ATTENTION_POLICY_SPARSE;
  sparse.from = 0;
  sparse.sink = 1;
  sparse.recent = 2;
  HeadGroupPolicy chained = sparse;  // SPARSE from a SPARSE layer: reads the root SELECT's slot
  chained.from = 1;
  attention_plan_set(plan, 0, AttentionPhase::ATTENTION_PHASE_PREFILL, 0, 1, stream);
  attention_plan_set(plan, 0, AttentionPhase::ATTENTION_PHASE_DECODE, 0, 1, sel);
  attention_plan_set(plan, 1, AttentionPhase::ATTENTION_PHASE_DECODE, 0, 1, sparse);
  attention_plan_set(plan, 2, AttentionPhase::ATTENTION_PHASE_DECODE, 0, 1, chained);
  REQUIRE(attention_plan_problems(plan, cfg).empty());

  // Two sequences: seq 0 prefills positions 9..10 (len 11), seq 1 decodes position 12 (len 13).
  const std::vector<int32_t> query_start{0, 2, 3}, query_pos{9, 10, 12}, kv_len{11, 13};
  const AttentionBatch batch{query_start, query_pos, kv_len, nullptr};
  const std::vector<AttentionPhase> seq_phase{AttentionPhase::ATTENTION_PHASE_PREFILL,
                                              AttentionPhase::ATTENTION_PHASE_DECODE};
  const std::vector<int32_t> selection{4, 6};  // what layer 0's SELECT might keep for the decode row
  auto keys_of = [&](const StepPlan& sp, int32_t layer, size_t item) {
    return expand(step_plan_sets(sp, layer)[item], selection);
  };
  const StepPlan sp = step_plan_compile(plan, cfg, batch, seq_phase);
  REQUIRE(sp.n_slots == 1);
  const StepLayerPlan& l0 = sp.layers[0];
  REQUIRE_FALSE(l0.dense);
  CHECK(keys_of(sp, 0, 0) == std::vector<int32_t>{0, 1, 7, 8, 9});
  CHECK(keys_of(sp, 0, 1) == std::vector<int32_t>{0, 1, 8, 9, 10});
  CHECK(keys_of(sp, 0, 2) == std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});  // SELECT: FULL
  REQUIRE(l0.select_k_at != StepLayerPlan::kNone);
  CHECK(std::vector<int32_t>(sp.data.begin() + std::ptrdiff_t(l0.select_k_at),
                             sp.data.begin() + std::ptrdiff_t(l0.select_k_at + 3)) == std::vector<int32_t>{0, 0, 2});
  CHECK(l0.select_slot == 0);
  CHECK(l0.max_keys == 13);
  for (int32_t layer : {1, 2}) {
    CHECK(step_plan_sets(sp, layer)[2].list == 0);
    CHECK(keys_of(sp, layer, 2) == std::vector<int32_t>{0, 4, 6, 11, 12});  // sink 1 + selection + recent 2
    CHECK(keys_of(sp, layer, 0) == std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});  // prefill rows: FULL
    // The prefill sequence's rows are all FULL here: they run dense (as under FULL), only the decode row walks its
    // set, and split planning sees only it.
    CHECK(std::vector<int32_t>(step_plan_key_rows(sp, layer).begin(), step_plan_key_rows(sp, layer).end()) ==
          std::vector<int32_t>{2});
    CHECK(sp.layers[size_t(layer)].max_keys == 1 + 2 + 2);
  }
  CHECK(step_plan_key_rows(sp, 0).empty());  // layer 0 streams in prefill: every row walks its set
  // A decode-only step: the SPARSE layers' bound is sink + k + recent, not the context.
  const std::vector<int32_t> d_start{0, 1}, d_pos{12}, d_len{13};
  const std::vector<AttentionPhase> d_phase{AttentionPhase::ATTENTION_PHASE_DECODE};
  const StepPlan decode = step_plan_compile(plan, cfg, AttentionBatch{d_start, d_pos, d_len, nullptr}, d_phase);
  CHECK(decode.layers[0].max_keys == 13);
  CHECK(decode.layers[1].max_keys == 1 + 2 + 2);
  CHECK(decode.layers[2].max_keys == 1 + 2 + 2);
  CHECK(decode.slot_stride == 2);

  // With a sliding window of 4 the sinks fall outside and drop out; a window covering everything is a range.
  ModelConfig windowed = cfg;
  windowed.layers[0].sliding_window = 4;
  CHECK(keys_of(step_plan_compile(plan, windowed, batch, seq_phase), 0, 1) == std::vector<int32_t>{8, 9, 10});
  HeadGroupPolicy wide = stream;
  wide.recent = 100;
  AttentionPlan all_stream = attention_plan_full(cfg, "s");
  attention_plan_set(all_stream, 0, AttentionPhase::ATTENTION_PHASE_PREFILL, 0, 1, wide);
  attention_plan_set(all_stream, 0, AttentionPhase::ATTENTION_PHASE_DECODE, 0, 1, wide);
  const StepPlan dense = step_plan_compile(all_stream, cfg, batch, seq_phase);
  CHECK(dense.layers[0].dense);
  CHECK(dense.all_dense);
  CHECK(dense.n_slots == 0);
}

TEST_CASE("step plan: prefill rows may share key-set tiles under FULL, STREAM and HIP, within HiP's query blocks",
          "[attention][ops][step_plan]") {
  ModelConfig cfg = plan_config(4, 2);
  AttentionPlan plan = attention_plan_full(cfg, "t");
  const HeadGroupPolicy hip_a = hip_policy(8, 2, 32, 2, 4);
  HeadGroupPolicy hip_b = hip_a;
  hip_b.hip.block_size_q = 48;
  const HeadGroupPolicy stream = stream_policy(2, 3);
  const HeadGroupPolicy sel = select_policy(4);
  const auto prefill = AttentionPhase::ATTENTION_PHASE_PREFILL;
  attention_plan_set(plan, 0, prefill, 0, 1, hip_a);   // HIP heads with query blocks of 32 and 48 rows
  attention_plan_set(plan, 0, prefill, 1, 2, hip_b);
  attention_plan_set(plan, 1, prefill, 0, 1, stream);  // streaming beside FULL: no query blocks to respect
  attention_plan_set(plan, 2, prefill, 0, 1, sel);     // a per-row selection: rows attend on their own
  attention_plan_set(plan, 3, prefill, 0, 2, hip_a);   // HIP on a sliding-window layer (below): its lo moves per row
  cfg.layers[3].sliding_window = 64;
  REQUIRE(attention_plan_problems(plan, cfg).empty());

  // One sequence prefilling positions 100..199.
  std::vector<int32_t> query_pos(100);
  std::iota(query_pos.begin(), query_pos.end(), 100);
  const std::vector<int32_t> query_start{0, 100}, kv_len{200};
  const std::vector<AttentionPhase> phase{prefill};
  const StepPlan sp = step_plan_compile(plan, cfg, AttentionBatch{query_start, query_pos, kv_len, nullptr}, phase);
  CHECK(sp.layers[0].prefill_tile_align == 16);  // gcd(32, 48): a run of 16 rows lies in one block of either head
  CHECK(sp.layers[1].prefill_tile_align == std::numeric_limits<int32_t>::max());
  CHECK(sp.layers[2].prefill_tile_align == 0);
  CHECK(sp.layers[3].prefill_tile_align == 0);
  CHECK(step_plan_layer_keys(sp, 0, sp.data.data()).prefill_tile_align == 16);
}

TEST_CASE("step plan: a HIP set's key bound is its sinks, at most hip_list_bound listed keys and its recent keys (not "
          "the context), and covers the longest list a dilated mask gives",
          "[attention][ops][step_plan]") {
  ModelConfig cfg = plan_config(1, 1);
  AttentionPlan plan = attention_plan_full(cfg, "t");
  const HeadGroupPolicy hip = hip_policy(16, 2, 8, 2, 4, /*refresh_every=*/5);
  attention_plan_set(plan, 0, AttentionPhase::ATTENTION_PHASE_DECODE, 0, 1, hip);
  REQUIRE(attention_plan_problems(plan, cfg).empty());
  const int64_t list_bound = hip_list_bound(hip.hip);
  const int32_t shift = hip_reuse_shift_blocks(hip.hip.refresh_every - 1, hip.hip.block_size_k);
  CHECK(shift == 2);
  CHECK(list_bound == 16 * (1 + 2) + 4 + 8);  // dilated blocks + recent + max(block_size_q, refresh_every)
  const std::vector<AttentionPhase> phase{AttentionPhase::ATTENTION_PHASE_DECODE};
  for (const int32_t len : {20, 1000, 100000}) {
    INFO("context " << len);
    const int32_t pos = len - 1;
    const std::vector<int32_t> start{0, 1}, qpos{pos}, kv_len{len};
    const StepPlan sp = step_plan_compile(plan, cfg, AttentionBatch{start, qpos, kv_len, nullptr}, phase);
    const KeySet s = step_plan_sets(sp, 0)[0];
    REQUIRE(s.list == sp.hip_slot);
    const int32_t sink = s.sink_end - s.lo, recent = s.hi - s.recent_begin, gap = s.recent_begin - s.sink_end;
    CHECK(sp.layers[0].max_keys == sink + std::min<int64_t>(gap, list_bound) + recent);
    if (len == 100000) CHECK(sp.layers[0].max_keys == 2 + list_bound + 4);  // not the context
    // The longest list of a mask searched refresh_every - 1 steps ago: k / block_size_k blocks spaced so that each
    // one's dilation adds its whole shift, then the keys from the search's all_from on (hip_expand_lists).
    const int32_t searched_at = pos - (hip.hip.refresh_every - 1);
    const int32_t all_from = std::max(hip.hip.sink, searched_at - hip.hip.recent + 1);
    HipLayerMasks m;
    m.any = true;
    m.indptr = {0};
    for (int32_t b = hip.hip.sink / 2; int32_t(m.blocks.size()) < 16 / 2 && (b + 1) * 2 <= all_from; b += shift + 1) {
      m.blocks.push_back(b);
    }
    m.indptr.push_back(int64_t(m.blocks.size()));
    m.block_size = {2};
    m.all_from = {all_from};
    m.mask_of = {0};
    m.shift = {shift};
    std::vector<int64_t> indptr;
    std::vector<int32_t> positions;
    hip_expand_lists(m.view(), std::span<const KeySet>(&s, 1), s.list, indptr, positions);
    CHECK(int64_t(positions.size()) <= sp.slot_stride);
    const int64_t listed = std::count_if(positions.begin(), positions.end(),
                                         [&](int32_t p) { return p >= s.sink_end && p < s.recent_begin; });
    if (len == 100000) CHECK(listed == 8 * 3 * 2 + (s.recent_begin - all_from));  // the worst case was built
    CHECK(sink + listed + recent <= sp.layers[0].max_keys);
  }
}
