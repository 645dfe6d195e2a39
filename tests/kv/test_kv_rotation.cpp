// The fp8 cache's Hadamard rotation (kv/kv_rotation.h): the fast transform against the matrix it stands for, its
// orthonormality (dot products kept, its own inverse), which caches rotate, and why it is there — on vectors with
// an outlier channel, fp8 scores computed from rotated vectors stay closer to the exact ones.
#include <cmath>
#include <random>
#include <vector>
#include <catch2/catch.hpp>

#include "kv/kv_quant.h"
#include "kv/kv_rotation.h"

using namespace lcllm;

namespace {

// Sylvester's Hadamard entry H[i][j] = (-1)^popcount(i & j) / sqrt(n).
double hadamard_entry(int32_t i, int32_t j, int32_t n) {
  return (__builtin_popcount(unsigned(i & j)) % 2 ? -1.0 : 1.0) / std::sqrt(double(n));
}

std::vector<float> normal_vector(std::mt19937& rng, int32_t n) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n));  // [n]
  for (auto& x : v) x = nd(rng);
  return v;
}

}  // namespace

TEST_CASE("kv_rotate_vector is the orthonormal Hadamard matrix: against H x, dot products kept, its own inverse",
          "[kv][fp8][rotation]") {
  std::mt19937 rng(5);
  for (int32_t n : {2, 8, 64, 128, 256}) {
    INFO("n " << n);
    const std::vector<float> x = normal_vector(rng, n), y = normal_vector(rng, n);
    std::vector<float> hx = x, hy = y;
    kv_rotate_vector(hx.data(), n);
    kv_rotate_vector(hy.data(), n);
    double dot = 0, hdot = 0;
    for (int32_t i = 0; i < n; ++i) {
      double want = 0;
      for (int32_t j = 0; j < n; ++j) want += hadamard_entry(i, j, n) * x[size_t(j)];
      CHECK(std::abs(hx[size_t(i)] - want) <= 1e-5);
      dot += double(x[size_t(i)]) * y[size_t(i)];
      hdot += double(hx[size_t(i)]) * hy[size_t(i)];
    }
    CHECK(std::abs(hdot - dot) <= 1e-4 * n);
    std::vector<float> back = hx;
    kv_rotate_vector(back.data(), n);
    for (int32_t i = 0; i < n; ++i) CHECK(std::abs(back[size_t(i)] - x[size_t(i)]) <= 1e-5f);
  }
  CHECK(kv_rotation_norm(64) == 0.125f);
  CHECK(kv_rotation_norm(256) == 0.0625f);
  CHECK(kv_rotation_norm(128) == float(1.0 / std::sqrt(128.0)));
}

TEST_CASE("kv_rotated: fp8 caches of a power-of-two head_dim up to 256 rotate, nothing else", "[kv][fp8][rotation]") {
  for (int32_t d : {64, 128, 256}) CHECK(kv_rotated(KvDtype::KV_DTYPE_FP8_E4M3, d));
  for (int32_t d : {0, 80, 96, 512}) CHECK_FALSE(kv_rotated(KvDtype::KV_DTYPE_FP8_E4M3, d));
  for (int32_t d : {64, 128}) {
    CHECK_FALSE(kv_rotated(KvDtype::KV_DTYPE_BF16, d));
    CHECK_FALSE(kv_rotated(KvDtype::KV_DTYPE_F32, d));
  }
}

TEST_CASE("fp8 scores from rotated vectors: closer to exact where keys and queries share outlier channels",
          "[kv][fp8][rotation]") {
  // Keys and queries with two large channels (as trained models' keys have): the plain fp8 score error rests on
  // those channels' roundings, the rotated one averages over all 128.
  constexpr int32_t n = 128, keys = 512;
  std::mt19937 rng(9);
  std::vector<float> q = normal_vector(rng, n);
  q[3] = 40.f;
  q[77] = -25.f;
  std::vector<float> hq = q;
  kv_rotate_vector(hq.data(), n);
  double err_plain = 0, err_rotated = 0;
  for (int32_t t = 0; t < keys; ++t) {
    std::vector<float> k = normal_vector(rng, n);
    k[3] = 30.f + k[3];
    k[77] = -20.f + k[77];
    double exact = 0;
    for (int32_t i = 0; i < n; ++i) exact += double(q[size_t(i)]) * k[size_t(i)];
    std::vector<float> plain = k, rotated = k;
    kv_round_vector(plain.data(), n, KvDtype::KV_DTYPE_FP8_E4M3);
    kv_rotate_vector(rotated.data(), n);
    kv_round_vector(rotated.data(), n, KvDtype::KV_DTYPE_FP8_E4M3);
    double s_plain = 0, s_rotated = 0;
    for (int32_t i = 0; i < n; ++i) {
      s_plain += double(q[size_t(i)]) * plain[size_t(i)];
      s_rotated += double(hq[size_t(i)]) * rotated[size_t(i)];
    }
    err_plain += (s_plain - exact) * (s_plain - exact);
    err_rotated += (s_rotated - exact) * (s_rotated - exact);
  }
  const double rms_plain = std::sqrt(err_plain / keys), rms_rotated = std::sqrt(err_rotated / keys);
  INFO("rms score error: plain " << rms_plain << ", rotated " << rms_rotated);
  CHECK(rms_rotated < 0.5 * rms_plain);
}
