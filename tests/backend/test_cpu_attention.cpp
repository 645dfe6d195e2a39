// The CPU attention reads keys through the paged CSR layout; check it against a dense, textbook softmax
// attention on the same keys, with pages scattered across the pool, ragged sequences, GQA, windows, softcap.
#include <cmath>
#include <random>

#include <catch2/catch.hpp>

#include "backend/cpu/cpu_backend.h"

using namespace lcllm;

namespace {

struct Case {
  int32_t n_heads, n_kv_heads, head_dim, page_size, window;
  float softcap;
  std::vector<int32_t> prior_len, new_len;  // per sequence: tokens already cached, tokens in this step
};

void run_case(const Case& tc, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  const int32_t n_seq = int32_t(tc.prior_len.size());
  int32_t total_pages = 0;
  for (int32_t s = 0; s < n_seq; ++s) total_pages += (tc.prior_len[static_cast<size_t>(s)] + tc.new_len[static_cast<size_t>(s)] + tc.page_size - 1) / tc.page_size;
  total_pages += 3;  // spare pages that no sequence owns
  CpuBackend be(2);
  be.kv_reserve(1, total_pages, tc.page_size, tc.n_kv_heads, tc.head_dim);

  // Scatter pages: a random permutation of the pool.
  std::vector<int32_t> perm(static_cast<size_t>(total_pages));
  for (int32_t i = 0; i < total_pages; ++i) perm[static_cast<size_t>(i)] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  CsrPages csr;
  csr.indptr.push_back(0);
  size_t next = 0;
  std::vector<int32_t> kv_len(static_cast<size_t>(n_seq)), query_start{0}, query_pos;
  std::vector<std::vector<float>> dense_k(static_cast<size_t>(n_seq)), dense_v(static_cast<size_t>(n_seq));
  const int64_t row = int64_t(tc.n_kv_heads) * tc.head_dim;
  std::vector<int64_t> slots;
  std::vector<float> kbuf, vbuf;
  for (int32_t s = 0; s < n_seq; ++s) {
    const int32_t len = tc.prior_len[static_cast<size_t>(s)] + tc.new_len[static_cast<size_t>(s)];
    kv_len[static_cast<size_t>(s)] = len;
    const int32_t pages = (len + tc.page_size - 1) / tc.page_size;
    for (int32_t p = 0; p < pages; ++p) csr.indices.push_back(perm[next++]);
    csr.indptr.push_back(int32_t(csr.indices.size()));
    csr.last_page_len.push_back(len - (pages - 1) * tc.page_size);
    dense_k[static_cast<size_t>(s)].resize(static_cast<size_t>(len * row));
    dense_v[static_cast<size_t>(s)].resize(static_cast<size_t>(len * row));
    for (auto& x : dense_k[static_cast<size_t>(s)]) x = normal(rng);
    for (auto& x : dense_v[static_cast<size_t>(s)]) x = normal(rng);
    for (int32_t j = 0; j < len; ++j) {
      slots.push_back(int64_t(csr.indices[static_cast<size_t>(csr.indptr[static_cast<size_t>(s)] + j / tc.page_size)]) * tc.page_size + j % tc.page_size);
      kbuf.insert(kbuf.end(), dense_k[static_cast<size_t>(s)].begin() + j * row, dense_k[static_cast<size_t>(s)].begin() + (j + 1) * row);
      vbuf.insert(vbuf.end(), dense_v[static_cast<size_t>(s)].begin() + j * row, dense_v[static_cast<size_t>(s)].begin() + (j + 1) * row);
    }
    for (int32_t j = tc.prior_len[static_cast<size_t>(s)]; j < len; ++j) query_pos.push_back(j);
    query_start.push_back(int32_t(query_pos.size()));
  }
  const int64_t n_kv_rows = int64_t(slots.size());
  Tensor k{kbuf.data(), DType::DTYPE_F32, {n_kv_rows, tc.n_kv_heads, tc.head_dim, 0}, 3};
  Tensor v{vbuf.data(), DType::DTYPE_F32, {n_kv_rows, tc.n_kv_heads, tc.head_dim, 0}, 3};
  be.kv_write(0, k, v, slots);

  const int64_t n_q = int64_t(query_pos.size());
  std::vector<float> qbuf(static_cast<size_t>(n_q * tc.n_heads * tc.head_dim));
  for (auto& x : qbuf) x = normal(rng);
  std::vector<float> obuf(qbuf.size(), std::nanf(""));  // poisoned: every element must be written
  Tensor q{qbuf.data(), DType::DTYPE_F32, {n_q, tc.n_heads, tc.head_dim, 0}, 3};
  Tensor o{obuf.data(), DType::DTYPE_F32, {n_q, tc.n_heads, tc.head_dim, 0}, 3};
  AttentionBatch batch{query_start, query_pos, kv_len, &csr};
  AttentionParams params{0.125f, tc.softcap, tc.window};
  be.attention(o, q, 0, batch, params);

  const int32_t group = tc.n_heads / tc.n_kv_heads;
  double max_err = 0;
  for (int32_t s = 0; s < n_seq; ++s) {
    for (int32_t r = query_start[static_cast<size_t>(s)]; r < query_start[static_cast<size_t>(s + 1)]; ++r) {
      const int32_t pos = query_pos[static_cast<size_t>(r)];
      for (int32_t h = 0; h < tc.n_heads; ++h) {
        const int32_t kvh = h / group;
        std::vector<double> w;
        double mx = -1e300;
        for (int32_t j = 0; j <= pos; ++j) {
          if (tc.window > 0 && pos - j >= tc.window) { w.push_back(-INFINITY); continue; }
          double d = 0;
          for (int32_t e = 0; e < tc.head_dim; ++e)
            d += double(qbuf[static_cast<size_t>((r * tc.n_heads + h) * tc.head_dim + e)]) * dense_k[static_cast<size_t>(s)][static_cast<size_t>(j * row + kvh * tc.head_dim + e)];
          d *= 0.125;
          if (tc.softcap > 0) d = tc.softcap * std::tanh(d / tc.softcap);
          w.push_back(d);
          mx = std::max(mx, d);
        }
        double sum = 0;
        for (auto& x : w) { x = std::exp(x - mx); sum += x; }
        for (int32_t e = 0; e < tc.head_dim; ++e) {
          double ref = 0;
          for (int32_t j = 0; j <= pos; ++j) ref += w[static_cast<size_t>(j)] / sum * dense_v[static_cast<size_t>(s)][static_cast<size_t>(j * row + kvh * tc.head_dim + e)];
          const float got = obuf[static_cast<size_t>((r * tc.n_heads + h) * tc.head_dim + e)];
          REQUIRE(std::isfinite(got));
          max_err = std::max(max_err, std::abs(double(got) - ref));
        }
      }
    }
  }
  CHECK(max_err < 2e-5);
}

}  // namespace

TEST_CASE("paged CPU attention equals dense attention", "[backend][attention]") {
  uint32_t seed = 1;
  SECTION("single sequence, page boundaries, GQA 4:1") { run_case({8, 2, 16, 4, 0, 0.f, {0}, {13}}, seed++); }
  SECTION("decode: one query after a long cached prefix") { run_case({4, 4, 32, 16, 0, 0.f, {200}, {1}}, seed++); }
  SECTION("ragged batch of prefill and decode rows") { run_case({6, 3, 8, 5, 0, 0.f, {0, 17, 3}, {9, 1, 11}}, seed++); }
  SECTION("sliding window") { run_case({4, 2, 16, 8, 7, 0.f, {30}, {12}}, seed++); }
  SECTION("softcap") { run_case({2, 1, 64, 16, 0, 2.0f, {5}, {20}}, seed++); }
  SECTION("head_dim 256, MQA") { run_case({4, 1, 256, 16, 0, 0.f, {33}, {2}}, seed++); }
  SECTION("page size 1") { run_case({2, 2, 8, 1, 0, 0.f, {4}, {3}}, seed++); }
}
