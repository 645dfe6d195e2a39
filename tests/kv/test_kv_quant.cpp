// fp8 KV values (kv/kv_quant.h): the e4m3fn codec checked against brute force over its 256 codes, the per-vector
// power-of-two scale, and the CPU emulation of a rounded vector.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "kv/kv_quant.h"

using namespace lcllm;

namespace {

// e4m3fn from its definition (OCP 8-bit floating point spec, E4M3: bias 7, S.1111.111 is NaN, no infinities).
double e4m3_reference(uint8_t c) {
  const int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
  if (e == 15 && m == 7) return std::numeric_limits<double>::quiet_NaN();
  const double mag = e == 0 ? m / 8.0 * std::pow(2.0, -6) : (1.0 + m / 8.0) * std::pow(2.0, e - 7);
  return s ? -mag : mag;
}

// The code a correct round-to-nearest-even, saturating encoder gives: the nearest finite code by brute force, ties
// to the even code (mantissa bit 0 clear), |x| beyond 448 -> ±448.
uint8_t encode_brute_force(float x) {
  if (std::isnan(x)) return std::signbit(x) ? 0xff : 0x7f;
  const double v = std::clamp(double(x), -448.0, 448.0);
  int best = -1;
  double best_err = 1e300;
  for (int c = 0; c < 256; ++c) {
    const double r = e4m3_reference(uint8_t(c));
    if (std::isnan(r)) continue;
    if (std::signbit(r) != std::signbit(double(x)) && r != 0.0) continue;  // same sign (zero of x's sign below)
    const double err = std::abs(r - v);
    if (err < best_err || (err == best_err && (c & 1) == 0 && (best & 1) == 1)) {
      best = c;
      best_err = err;
    }
  }
  uint8_t code = uint8_t(best);
  if ((code & 0x7f) == 0) code = std::signbit(x) ? 0x80 : 0x00;  // ±0 keeps the sign
  return code;
}

}  // namespace

TEST_CASE("fp8 e4m3: every code decodes to its definition", "[kv][fp8]") {
  for (int c = 0; c < 256; ++c) {
    const double want = e4m3_reference(uint8_t(c));
    const float got = fp8_e4m3_decode(uint8_t(c));
    if (std::isnan(want)) {
      CHECK(std::isnan(got));
    } else {
      CHECK(double(got) == want);
    }
  }
  CHECK(fp8_e4m3_decode(0x7e) == 448.f);
  CHECK(fp8_e4m3_decode(0x38) == 1.f);
  CHECK(fp8_e4m3_decode(0x08) == 0.015625f);  // smallest normal 2^-6
  CHECK(fp8_e4m3_decode(0x01) == std::ldexp(1.f, -9));
}

TEST_CASE("fp8 e4m3: encoding rounds to nearest even and saturates", "[kv][fp8]") {
  // Every finite code round-trips.
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7f) == 0x7f) continue;
    CHECK(fp8_e4m3_encode(fp8_e4m3_decode(uint8_t(c))) == uint8_t(c));
  }
  std::vector<float> xs = {0.f, -0.f, 448.f, 449.f, 464.f, 470.f, 1e30f, -1e30f,
                           std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                           std::ldexp(1.f, -10), std::ldexp(1.f, -11), std::ldexp(3.f, -11), 1e-30f};
  // Midpoints between neighbouring codes (the ties) and points just beside them.
  for (int c = 0; c < 0x7e; ++c) {
    const float lo = fp8_e4m3_decode(uint8_t(c)), hi = fp8_e4m3_decode(uint8_t(c + 1));
    const float mid = 0.5f * (lo + hi);
    for (float x : {mid, std::nextafter(mid, 0.f), std::nextafter(mid, 1e9f)}) {
      xs.push_back(x);
      xs.push_back(-x);
    }
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> log2mag(-14.f, 10.f);
  for (int i = 0; i < 20000; ++i) {
    const float x = std::exp2(log2mag(rng)) * (rng() & 1 ? 1.f : -1.f);
    xs.push_back(x);
  }
  int mismatches = 0;
  for (float x : xs) {
    const uint8_t got = fp8_e4m3_encode(x), want = encode_brute_force(x);
    if (got != want) {
      if (++mismatches <= 5) FAIL_CHECK("x = " << x << ": code " << int(got) << ", brute force " << int(want));
    }
  }
  CHECK(mismatches == 0);
  CHECK(fp8_e4m3_encode(std::numeric_limits<float>::quiet_NaN()) == 0x7f);
}

TEST_CASE("fp8 scale: the smallest power of two that keeps the vector within ±448", "[kv][fp8]") {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> log2mag(-100.f, 100.f);
  for (int i = 0; i < 10000; ++i) {
    const float amax = std::exp2(log2mag(rng));
    const uint8_t e = fp8_scale_exponent(amax);
    const int k = int(e) - 127;
    CHECK(double(amax) <= 448.0 * std::ldexp(1.0, k));
    CHECK(double(amax) > 448.0 * std::ldexp(1.0, k - 1));
    CHECK(fp8_scale_value(e) == std::ldexp(1.f, k));
  }
  CHECK(fp8_scale_exponent(448.f) == 127);
  CHECK(fp8_scale_exponent(448.5f) == 128);
  CHECK(fp8_scale_exponent(224.f) == 126);
  CHECK(fp8_scale_exponent(0.f) == 127);
}

TEST_CASE("fp8 KV vector rounding: e4m3 values under one power-of-two scale, the largest within 1/16", "[kv][fp8]") {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (float magnitude : {1e-3f, 1.f, 37.f, 5000.f}) {
    std::vector<float> v(128), orig;
    for (auto& x : v) x = nd(rng) * magnitude;
    v[5] = 0.f;
    orig = v;
    const uint8_t e = kv_round_vector(v.data(), int32_t(v.size()), KvDtype::KV_DTYPE_FP8_E4M3);
    const float scale = fp8_scale_value(e);
    float amax = 0.f;
    for (float x : orig) amax = std::max(amax, std::abs(x));
    CHECK(e == fp8_scale_exponent(amax));
    for (size_t i = 0; i < v.size(); ++i) {
      const float code_value = v[i] / scale;  // exact: scale is a power of two
      CHECK(fp8_e4m3_decode(fp8_e4m3_encode(code_value)) == code_value);  // an e4m3 value
      CHECK(fp8_e4m3_encode(code_value) == fp8_e4m3_encode(orig[i] / scale));  // the nearest one
      if (std::abs(orig[i]) >= amax / 2) CHECK(std::abs(v[i] - orig[i]) <= std::abs(orig[i]) / 16);
    }
    CHECK(v[5] == 0.f);
  }
  // bf16: round to nearest even of the upper 16 bits.
  std::vector<float> b = {1.f + std::ldexp(1.f, -8), 1.f + 3 * std::ldexp(1.f, -8), -3.14159f};
  kv_round_vector(b.data(), 3, KvDtype::KV_DTYPE_BF16);
  CHECK(b[0] == 1.f);                             // tie -> even
  CHECK(b[1] == 1.f + std::ldexp(1.f, -6));       // tie -> even (up)
  CHECK(b[2] == -3.140625f);
  CHECK(kv_vector_bytes(KvDtype::KV_DTYPE_FP8_E4M3, 128) == 129);
  CHECK(kv_vector_bytes(KvDtype::KV_DTYPE_BF16, 128) == 256);
}
