#include "runtime/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>

namespace lcllm {

namespace {

// log_softmax in double: x - max - log(sum exp(x - max)); {max, log-sum-exp}.
std::pair<double, double> log_sum_exp(std::span<const float> logits) {
  double mx = -std::numeric_limits<double>::infinity();
  for (float x : logits) mx = std::max(mx, double(x));
  double sum = 0;
  if (std::isfinite(mx)) {
    for (float x : logits) sum += std::exp(double(x) - mx);
  }
  return {mx, std::isfinite(mx) ? mx + std::log(sum) : mx};
}

double log_softmax_of(double x, double mx, double lse) {
  if (!std::isfinite(mx)) return x == mx ? 0.0 : -std::numeric_limits<double>::infinity();
  return x - lse;
}

}  // namespace

double log_softmax_at(std::span<const float> logits, int32_t id) {
  const auto [mx, lse] = log_sum_exp(logits);
  return log_softmax_of(logits[size_t(id)], mx, lse);
}

StepLogprobs logprobs_compute(std::span<const float> logits, int32_t chosen, int32_t top_n) {
  const auto [mx, lse] = log_sum_exp(logits);
  auto lp = [&](int32_t id) { return float(log_softmax_of(logits[size_t(id)], mx, lse)); };
  StepLogprobs out;
  if (chosen >= 0 && size_t(chosen) < logits.size()) out.chosen = {chosen, lp(chosen)};
  const size_t k = std::min(size_t(std::max(top_n, 0)), logits.size());
  if (k > 0) {
    std::vector<int32_t> ids(logits.size());  // [vocab]
    std::iota(ids.begin(), ids.end(), 0);
    std::partial_sort(ids.begin(), ids.begin() + std::ptrdiff_t(k), ids.end(), [&](int32_t a, int32_t b) {
      return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
    });
    for (size_t i = 0; i < k; ++i) out.top.push_back({ids[i], lp(ids[i])});
  }
  return out;
}

}  // namespace lcllm
