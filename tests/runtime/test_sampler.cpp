// Sampler: greedy, seeded determinism, distribution shape (chi-square), truncation rules, penalties, bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "lcllm/error.h"
#include "lcllm/sampling_params.h"
#include "runtime/sampler.h"

using lcllm::Error;
using lcllm::ErrorKind;
using lcllm::Sampler;
using lcllm::SamplerRng;
using lcllm::SamplingParams;
using lcllm::TokenProb;

namespace {

const std::vector<int32_t> kNoIds;
constexpr float kInf = std::numeric_limits<float>::infinity();

// Logits whose softmax is exactly probs (up to rounding).
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(p > 0 ? static_cast<float>(std::log(p)) : -kInf);
  return logits;
}

SamplingParams with_seed(uint64_t seed) {
  SamplingParams p;
  p.seed = seed;
  return p;
}

std::map<int32_t, int> draw_counts(Sampler& sampler, const std::vector<float>& logits, int n) {
  std::map<int32_t, int> counts;
  for (int i = 0; i < n; ++i) ++counts[sampler.sample(logits, kNoIds, kNoIds)];
  return counts;
}

// Pearson chi-square of observed counts against expected probabilities (ids with probability 0 must not occur).
double chi_square(const std::map<int32_t, int>& counts, const std::map<int32_t, double>& expected, int n) {
  double stat = 0.0;
  for (const auto& [id, p] : expected) {
    const auto it = counts.find(id);
    const double observed = it == counts.end() ? 0.0 : it->second;
    const double e = p * n;
    stat += (observed - e) * (observed - e) / e;
  }
  for (const auto& entry : counts) REQUIRE(expected.count(entry.first) == 1);
  return stat;
}

// 99.9% quantiles of the chi-square distribution by degrees of freedom.
double chi_square_critical_999(int dof) {
  static const double table[] = {0, 10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877};
  REQUIRE(dof >= 1);
  REQUIRE(dof <= 9);
  return table[dof];
}

std::vector<int32_t> ids_of(const std::vector<TokenProb>& dist) {
  std::vector<int32_t> ids;
  for (const TokenProb& t : dist) ids.push_back(t.id);
  return ids;
}

template <typename F>
Error catch_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  FAIL("expected lcllm::Error");
  return Error(ErrorKind::ERROR_KIND_IO, "unreachable");
}

}  // namespace

TEST_CASE("rng is xoshiro256** seeded by splitmix64, bit-exact", "[sampler][rng]") {
  // Values from the reference algorithms (Vigna's C code, transcribed in Python).
  SamplerRng zero(0);
  CHECK(zero.next_u64() == 0x99ec5f36cb75f2b4ull);
  CHECK(zero.next_u64() == 0xbf6e1f784956452aull);
  CHECK(zero.next_u64() == 0x1a5f849d4933e6e0ull);
  SamplerRng answer(42);
  CHECK(answer.next_double() == static_cast<double>(0x15780b2e0c2ec716ull >> 11) * 0x1.0p-53);
  for (int i = 0; i < 10000; ++i) {
    const double u = answer.next_double();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
  }
}

TEST_CASE("greedy picks the argmax, lowest id on ties, and does not draw", "[sampler][greedy]") {
  SamplingParams p;
  p.temperature = 0.0f;
  Sampler sampler(p);
  CHECK(sampler.sample(std::vector<float>{0.1f, 3.0f, -2.0f, 2.9f}, kNoIds, kNoIds) == 1);
  CHECK(sampler.sample(std::vector<float>{1.0f, 5.0f, 2.0f, 5.0f, 5.0f}, kNoIds, kNoIds) == 1);
  CHECK(sampler.sample(std::vector<float>{-kInf, -1.0f, -kInf}, kNoIds, kNoIds) == 1);
  const std::vector<TokenProb> dist = sampler.distribution(std::vector<float>{1.0f, 2.0f}, kNoIds, kNoIds);
  REQUIRE(dist.size() == 1u);
  CHECK(dist[0].id == 1);
  CHECK(dist[0].prob == 1.0);
}

TEST_CASE("same seed gives the same tokens, another seed other tokens", "[sampler][seed]") {
  const std::vector<float> logits(1000, 0.0f);  // uniform over 1000 tokens
  auto run = [&](uint64_t seed) {
    Sampler sampler(with_seed(seed));
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) out.push_back(sampler.sample(logits, kNoIds, kNoIds));
    return out;
  };
  CHECK(run(7) == run(7));
  CHECK(run(7) != run(8));
  CHECK(run(0) != run(1));
}

TEST_CASE("draws follow the softmax distribution (chi-square, 20000 draws)", "[sampler][stats]") {
  const std::vector<double> probs{0.1, 0.2, 0.3, 0.4};
  Sampler sampler(with_seed(1234));
  const int n = 20000;
  const auto counts = draw_counts(sampler, logits_of(probs), n);
  const double stat = chi_square(counts, {{0, 0.1}, {1, 0.2}, {2, 0.3}, {3, 0.4}}, n);
  CHECK(stat < chi_square_critical_999(3));
}

TEST_CASE("top-k never samples outside the k largest and keeps their relative odds", "[sampler][top_k]") {
  std::vector<float> logits(50);
  for (int i = 0; i < 50; ++i) logits[i] = static_cast<float>((i * 37) % 50) * 0.1f;  // a permutation of 0..4.9
  // The five largest: values 4.9, 4.8, ..., 4.5 at ids with (i*37)%50 == 49..45.
  std::map<int32_t, double> expected;
  double z = 0.0;
  for (int i = 0; i < 50; ++i) {
    if ((i * 37) % 50 >= 45) {
      expected[i] = std::exp(static_cast<double>(logits[i]));
      z += expected[i];
    }
  }
  REQUIRE(expected.size() == 5u);
  for (auto& entry : expected) entry.second /= z;

  SamplingParams p = with_seed(99);
  p.top_k = 5;
  Sampler sampler(p);
  const int n = 20000;
  const auto counts = draw_counts(sampler, logits, n);
  for (const auto& entry : counts) CHECK(expected.count(entry.first) == 1);
  CHECK(chi_square(counts, expected, n) < chi_square_critical_999(4));

  const std::vector<TokenProb> dist = sampler.distribution(logits, kNoIds, kNoIds);
  REQUIRE(dist.size() == 5u);
  for (const TokenProb& t : dist) CHECK(t.prob == Approx(expected.at(t.id)).epsilon(1e-6));
}

TEST_CASE("top-k ties at the cut keep the lower ids", "[sampler][top_k]") {
  SamplingParams p;
  p.top_k = 2;
  Sampler sampler(p);
  const auto dist = sampler.distribution(std::vector<float>{1.0f, 2.0f, 1.0f, 1.0f}, kNoIds, kNoIds);
  CHECK(ids_of(dist) == std::vector<int32_t>{1, 0});
}

TEST_CASE("top-p keeps the smallest set reaching p, at least one token", "[sampler][top_p]") {
  // p(3) = 0.5, p(0) = 0.25, p(2) = 0.15, p(1) = 0.1
  const std::vector<float> logits = logits_of({0.25, 0.1, 0.15, 0.5});
  auto set_for = [&](float top_p) {
    SamplingParams p;
    p.top_p = top_p;
    Sampler sampler(p);
    return sampler.distribution(logits, kNoIds, kNoIds);
  };
  CHECK(ids_of(set_for(0.01f)) == std::vector<int32_t>{3});
  CHECK(ids_of(set_for(0.3f)) == std::vector<int32_t>{3});
  CHECK(ids_of(set_for(0.7f)) == std::vector<int32_t>{3, 0});
  CHECK(ids_of(set_for(0.8f)) == std::vector<int32_t>{3, 0, 2});
  CHECK(ids_of(set_for(0.95f)) == std::vector<int32_t>{3, 0, 2, 1});
  CHECK(ids_of(set_for(1.0f)) == std::vector<int32_t>{3, 0, 2, 1});

  const auto d = set_for(0.8f);
  CHECK(d[0].prob == Approx(0.5 / 0.9));
  CHECK(d[1].prob == Approx(0.25 / 0.9));
  CHECK(d[2].prob == Approx(0.15 / 0.9));

  SamplingParams p = with_seed(5);
  p.top_p = 0.8f;
  Sampler sampler(p);
  const int n = 20000;
  const auto counts = draw_counts(sampler, logits, n);
  CHECK(counts.count(1) == 0);
  CHECK(chi_square(counts, {{3, 0.5 / 0.9}, {0, 0.25 / 0.9}, {2, 0.15 / 0.9}}, n) < chi_square_critical_999(2));
}

TEST_CASE("top-p applies to the distribution left by top-k", "[sampler][top_p]") {
  // After top-k 2: p(3) = 0.5/0.75 = 0.667, p(0) = 0.333; top-p 0.6 keeps only 3 (on the full distribution it
  // would keep 3 and 0, since 0.5 < 0.6).
  SamplingParams p;
  p.top_k = 2;
  p.top_p = 0.6f;
  Sampler sampler(p);
  CHECK(ids_of(sampler.distribution(logits_of({0.25, 0.1, 0.15, 0.5}), kNoIds, kNoIds)) ==
        std::vector<int32_t>{3});
}

TEST_CASE("min-p keeps tokens with p >= min_p * p_max", "[sampler][min_p]") {
  const std::vector<float> logits = logits_of({0.5, 0.3, 0.15, 0.05});
  auto set_for = [&](float min_p) {
    SamplingParams p;
    p.min_p = min_p;
    Sampler sampler(p);
    return sampler.distribution(logits, kNoIds, kNoIds);
  };
  CHECK(ids_of(set_for(0.0f)) == std::vector<int32_t>{0, 1, 2, 3});
  CHECK(ids_of(set_for(0.2f)) == std::vector<int32_t>{0, 1, 2});  // threshold 0.1
  CHECK(ids_of(set_for(0.4f)) == std::vector<int32_t>{0, 1});     // threshold 0.2
  CHECK(ids_of(set_for(1.0f)) == std::vector<int32_t>{0});
  const auto d = set_for(0.4f);
  CHECK(d[0].prob == Approx(0.5 / 0.8));

  SamplingParams p = with_seed(11);
  p.min_p = 0.2f;
  Sampler sampler(p);
  const int n = 20000;
  const auto counts = draw_counts(sampler, logits, n);
  CHECK(counts.count(3) == 0);
  CHECK(chi_square(counts, {{0, 0.5 / 0.95}, {1, 0.3 / 0.95}, {2, 0.15 / 0.95}}, n) < chi_square_critical_999(2));
}

TEST_CASE("lower temperature sharpens the distribution", "[sampler][temperature]") {
  const std::vector<float> logits = logits_of({0.6, 0.3, 0.1});
  const int n = 20000;
  std::vector<double> frequency_of_top;
  for (float t : {4.0f, 2.0f, 1.0f, 0.5f, 0.25f}) {
    SamplingParams p = with_seed(3);
    p.temperature = t;
    Sampler sampler(p);
    // Exact: p_i ∝ p_i^(1/T).
    const double a = std::pow(0.6, 1.0 / t), b = std::pow(0.3, 1.0 / t), c = std::pow(0.1, 1.0 / t);
    const auto dist = sampler.distribution(logits, kNoIds, kNoIds);
    CHECK(dist[0].prob == Approx(a / (a + b + c)).epsilon(1e-5));
    const auto counts = draw_counts(sampler, logits, n);
    CHECK(chi_square(counts, {{0, a / (a + b + c)}, {1, b / (a + b + c)}, {2, c / (a + b + c)}}, n) <
          chi_square_critical_999(2));
    frequency_of_top.push_back(static_cast<double>(counts.at(0)) / n);
  }
  for (size_t i = 1; i < frequency_of_top.size(); ++i) CHECK(frequency_of_top[i] > frequency_of_top[i - 1]);
}

TEST_CASE("repetition penalty divides positive and multiplies negative logits of seen ids", "[sampler][penalty]") {
  SamplingParams p;
  p.temperature = 0.0f;
  const std::vector<float> positive{2.0f, 1.9f};
  const std::vector<float> negative{-1.0f, -1.1f};
  const std::vector<int32_t> prompt{0};
  CHECK(Sampler(p).sample(positive, prompt, kNoIds) == 0);
  p.repetition_penalty = 1.2f;
  Sampler sampler(p);
  CHECK(sampler.sample(positive, prompt, kNoIds) == 1);             // 2.0 / 1.2 = 1.67 < 1.9
  CHECK(sampler.sample(negative, prompt, kNoIds) == 1);             // -1.0 * 1.2 = -1.2 < -1.1
  CHECK(sampler.sample(positive, kNoIds, prompt) == 1);             // output ids count too
  CHECK(sampler.sample(positive, std::vector<int32_t>{1}, kNoIds) == 0);

  // Once per distinct id: three occurrences of 0 divide by 2 once (4 -> 2, a tie with token 1).
  SamplingParams q;
  q.repetition_penalty = 2.0f;
  Sampler once(q);
  const auto dist = once.distribution(std::vector<float>{4.0f, 2.0f}, std::vector<int32_t>{0, 0, 0}, kNoIds);
  CHECK(dist[0].prob == Approx(0.5));
}

TEST_CASE("frequency penalty scales with the count in the output, ignoring the prompt", "[sampler][penalty]") {
  SamplingParams p;
  p.temperature = 0.0f;
  p.frequency_penalty = 0.3f;
  Sampler sampler(p);
  const std::vector<float> logits{2.0f, 1.5f};
  CHECK(sampler.sample(logits, kNoIds, std::vector<int32_t>{0}) == 0);         // 2.0 - 0.3 = 1.7
  CHECK(sampler.sample(logits, kNoIds, std::vector<int32_t>{0, 0}) == 1);      // 2.0 - 0.6 = 1.4
  CHECK(sampler.sample(logits, std::vector<int32_t>{0, 0, 0}, kNoIds) == 0);   // prompt only: no penalty
  // Negative values reward repetition.
  p.frequency_penalty = -0.3f;
  CHECK(Sampler(p).sample(std::vector<float>{1.5f, 2.0f}, kNoIds, std::vector<int32_t>{0, 0}) == 0);
}

TEST_CASE("presence penalty applies once per generated id", "[sampler][penalty]") {
  SamplingParams p;
  p.temperature = 0.0f;
  p.presence_penalty = 0.6f;
  Sampler sampler(p);
  const std::vector<float> logits{2.0f, 1.5f};
  CHECK(sampler.sample(logits, kNoIds, std::vector<int32_t>{0}) == 1);  // 1.4 < 1.5
  CHECK(sampler.sample(std::vector<float>{2.0f, 1.3f}, kNoIds, std::vector<int32_t>{0, 0, 0, 0}) == 0);  // 1.4
  CHECK(sampler.sample(logits, std::vector<int32_t>{0}, kNoIds) == 0);  // prompt only: no penalty
}

TEST_CASE("penalties leave the scratch state clean between calls", "[sampler][penalty]") {
  SamplingParams p;
  p.temperature = 0.0f;
  p.repetition_penalty = 1.5f;
  p.frequency_penalty = 1.0f;
  Sampler sampler(p);
  const std::vector<float> logits{2.0f, 1.9f, 0.0f};
  CHECK(sampler.sample(logits, std::vector<int32_t>{0}, std::vector<int32_t>{0, 0}) == 1);
  CHECK(catch_error([&] { sampler.sample(logits, std::vector<int32_t>{0}, std::vector<int32_t>{0, 7}); }).kind() ==
        ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
  CHECK(catch_error([&] { sampler.sample(logits, std::vector<int32_t>{-1}, kNoIds); }).kind() ==
        ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
  CHECK(sampler.sample(logits, kNoIds, kNoIds) == 0);  // nothing left over from the calls above
}

TEST_CASE("-inf logits are never sampled, +inf take all the mass, NaN is an error", "[sampler][special]") {
  Sampler sampler(with_seed(17));
  const std::vector<float> masked{-kInf, 0.0f, -kInf, 0.0f};
  const auto counts = draw_counts(sampler, masked, 2000);
  CHECK(counts.count(0) == 0);
  CHECK(counts.count(2) == 0);
  CHECK(counts.size() == 2u);

  const std::vector<float> infinite{0.0f, kInf, 5.0f, kInf};
  const auto inf_counts = draw_counts(sampler, infinite, 2000);
  CHECK(inf_counts.count(0) == 0);
  CHECK(inf_counts.count(2) == 0);
  CHECK(inf_counts.size() == 2u);
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  CHECK(Sampler(greedy).sample(infinite, kNoIds, kNoIds) == 1);

  const std::vector<float> with_nan{0.0f, std::numeric_limits<float>::quiet_NaN(), 1.0f};
  const Error e = catch_error([&] { sampler.sample(with_nan, kNoIds, kNoIds); });
  CHECK(e.kind() == ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
  CHECK(std::string(e.what()).find("token 1 is NaN") != std::string::npos);
  CHECK(catch_error([&] { Sampler(greedy).sample(with_nan, kNoIds, kNoIds); }).kind() ==
        ErrorKind::ERROR_KIND_INVALID_ARGUMENT);

  const std::vector<float> all_masked{-kInf, -kInf};
  CHECK(catch_error([&] { sampler.sample(all_masked, kNoIds, kNoIds); }).kind() ==
        ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
  CHECK(catch_error([&] { Sampler(greedy).sample(all_masked, kNoIds, kNoIds); }).kind() ==
        ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
  CHECK(catch_error([&] { sampler.sample(std::vector<float>{}, kNoIds, kNoIds); }).kind() ==
        ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
}

TEST_CASE("validation lists every problem at once", "[sampler][validate]") {
  CHECK(lcllm::validate_sampling_params(SamplingParams{}).empty());
  SamplingParams edge;
  edge.temperature = 0.0f;
  edge.top_p = 1.0f;
  edge.min_p = 1.0f;
  edge.frequency_penalty = -2.0f;
  edge.presence_penalty = 2.0f;
  CHECK(lcllm::validate_sampling_params(edge).empty());

  SamplingParams bad;
  bad.temperature = std::numeric_limits<float>::quiet_NaN();
  bad.top_k = -1;
  bad.top_p = 0.0f;
  bad.min_p = 1.5f;
  bad.repetition_penalty = 0.0f;
  bad.frequency_penalty = kInf;
  bad.presence_penalty = std::numeric_limits<float>::quiet_NaN();
  const std::vector<std::string> problems = lcllm::validate_sampling_params(bad);
  REQUIRE(problems.size() == 7u);
  const char* fields[] = {"temperature", "top_k", "top_p", "min_p", "repetition_penalty", "frequency_penalty",
                          "presence_penalty"};
  for (size_t i = 0; i < 7; ++i) CHECK(problems[i].find(fields[i]) != std::string::npos);
  CHECK(problems[1].find("-1") != std::string::npos);

  SamplingParams negative;
  negative.temperature = -0.5f;
  negative.top_p = 1.5f;
  negative.repetition_penalty = -1.0f;
  CHECK(lcllm::validate_sampling_params(negative).size() == 3u);

  const Error e = catch_error([&] { Sampler s(bad); });
  CHECK(e.kind() == ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
  for (const char* field : fields) CHECK(std::string(e.what()).find(field) != std::string::npos);
}
