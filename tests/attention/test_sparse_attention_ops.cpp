// The two backend ops the policies run on (CPU reference): attention over explicit key lists, and top-k key
// selection by summed group attention mass; plus the key lists the plan builds for STREAM / SPARSE rows.
#include <numeric>
#include <random>

#include <catch2/catch.hpp>

#include "attention/attention_selection.h"
#include "backend/cpu/cpu_backend.h"

using namespace lcllm;

namespace {

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

  OpCase(std::vector<int32_t> prior, std::vector<int32_t> fresh, uint32_t seed, bool identical_keys = false)
      : prior_len(std::move(prior)), new_len(std::move(fresh)) {
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

}  // namespace

TEST_CASE("attention_indexed over the full visible range reproduces attention() bit for bit", "[attention][ops]") {
  for (int32_t window : {0, 5}) {
    for (float softcap : {0.f, 20.f}) {
      OpCase c({0, 13, 6}, {9, 1, 4}, 7u + uint32_t(window));
      const AttentionParams params{0.35f, softcap, window};
      std::vector<int64_t> indptr{0};
      std::vector<int32_t> positions;
      for (int64_t r = 0; r < c.n_rows(); ++r) {
        for (int32_t h = 0; h < c.n_kv_heads; ++h) {
          const auto [lo, hi] = visible(c, r, window);
          for (int32_t j = lo; j < hi; ++j) positions.push_back(j);
          indptr.push_back(int64_t(positions.size()));
        }
      }
      std::vector<float> dense = c.out_buffer(), indexed = c.out_buffer();
      c.be.attention(c.out_tensor(dense), c.q, 0, c.batch(), params);
      c.be.attention_indexed(c.out_tensor(indexed), c.q, 0, c.batch(), params, KeyIndexLists{indptr, positions});
      INFO("window " << window << " softcap " << softcap);
      CHECK(indexed == dense);
    }
  }
}

TEST_CASE("attention_indexed over key subsets matches textbook softmax attention; empty lists give zeros",
          "[attention][ops]") {
  OpCase c({20, 3}, {1, 5}, 11u);
  std::mt19937 rng(5);
  const AttentionParams params{0.35f, 0.f, 0};
  std::vector<int64_t> indptr{0};
  std::vector<int32_t> positions;
  for (int64_t r = 0; r < c.n_rows(); ++r) {
    for (int32_t h = 0; h < c.n_kv_heads; ++h) {
      const auto [lo, hi] = visible(c, r, 0);
      if (r == 1 && h == 1) {  // one empty list
        indptr.push_back(int64_t(positions.size()));
        continue;
      }
      for (int32_t j = lo; j < hi; ++j) {
        if (rng() % 2 == 0 || j == hi - 1) positions.push_back(j);
      }
      indptr.push_back(int64_t(positions.size()));
    }
  }
  std::vector<float> out = c.out_buffer();
  c.be.attention_indexed(c.out_tensor(out), c.q, 0, c.batch(), params, KeyIndexLists{indptr, positions});
  const int32_t group = c.n_heads / c.n_kv_heads, hd = c.head_dim;
  double worst = 0;
  for (int64_t r = 0; r < c.n_rows(); ++r) {
    const int32_t s = c.seq_of(r);
    for (int32_t h = 0; h < c.n_heads; ++h) {
      const int32_t kvh = h / group;
      const size_t list = size_t(r * c.n_kv_heads + kvh);
      std::vector<double> w;
      for (int64_t i = indptr[list]; i < indptr[list + 1]; ++i) {
        const int32_t j = positions[size_t(i)];
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
        for (int64_t i = indptr[list]; i < indptr[list + 1]; ++i) {
          const int32_t j = positions[size_t(i)];
          ref += w[size_t(i - indptr[list])] / den * double(c.dense_v[size_t(s)][size_t((j * c.n_kv_heads + kvh) * hd + d)]);
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

TEST_CASE("attention_select_topk matches a brute-force full sort by summed group probability", "[attention][ops]") {
  for (int32_t window : {0, 6}) {
    OpCase c({0, 25}, {12, 2}, 23u + uint32_t(window));
    const AttentionParams params{0.5f, 0.f, window};
    for (int32_t k : {1, 3, 8, 1000}) {
      std::vector<int32_t> kk(size_t(c.n_rows() * c.n_kv_heads), k);
      kk[1] = 0;  // (row 0, kv head 1) does not select
      SelectedKeys sel;
      c.be.attention_select_topk(c.q, 0, c.batch(), params, kk, sel);
      const int32_t group = c.n_heads / c.n_kv_heads, hd = c.head_dim;
      for (int64_t r = 0; r < c.n_rows(); ++r) {
        const int32_t s = c.seq_of(r);
        const auto [lo, hi] = visible(c, r, window);
        for (int32_t kvh = 0; kvh < c.n_kv_heads; ++kvh) {
          const size_t item = size_t(r * c.n_kv_heads + kvh);
          std::vector<int32_t> got(sel.positions.begin() + sel.indptr[item], sel.positions.begin() + sel.indptr[item + 1]);
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

TEST_CASE("attention_select_topk breaks ties toward the lowest position", "[attention][ops]") {
  OpCase c({10}, {1}, 3u, /*identical_keys=*/true);  // every key equal: every position has the same mass
  const AttentionParams params{0.5f, 0.f, 0};
  std::vector<int32_t> kk(size_t(c.n_kv_heads), 4);
  SelectedKeys sel;
  c.be.attention_select_topk(c.q, 0, c.batch(), params, kk, sel);
  for (int32_t h = 0; h < c.n_kv_heads; ++h) {
    std::vector<int32_t> got(sel.positions.begin() + sel.indptr[size_t(h)], sel.positions.begin() + sel.indptr[size_t(h + 1)]);
    CHECK(got == std::vector<int32_t>{0, 1, 2, 3});
  }
}

TEST_CASE("STREAM and SPARSE key lists: sinks, recent window, selection, clipped to the causal sliding window",
          "[attention][ops]") {
  ModelConfig cfg;
  cfg.n_layers = 2;
  cfg.n_kv_heads = 1;
  cfg.layers.resize(2);
  AttentionPlan plan = attention_plan_full(cfg, "t");
  HeadGroupPolicy stream;
  stream.policy = AttentionPolicy::ATTENTION_POLICY_STREAM;
  stream.sink = 2;
  stream.recent = 3;
  HeadGroupPolicy sel;
  sel.policy = AttentionPolicy::ATTENTION_POLICY_SELECT;
  sel.k = 2;
  HeadGroupPolicy sparse;
  sparse.policy = AttentionPolicy::ATTENTION_POLICY_SPARSE;
  sparse.from = 0;
  sparse.sink = 1;
  sparse.recent = 2;
  attention_plan_set(plan, 0, AttentionPhase::ATTENTION_PHASE_PREFILL, 0, 1, stream);
  attention_plan_set(plan, 0, AttentionPhase::ATTENTION_PHASE_DECODE, 0, 1, sel);
  attention_plan_set(plan, 1, AttentionPhase::ATTENTION_PHASE_DECODE, 0, 1, sparse);
  REQUIRE(attention_plan_problems(plan, cfg).empty());

  // Two sequences: seq 0 prefills positions 9..10 (len 11), seq 1 decodes position 12 (len 13).
  const std::vector<int32_t> query_start{0, 2, 3}, query_pos{9, 10, 12}, kv_len{11, 13};
  const AttentionBatch batch{query_start, query_pos, kv_len, nullptr};
  const std::vector<AttentionPhase> seq_phase{AttentionPhase::ATTENTION_PHASE_PREFILL,
                                              AttentionPhase::ATTENTION_PHASE_DECODE};
  const auto rows = attention_row_phases(batch, seq_phase);
  SelectionState state;
  state.layers.resize(2);
  auto list = [](const LayerAttentionWork& w, size_t item) {
    return std::vector<int32_t>(w.positions.begin() + w.indptr[item], w.positions.begin() + w.indptr[item + 1]);
  };
  const LayerAttentionWork w0 = attention_layer_work(plan, 0, batch, rows, 0, state);
  REQUIRE_FALSE(w0.dense);
  CHECK(list(w0, 0) == std::vector<int32_t>{0, 1, 7, 8, 9});
  CHECK(list(w0, 1) == std::vector<int32_t>{0, 1, 8, 9, 10});
  CHECK(list(w0, 2) == std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});  // SELECT attends fully
  CHECK(w0.select_k == std::vector<int32_t>{0, 0, 2});
  // With a sliding window of 4 the sinks fall outside and drop out.
  CHECK(list(attention_layer_work(plan, 0, batch, rows, 4, state), 1) == std::vector<int32_t>{8, 9, 10});

  SelectedKeys selected;
  selected.indptr = {0, 0, 0, 2};
  selected.positions = {4, 6};
  attention_layer_record(state, plan, 0, rows, selected);
  const LayerAttentionWork w1 = attention_layer_work(plan, 1, batch, rows, 0, state);
  CHECK(list(w1, 2) == std::vector<int32_t>{0, 4, 6, 11, 12});  // sink 1 + selection {4, 6} + recent 2
  CHECK(list(w1, 0) == std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});  // prefill rows are FULL here
}
