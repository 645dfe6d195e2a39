// The CPU inner loops (cpu_simd.h): each result must be the documented lane arithmetic bit for bit, whichever
// instruction set's clone ran, and the grouped kernels must equal cpu_dot element by element.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "backend/cpu/cpu_simd.h"

using namespace lcllm;

namespace {

// cpu_simd.h's arithmetic written out one scalar at a time (x86-64's baseline has no fused multiply-add, so the
// compiler cannot fuse these).
float lane_dot(const float* a, const float* b, int64_t n) {
  float l[8] = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    for (int i = 0; i < 8; ++i) {
      const float p = a[j + i] * b[j + i];
      l[i] = l[i] + p;
    }
  }
  float s = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
  for (; j < n; ++j) s = s + a[j] * b[j];
  return s;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

std::vector<float> random_vector(std::mt19937& rng, int64_t n) {
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = normal(rng);
  return v;
}

}  // namespace

TEST_CASE("cpu_dot is the lane arithmetic and close to the exact dot", "[cpu][simd]") {
  std::mt19937 rng(7);
  for (int64_t n : {0, 1, 7, 8, 9, 15, 64, 100, 128, 256, 1000}) {
    const auto a = random_vector(rng, n), b = random_vector(rng, n);
    const float got = cpu_dot(a.data(), b.data(), n);
    INFO("n = " << n);
    REQUIRE(same_bits(got, lane_dot(a.data(), b.data(), n)));
    double exact = 0, mag = 0;
    for (int64_t j = 0; j < n; ++j) {
      exact += double(a[size_t(j)]) * b[size_t(j)];
      mag += std::fabs(double(a[size_t(j)]) * b[size_t(j)]);
    }
    REQUIRE(std::fabs(got - exact) <= 1e-6 * mag + 1e-30);
  }
}

TEST_CASE("cpu_dot4 and cpu_dot_block_2x4 give cpu_dot's bits for every pair", "[cpu][simd]") {
  std::mt19937 rng(11);
  for (int64_t n : {1, 8, 13, 64, 72, 257}) {
    INFO("n = " << n);
    std::vector<std::vector<float>> k;
    for (int i = 0; i < 4; ++i) k.push_back(random_vector(rng, n));
    const auto q = random_vector(rng, n);
    const float* const k4[4] = {k[0].data(), k[1].data(), k[2].data(), k[3].data()};
    float out4[4];
    cpu_dot4(q.data(), k4, n, out4);
    for (int i = 0; i < 4; ++i) REQUIRE(same_bits(out4[i], cpu_dot(q.data(), k[size_t(i)].data(), n)));

    // x: 2 rows, w: 4 rows, both with a stride wider than n; out with a stride wider than 4.
    const int64_t xs = n + 3, ws = n + 5, os = 6;
    const auto x = random_vector(rng, 2 * xs), w = random_vector(rng, 4 * ws);
    std::vector<float> out(size_t(2 * os), -1.f);
    cpu_dot_block_2x4(x.data(), xs, w.data(), ws, n, out.data(), os);
    for (int t = 0; t < 2; ++t) {
      for (int o = 0; o < 4; ++o) {
        REQUIRE(same_bits(out[size_t(t * os + o)], cpu_dot(x.data() + t * xs, w.data() + o * ws, n)));
      }
      REQUIRE(out[size_t(t * os + 4)] == -1.f);  // nothing written past the block
    }
  }
}

TEST_CASE("cpu_axpy rounds the product then the sum", "[cpu][simd]") {
  std::mt19937 rng(3);
  for (int64_t n : {0, 1, 9, 64, 130}) {
    auto y = random_vector(rng, n);
    const auto x = random_vector(rng, n);
    auto want = y;
    const float a = 0.37f;
    for (int64_t j = 0; j < n; ++j) {
      const float p = a * x[size_t(j)];
      want[size_t(j)] = want[size_t(j)] + p;
    }
    cpu_axpy(y.data(), a, x.data(), n);
    for (int64_t j = 0; j < n; ++j) REQUIRE(same_bits(y[size_t(j)], want[size_t(j)]));
  }
}

TEST_CASE("cpu_weighted_sum_add equals cpu_axpy row after row", "[cpu][simd]") {
  std::mt19937 rng(5);
  for (int64_t n : {1, 8, 63, 64, 72, 128, 200, 256}) {
    for (int64_t n_rows : {0, 1, 3, 17}) {
      INFO("n = " << n << ", rows = " << n_rows);
      std::vector<std::vector<float>> rows;
      std::vector<const float*> ptrs;
      for (int64_t i = 0; i < n_rows; ++i) rows.push_back(random_vector(rng, n));
      for (const auto& r : rows) ptrs.push_back(r.data());
      const auto p = random_vector(rng, std::max<int64_t>(n_rows, 1));
      const auto start = random_vector(rng, n);
      std::vector<float> want = start, got = start;
      for (int64_t i = 0; i < n_rows; ++i) cpu_axpy(want.data(), p[size_t(i)], ptrs[size_t(i)], n);
      cpu_weighted_sum_add(got.data(), p.data(), ptrs.data(), n_rows, n);
      for (int64_t d = 0; d < n; ++d) REQUIRE(same_bits(got[size_t(d)], want[size_t(d)]));
    }
  }
}
