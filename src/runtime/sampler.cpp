#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "lcllm/error.h"

namespace lcllm {

namespace {

std::string format_value(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

[[noreturn]] void throw_invalid(const std::string& message) {
  throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "sampling: " + message);
}

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

constexpr double kPosInf = std::numeric_limits<double>::infinity();

}  // namespace

std::vector<std::string> validate_sampling_params(const SamplingParams& p) {
  std::vector<std::string> problems;
  // Comparisons are written so that NaN fails them.
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature)) {
    problems.push_back("temperature must be a finite number >= 0 (0 = greedy), got " + format_value(p.temperature));
  }
  if (p.top_k < 0) problems.push_back("top_k must be >= 0 (0 = off), got " + std::to_string(p.top_k));
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    problems.push_back("top_p must be in (0, 1] (1 = off), got " + format_value(p.top_p));
  }
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) {
    problems.push_back("min_p must be in [0, 1] (0 = off), got " + format_value(p.min_p));
  }
  if (!(p.repetition_penalty > 0.0f) || !std::isfinite(p.repetition_penalty)) {
    problems.push_back("repetition_penalty must be a finite number > 0 (1 = off), got " +
                       format_value(p.repetition_penalty));
  }
  // [-2, 2] as in the OpenAI API and vLLM.
  if (!(p.frequency_penalty >= -2.0f && p.frequency_penalty <= 2.0f)) {
    problems.push_back("frequency_penalty must be in [-2, 2] (0 = off), got " + format_value(p.frequency_penalty));
  }
  if (!(p.presence_penalty >= -2.0f && p.presence_penalty <= 2.0f)) {
    problems.push_back("presence_penalty must be in [-2, 2] (0 = off), got " + format_value(p.presence_penalty));
  }
  return problems;
}

SamplerRng::SamplerRng(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& s : state_) s = splitmix64(x);  // never all zero: splitmix64 is a bijection of distinct inputs
}

uint64_t SamplerRng::next_u64() {
  const uint64_t result = rotl(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return result;
}

double SamplerRng::next_double() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
  const std::vector<std::string> problems = validate_sampling_params(params);
  if (!problems.empty()) {
    std::string message = "invalid sampling parameters:";
    for (const std::string& p : problems) message += "\n  " + p;
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, message);
  }
}

void Sampler::apply_penalties(std::span<const int32_t> prompt_ids, std::span<const int32_t> output_ids) {
  const bool repetition = params_.repetition_penalty != 1.0f;
  const bool frequency_presence = params_.frequency_penalty != 0.0f || params_.presence_penalty != 0.0f;
  if (!repetition && !frequency_presence) return;

  const auto vocab = static_cast<int32_t>(logits_.size());
  // Ids are checked before anything is marked, so a throw leaves seen_/counts_ clean for the next call.
  for (std::span<const int32_t> ids : {prompt_ids, output_ids}) {
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab) {
        throw_invalid("token id " + std::to_string(id) + " in the history is outside the vocabulary [0, " +
                      std::to_string(vocab) + ")");
      }
    }
  }
  if (seen_.size() != logits_.size()) seen_.assign(logits_.size(), 0);
  if (counts_.size() != logits_.size()) counts_.assign(logits_.size(), 0);

  if (repetition) {
    // Once per distinct id, however often it occurs (HF / vLLM).
    const double penalty = params_.repetition_penalty;
    touched_.clear();
    for (std::span<const int32_t> ids : {prompt_ids, output_ids}) {
      for (int32_t id : ids) {
        if (seen_[id]) continue;
        seen_[id] = 1;
        touched_.push_back(id);
        double& l = logits_[id];
        l = l > 0.0 ? l / penalty : l * penalty;
      }
    }
    for (int32_t id : touched_) seen_[id] = 0;
  }
  if (frequency_presence) {
    touched_.clear();
    for (int32_t id : output_ids) {
      if (counts_[id]++ == 0) touched_.push_back(id);
    }
    for (int32_t id : touched_) {
      logits_[id] -= params_.frequency_penalty * static_cast<double>(counts_[id]) + params_.presence_penalty;
      counts_[id] = 0;
    }
  }
}

void Sampler::prepare(std::span<const float> logits, std::span<const int32_t> prompt_ids,
                      std::span<const int32_t> output_ids) {
  if (logits.empty()) throw_invalid("empty logits");
  if (logits.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    throw_invalid("vocabulary of " + std::to_string(logits.size()) + " entries exceeds int32 token ids");
  }
  const auto vocab = static_cast<int32_t>(logits.size());
  logits_.resize(logits.size());
  for (int32_t i = 0; i < vocab; ++i) {
    if (std::isnan(logits[i])) throw_invalid("logit of token " + std::to_string(i) + " is NaN");
    logits_[i] = logits[i];
  }
  apply_penalties(prompt_ids, output_ids);
  candidates_.clear();
  weights_.clear();

  if (params_.temperature == 0.0f) {
    int32_t best = -1;
    for (int32_t i = 0; i < vocab; ++i) {
      if (logits_[i] > -kPosInf && (best < 0 || logits_[i] > logits_[best])) best = i;  // strict: lowest id wins ties
    }
    if (best < 0) throw_invalid("every logit is -inf: no token can be sampled");
    candidates_.push_back(best);
    weights_.push_back(1.0);
    return;
  }

  // +inf tokens take all the mass, shared equally: give them logit 0 and drop everything else.
  const bool any_pos_inf = std::any_of(logits_.begin(), logits_.end(), [](double l) { return l == kPosInf; });
  for (int32_t i = 0; i < vocab; ++i) {
    if (any_pos_inf ? logits_[i] == kPosInf : logits_[i] > -kPosInf) candidates_.push_back(i);
  }
  if (candidates_.empty()) throw_invalid("every logit is -inf: no token can be sampled");
  const double inv_temperature = 1.0 / static_cast<double>(params_.temperature);
  for (int32_t id : candidates_) logits_[id] = any_pos_inf ? 0.0 : logits_[id] * inv_temperature;

  // Total order (logit descending, then id ascending) so every truncation set is unique and platform-independent.
  const auto before = [this](int32_t a, int32_t b) {
    return logits_[a] != logits_[b] ? logits_[a] > logits_[b] : a < b;
  };
  if (params_.top_k > 0 && params_.top_k < static_cast<int64_t>(candidates_.size())) {
    std::nth_element(candidates_.begin(), candidates_.begin() + (params_.top_k - 1), candidates_.end(), before);
    candidates_.resize(static_cast<size_t>(params_.top_k));
  }
  const bool top_p = params_.top_p < 1.0f;
  if (top_p) std::sort(candidates_.begin(), candidates_.end(), before);  // top-p needs the descending order
  double max_logit = -kPosInf;
  for (int32_t id : candidates_) max_logit = std::max(max_logit, logits_[id]);
  weights_.resize(candidates_.size());
  for (size_t i = 0; i < candidates_.size(); ++i) weights_[i] = std::exp(logits_[candidates_[i]] - max_logit);

  if (top_p) {
    double total = 0.0;
    for (double w : weights_) total += w;
    const double target = static_cast<double>(params_.top_p) * total;
    double cumulative = 0.0;
    size_t keep = candidates_.size();  // rounding may leave the sum just short of target: then keep all
    for (size_t i = 0; i < candidates_.size(); ++i) {
      cumulative += weights_[i];
      if (cumulative >= target) {
        keep = i + 1;
        break;
      }
    }
    candidates_.resize(keep);
    weights_.resize(keep);
  }

  if (params_.min_p > 0.0f) {
    // The top token has weight exp(0) = 1 = p_max in these units, so the rule is weight >= min_p.
    const auto min_p = static_cast<double>(params_.min_p);
    size_t kept = 0;
    for (size_t i = 0; i < candidates_.size(); ++i) {
      if (weights_[i] >= min_p) {
        candidates_[kept] = candidates_[i];
        weights_[kept] = weights_[i];
        ++kept;
      }
    }
    candidates_.resize(kept);
    weights_.resize(kept);
  }
  LCLLM_ASSERT(!candidates_.empty(), "sampling filters removed the top token");
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> prompt_ids,
                        std::span<const int32_t> output_ids) {
  prepare(logits, prompt_ids, output_ids);
  if (params_.temperature == 0.0f) return candidates_[0];
  double total = 0.0;
  for (double w : weights_) total += w;
  // One uniform per call, whatever the candidates, so the stream position depends only on the step count.
  const double target = rng_.next_double() * total;
  double cumulative = 0.0;
  size_t last_positive = 0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    if (weights_[i] <= 0.0) continue;  // underflowed to 0: never drawn
    cumulative += weights_[i];
    last_positive = i;
    if (target < cumulative) return candidates_[i];
  }
  // u * total can round up to total itself (u < 1 but the product is rounded): that draw is the last bucket's.
  return candidates_[last_positive];
}

std::vector<TokenProb> Sampler::distribution(std::span<const float> logits, std::span<const int32_t> prompt_ids,
                                             std::span<const int32_t> output_ids) {
  prepare(logits, prompt_ids, output_ids);
  double total = 0.0;
  for (double w : weights_) total += w;
  std::vector<TokenProb> result;  // [n_cand]
  result.reserve(candidates_.size());
  for (size_t i = 0; i < candidates_.size(); ++i) result.push_back(TokenProb{candidates_[i], weights_[i] / total});
  std::sort(result.begin(), result.end(), [](const TokenProb& a, const TokenProb& b) {
    return a.prob != b.prob ? a.prob > b.prob : a.id < b.id;
  });
  return result;
}

}  // namespace lcllm
