// HyLRA's dynamic program (src/attention/hylra.h): a hand-made profile with a known optimum, agreement with brute
// force on random profiles, and the preset's plan shape with and without a calibrated profile.
#include <random>

#include <catch2/catch.hpp>

#include "attention/attention_plan_json.h"
#include "attention/attention_presets.h"
#include "attention/hylra.h"
#include "lcllm/error.h"

using namespace lcllm;

namespace {

constexpr AttentionPhase PREFILL = AttentionPhase::ATTENTION_PHASE_PREFILL;
constexpr AttentionPhase DECODE = AttentionPhase::ATTENTION_PHASE_DECODE;
using C = HylraChoice;

HylraProfile profile_of(int32_t n, double fill = 1.0) {
  HylraProfile p;
  p.n_layers = n;
  p.loss.assign(size_t(n) * size_t(n), fill);
  return p;
}

// Cost and error of an assignment; SPARSE must name the nearest earlier SELECT. Returns false if invalid.
bool evaluate(const HylraProfile& p, const std::vector<HylraLayerChoice>& a, const HylraCosts& costs, double& cost,
              double& error) {
  cost = error = 0;
  int32_t anchor = -1;
  for (int32_t l = 0; l < p.n_layers; ++l) {
    switch (a[size_t(l)].choice) {
      case C::HYLRA_FULL: cost += costs.full; break;
      case C::HYLRA_SELECT:
        cost += costs.select;
        anchor = l;
        break;
      case C::HYLRA_SPARSE:
        if (anchor < 0 || a[size_t(l)].from != anchor) return false;
        cost += costs.sparse;
        error += p.at(l, anchor);
        break;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("HyLRA DP finds the known optimum of a hand-made profile", "[attention][hylra]") {
  // 5 layers. Reusing layer 0 is cheap for layers 1-2 and bad for 3-4; layer 4 reuses layer 3 well.
  HylraProfile p = profile_of(5);
  p.at(1, 0) = 0.01;
  p.at(2, 0) = 0.02;
  p.at(3, 0) = 0.5;
  p.at(4, 0) = 0.5;
  p.at(2, 1) = 0.05;
  p.at(3, 2) = 0.2;
  p.at(4, 2) = 0.2;
  p.at(4, 3) = 0.03;
  HylraCosts costs;
  costs.full = 1.0;
  costs.select = 1.02;
  costs.sparse = 0.1;
  // Budget 0.1: select at 0, reuse at 1-2, re-select at 3, reuse at 4 (cost 2.34, error 0.06).
  HylraSolution s = hylra_solve(p, 0.1, costs);
  const std::vector<HylraLayerChoice> want = {
      {C::HYLRA_SELECT, -1}, {C::HYLRA_SPARSE, 0}, {C::HYLRA_SPARSE, 0}, {C::HYLRA_SELECT, -1}, {C::HYLRA_SPARSE, 3}};
  CHECK(s.layers == want);
  CHECK(s.cost == Approx(2.34));
  CHECK(s.error == Approx(0.06));
  // Budget 0.02: only one cheap reuse fits; of the two equal-cost choices the one with less error wins.
  s = hylra_solve(p, 0.02, costs);
  const std::vector<HylraLayerChoice> want2 = {
      {C::HYLRA_SELECT, -1}, {C::HYLRA_SPARSE, 0}, {C::HYLRA_FULL, -1}, {C::HYLRA_FULL, -1}, {C::HYLRA_FULL, -1}};
  CHECK(s.layers == want2);
  CHECK(s.cost == Approx(4.12));
  CHECK(s.error == Approx(0.01));
  // Budget 0: nothing may lose mass: all FULL.
  s = hylra_solve(p, 0.0, costs);
  for (const auto& l : s.layers) CHECK(l.choice == C::HYLRA_FULL);
  // Forcing layer 0 FULL moves the selection to layer 1 (reuse at 2 costs 0.05, at 4 via 3).
  s = hylra_solve(p, 0.1, costs, {1, 0, 0, 0, 0});
  CHECK(s.layers[0].choice == C::HYLRA_FULL);
  CHECK(s.error <= 0.1 + 1e-12);
}

TEST_CASE("HyLRA DP equals brute force on random profiles", "[attention][hylra]") {
  std::mt19937 rng(7);
  const double budget = 0.3;
  HylraCosts costs;
  costs.sparse = 0.2;
  for (int trial = 0; trial < 40; ++trial) {
    const int32_t L = 6;
    HylraProfile p = profile_of(L);
    // Errors on the DP's quantisation grid (budget / 4096), so brute force and DP judge feasibility alike.
    std::uniform_int_distribution<int> q(0, 2600);
    for (auto& v : p.loss) v = q(rng) * budget / 4096.0;
    // Brute force: 3^L assignments, SPARSE reusing the nearest SELECT.
    double best = 1e30, best_err = 1e30;
    std::vector<HylraLayerChoice> a(static_cast<size_t>(L));
    int total = 1;
    for (int i = 0; i < L; ++i) total *= 3;
    for (int code = 0; code < total; ++code) {
      int c = code, anchor = -1;
      for (int32_t l = 0; l < L; ++l, c /= 3) {
        a[size_t(l)] = {C(c % 3), c % 3 == 2 ? anchor : -1};
        if (c % 3 == 1) anchor = l;
      }
      double cost = 0, err = 0;
      if (!evaluate(p, a, costs, cost, err) || err > budget + 1e-12) continue;
      if (cost < best - 1e-12 || (cost < best + 1e-12 && err < best_err)) {
        best = cost;
        best_err = err;
      }
    }
    const HylraSolution s = hylra_solve(p, budget, costs);
    double cost = 0, err = 0;
    INFO("trial " << trial);
    REQUIRE(evaluate(p, s.layers, costs, cost, err));
    CHECK(cost == Approx(best));
    CHECK(s.cost == Approx(best));
    CHECK(err <= budget + 1e-12);
    CHECK(err == Approx(s.error));
  }
}

TEST_CASE("hylra preset: decode-only plan, dense first layers; a profile overrides the fallback", "[attention][hylra]") {
  ModelConfig c;
  c.n_layers = 16;
  c.n_heads = 8;
  c.n_kv_heads = 2;
  c.head_dim = 16;
  c.layers.resize(16);
  c.layers[5].sliding_window = 128;  // a local layer stays FULL
  const AttentionPlan plan = attention_plan_resolve("hylra", c);
  for (int32_t l = 0; l < c.n_layers; ++l) {
    INFO("layer " << l);
    CHECK(plan.layers[size_t(l)].prefill[0].policy == AttentionPolicy::ATTENTION_POLICY_FULL);
    if (l < 2 || l == 5) CHECK(plan.layers[size_t(l)].decode[0].policy == AttentionPolicy::ATTENTION_POLICY_FULL);
  }
  CHECK(plan.layers[2].decode[0].policy == AttentionPolicy::ATTENTION_POLICY_SELECT);
  CHECK(plan.layers[2].decode[0].k == 2048);
  int sparse = 0;
  for (const auto& L : plan.layers) sparse += L.decode[0].policy == AttentionPolicy::ATTENTION_POLICY_SPARSE;
  CHECK(sparse >= 8);  // the fallback profile lets most layers reuse

  // A calibrated profile where every layer reuses layer 0 for free: select at 0, reuse everywhere else.
  nlohmann::json rows = nlohmann::json::array();
  for (int32_t l = 0; l < c.n_layers; ++l) {
    nlohmann::json row = nlohmann::json::array();
    for (int32_t j = 0; j <= l; ++j) row.push_back(j == 0 ? 0.0 : 1.0);
    rows.push_back(row);
  }
  const nlohmann::json params = {{"k", 64}, {"profile", {{"n_layers", c.n_layers}, {"loss", rows}}}};
  const AttentionPlan cal = attention_preset_resolve("hylra", params, c);
  CHECK(cal.layers[0].decode[0].policy == AttentionPolicy::ATTENTION_POLICY_SELECT);
  for (int32_t l = 1; l < c.n_layers; ++l) {
    INFO("layer " << l);
    if (l == 5) {
      CHECK(cal.layers[5].decode[0].policy == AttentionPolicy::ATTENTION_POLICY_FULL);
      continue;
    }
    CHECK(cal.layers[size_t(l)].decode[0].policy == AttentionPolicy::ATTENTION_POLICY_SPARSE);
    CHECK(cal.layers[size_t(l)].decode[0].from == 0);
  }
  // A profile for another model shape is a problem, named.
  const nlohmann::json bad = {{"profile", {{"n_layers", 3}, {"loss", {{0.0}, {0.0, 0.0}, {0.0, 0.0, 0.0}}}}}};
  try {
    attention_preset_resolve("hylra", bad, c);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("params.profile has 3 layers but the model has 16"));
  }
}

TEST_CASE("retrieval preset: heads scoring > threshold keep FULL, the rest STREAM in both phases",
          "[attention][retrieval]") {
  ModelConfig c;
  c.n_layers = 2;
  c.n_heads = 8;
  c.n_kv_heads = 4;
  c.head_dim = 16;
  c.layers.resize(2);
  // Without scores: every head FULL.
  CHECK(attention_plan_is_full(attention_plan_resolve("retrieval", c)));
  const nlohmann::json params = {{"scores", {{0.5, 0.1, 0.0, 0.11}, {0.0, 0.0, 0.9, 0.05}}}};
  const AttentionPlan p = attention_preset_resolve("retrieval", params, c);
  const bool want_full[2][4] = {{true, false, false, true}, {false, false, true, false}};
  for (int32_t l = 0; l < 2; ++l) {
    for (int32_t h = 0; h < 4; ++h) {
      for (AttentionPhase ph : {PREFILL, DECODE}) {
        for (const auto& g : p.layers[size_t(l)].phase(ph)) {
          if (h < g.kv_head_begin || h >= g.kv_head_end) continue;
          INFO("layer " << l << " head " << h);
          if (want_full[l][h]) {
            CHECK(g.policy == AttentionPolicy::ATTENTION_POLICY_FULL);
          } else {
            CHECK(g.policy == AttentionPolicy::ATTENTION_POLICY_STREAM);
            CHECK(g.sink == 64);
            CHECK(g.recent == 256);
          }
        }
      }
    }
  }
  try {
    attention_preset_resolve("retrieval", {{"scores", {{0.5, 0.1}}}}, c);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("params.scores must be 2 rows (layers) of 4 numbers in [0, 1]"));
  }
}
