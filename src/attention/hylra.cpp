#include "attention/hylra.h"

#include <cmath>
#include <limits>

#include "lcllm/error.h"

namespace lcllm {

namespace {

constexpr int32_t QUANTA = 4096;  // error budget resolution
constexpr double INF = std::numeric_limits<double>::infinity();

// Error of reusing `from` at layer l, in budget quanta (QUANTA + 1 = never fits).
int32_t quanta(double error, double budget) {
  if (error <= 0) return 0;
  if (budget <= 0) return QUANTA + 1;
  const double q = std::ceil(error / budget * QUANTA - 1e-9);
  return q > QUANTA ? QUANTA + 1 : int32_t(q);
}

}  // namespace

HylraSolution hylra_solve(const HylraProfile& p, double budget, const HylraCosts& costs,
                          const std::vector<uint8_t>& forced_full) {
  const int32_t L = p.n_layers;
  LCLLM_ASSERT(p.loss.size() == size_t(L) * size_t(L), "HyLRA profile size does not match n_layers");
  LCLLM_ASSERT(forced_full.empty() || forced_full.size() == size_t(L), "forced_full must have one entry per layer");
  // State after deciding layers 0..l: (anchor a = the newest SELECT layer + 1, 0 = none; quanta used b).
  // cost[a][b], best total cost; choice[l][a][b] how layer l reached it (for a == l + 1: the previous anchor).
  const int32_t A = L + 1, B = QUANTA + 1;
  auto idx = [&](int32_t a, int32_t b) { return size_t(a) * size_t(B) + size_t(b); };
  std::vector<double> cost(size_t(A) * size_t(B), INF), next;
  std::vector<std::vector<int16_t>> back(static_cast<size_t>(L));  // [L][A * B]: 0 FULL, 1 SPARSE, 2 + prev anchor for SELECT
  cost[idx(0, 0)] = 0;
  for (int32_t l = 0; l < L; ++l) {
    next.assign(cost.size(), INF);
    back[size_t(l)].assign(cost.size(), -1);
    auto relax = [&](int32_t a, int32_t b, double c, int16_t how) {
      double& cur = next[idx(a, b)];
      if (c < cur - 1e-12) {
        cur = c;
        back[size_t(l)][idx(a, b)] = how;
      }
    };
    const bool must_full = !forced_full.empty() && forced_full[size_t(l)];
    for (int32_t a = 0; a <= l; ++a) {
      const int32_t dq = a > 0 && !must_full ? quanta(p.at(l, a - 1), budget) : QUANTA + 1;
      for (int32_t b = 0; b < B; ++b) {
        const double c = cost[idx(a, b)];
        if (c == INF) continue;
        relax(a, b, c + costs.full, 0);  // FULL keeps the anchor: its attention is not recorded
        if (!must_full) relax(l + 1, b, c + costs.select, int16_t(2 + a));
        if (b + dq < B) relax(a, b + dq, c + costs.sparse, 1);
      }
    }
    cost.swap(next);
  }
  // Best final state: lowest cost, then fewest quanta.
  int32_t best_a = -1, best_b = -1;
  double best = INF;
  for (int32_t b = 0; b < B; ++b) {
    for (int32_t a = 0; a < A; ++a) {
      if (cost[idx(a, b)] < best - 1e-12) {
        best = cost[idx(a, b)];
        best_a = a;
        best_b = b;
      }
    }
  }
  LCLLM_ASSERT(best_a >= 0, "HyLRA DP: all-FULL is always feasible");
  HylraSolution s;
  s.layers.resize(size_t(L));
  s.cost = best;
  int32_t a = best_a, b = best_b;
  for (int32_t l = L - 1; l >= 0; --l) {
    const int16_t how = back[size_t(l)][idx(a, b)];
    LCLLM_ASSERT(how >= 0, "HyLRA DP backtrack reached an unset state");
    if (how == 0) {
      s.layers[size_t(l)] = {HylraChoice::HYLRA_FULL, -1};
    } else if (how == 1) {
      s.layers[size_t(l)] = {HylraChoice::HYLRA_SPARSE, a - 1};
      s.error += p.at(l, a - 1);
      b -= quanta(p.at(l, a - 1), budget);
    } else {
      s.layers[size_t(l)] = {HylraChoice::HYLRA_SELECT, -1};
      a = how - 2;
    }
  }
  return s;
}

HylraProfile hylra_default_profile(int32_t n_layers, int32_t dense_layers, double base, double slope) {
  HylraProfile p;
  p.n_layers = n_layers;
  p.loss.assign(size_t(n_layers) * size_t(n_layers), 1.0);
  for (int32_t l = 0; l < n_layers; ++l) {
    if (l < dense_layers) continue;  // loss 1: the first layers never go sparse (TidalDecode §3, HyLRA's dense head)
    for (int32_t j = 0; j <= l; ++j) p.at(l, j) = std::min(1.0, base + slope * double(std::max(0, l - j - 1)));
  }
  return p;
}

nlohmann::ordered_json hylra_profile_to_json(const HylraProfile& p) {
  nlohmann::ordered_json j;
  j["n_layers"] = p.n_layers;
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (int32_t l = 0; l < p.n_layers; ++l) {
    nlohmann::ordered_json row = nlohmann::ordered_json::array();
    for (int32_t k = 0; k <= l; ++k) row.push_back(p.at(l, k));
    rows.push_back(row);
  }
  j["loss"] = rows;  // row l: loss of layer l reusing layer 0..l (the last entry: own top-k, the sensitivity)
  return j;
}

HylraProfile hylra_profile_from_json(const nlohmann::json& j, const std::string& source) {
  auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, source + ": HyLRA profile: " + what);
  };
  if (!j.is_object() || !j.contains("n_layers") || !j.at("n_layers").is_number_integer() || !j.contains("loss") ||
      !j.at("loss").is_array()) {
    fail("expected {\"n_layers\": L, \"loss\": [[...], ...]}");
  }
  HylraProfile p;
  p.n_layers = j.at("n_layers").get<int32_t>();
  if (p.n_layers < 1 || j.at("loss").size() != size_t(p.n_layers)) fail("loss must have n_layers rows");
  p.loss.assign(size_t(p.n_layers) * size_t(p.n_layers), 1.0);
  for (int32_t l = 0; l < p.n_layers; ++l) {
    const auto& row = j.at("loss")[size_t(l)];
    if (!row.is_array() || row.size() != size_t(l + 1)) {
      fail("loss[" + std::to_string(l) + "] must have " + std::to_string(l + 1) + " entries (layers 0.." +
           std::to_string(l) + ")");
    }
    for (int32_t k = 0; k <= l; ++k) {
      const auto& v = row[size_t(k)];
      if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1) {
        fail("loss[" + std::to_string(l) + "][" + std::to_string(k) + "] = " + v.dump() + " must be in [0, 1]");
      }
      p.at(l, k) = v.get<double>();
    }
  }
  return p;
}

}  // namespace lcllm
