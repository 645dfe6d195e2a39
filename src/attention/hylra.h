// HyLRA (arXiv 2602.00777): per-layer choice between FULL attention, SELECT (full attention + own top-k, the
// source later layers reuse) and SPARSE reuse of an earlier layer's top-k indices, picked by a dynamic program
// over an offline profile so that attention cost is minimal under an accuracy budget (docs/POLICIES.md §2).
//
// The profile (measured by `lcllm calibrate`, src/calibrate) holds, per layer l:
//   loss[l][l]  sensitivity: attention mass layer l loses when it attends only to its OWN top-k
//   loss[l][j]  (j < l) similarity: attention mass layer l loses when it attends only to layer j's top-k
// both averaged over probe decode steps and KV heads, in [0, 1]. The DP treats a layer's mass loss as its error
// and the errors of layers as additive (the paper's budgeted per-layer selection).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/model_config.h"

namespace lcllm {

struct HylraProfile {
  int32_t n_layers = 0;
  std::vector<double> loss;  // [n_layers * n_layers] row l, column j <= l (see above); j > l unused
  double at(int32_t l, int32_t j) const { return loss[size_t(l) * size_t(n_layers) + size_t(j)]; }
  double& at(int32_t l, int32_t j) { return loss[size_t(l) * size_t(n_layers) + size_t(j)]; }
};

enum class HylraChoice { HYLRA_FULL, HYLRA_SELECT, HYLRA_SPARSE };

struct HylraLayerChoice {
  HylraChoice choice = HylraChoice::HYLRA_FULL;
  int32_t from = -1;  // HYLRA_SPARSE: the SELECT layer whose indices are reused
  bool operator==(const HylraLayerChoice&) const = default;
};

struct HylraCosts {
  double full = 1.0;       // one dense layer
  double select = 1.02;    // dense + top-k: a SELECT that nobody reuses never beats FULL
  double sparse = 0.125;   // attention over k of the context's keys (k / reference context)
};

struct HylraSolution {
  std::vector<HylraLayerChoice> layers;  // [n_layers]
  double cost = 0;                       // sum of the layers' costs
  double error = 0;                      // sum of the SPARSE layers' mass loss
};

// Minimum total cost subject to total error <= budget. `forced_full[l]` (optional, [n_layers]) keeps layer l
// FULL (sliding-window layers, the paper's always-dense first layers). SPARSE layer l reuses the nearest SELECT
// layer before it (reuse across a later SELECT is not considered: the newest selection is the one kept live, as in
// TidalDecode's re-selection). Errors are quantised to budget / 4096 steps (rounded up, so the budget holds
// exactly); ties: lower cost, then lower error, then the earlier-listed choice FULL < SELECT < SPARSE.
HylraSolution hylra_solve(const HylraProfile& profile, double budget, const HylraCosts& costs,
                          const std::vector<uint8_t>& forced_full = {});

// The profile the `hylra` preset uses when no calibrated one is given (documented fallback, docs/POLICIES.md):
// layers 0..dense_layers-1 cannot go sparse (loss 1), own top-k loses `base` mass, reusing layer j at layer l
// loses base + slope * (l - j - 1): similarity decays with distance.
HylraProfile hylra_default_profile(int32_t n_layers, int32_t dense_layers = 2, double base = 0.02,
                                   double slope = 0.01);

// JSON form ({"n_layers": L, "loss": [[...], ...]}), as written in the calibration report; throws
// ERROR_KIND_INVALID_ARGUMENT naming the problem.
nlohmann::ordered_json hylra_profile_to_json(const HylraProfile& profile);
HylraProfile hylra_profile_from_json(const nlohmann::json& j, const std::string& source);

}  // namespace lcllm
