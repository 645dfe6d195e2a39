#include "calibrate/attention_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lcllm/error.h"

namespace lcllm {

namespace {

// Positions of the k largest values of row[0, n) (ties to the lower position), ascending.
std::vector<int32_t> top_k(const float* row, int32_t n, int32_t k) {
  std::vector<int32_t> order(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) order[size_t(i)] = i;
  const size_t keep = size_t(std::clamp(k, 0, n));
  std::nth_element(order.begin(), order.begin() + std::ptrdiff_t(keep), order.end(),
                   [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
  order.resize(keep);
  std::sort(order.begin(), order.end());
  return order;
}

}  // namespace

CalibrationStats::CalibrationStats(int32_t n_layers, int32_t n_kv_heads)
    : L_(n_layers),
      H_(n_kv_heads),
      probe_hits_(),
      score_sum_(),
      loss_sum_(size_t(n_layers) * size_t(n_layers), 0.0),
      overlap_sum_(size_t(n_layers) * size_t(n_layers), 0.0),
      recall_sum_(size_t(n_layers), 0.0) {}

void CalibrationStats::begin_probe() { std::fill(probe_hits_.begin(), probe_hits_.end(), 0.0); }  // sized at the first step

void CalibrationStats::add_step(const StepAttention& a, const std::vector<int32_t>& tokens, int32_t target,
                                int32_t copy_begin, int32_t copy_end, int32_t k) {
  LCLLM_ASSERT(a.n_layers == L_ && a.n_kv_heads == H_ && a.n_keys == int32_t(tokens.size()), "step shape mismatch");
  const int32_t G = a.head_argmax.empty() ? 1 : a.group;
  LCLLM_ASSERT(a.head_argmax.empty() || a.head_argmax.size() == size_t(L_) * size_t(H_) * size_t(G), "arg-max shape");
  if (group_ == 0) {
    group_ = G;
    probe_hits_.assign(size_t(L_) * size_t(H_) * size_t(G), 0.0);
    score_sum_.assign(probe_hits_.size(), 0.0);
  }
  LCLLM_ASSERT(G == group_, "the group size changed between steps");
  const int32_t n = a.n_keys;
  std::vector<std::vector<int32_t>> sets(size_t(L_) * size_t(H_));  // [L * H] top-k per layer and head
  for (int32_t l = 0; l < L_; ++l) {
    for (int32_t h = 0; h < H_; ++h) {
      const float* row = a.row(l, h);
      sets[size_t(l) * size_t(H_) + size_t(h)] = top_k(row, n, k);
      // Copy-paste rule, per query head: arg-max in the needle, on the token being produced.
      for (int32_t g = 0; g < G; ++g) {
        const size_t i = (size_t(l) * size_t(H_) + size_t(h)) * size_t(G) + size_t(g);
        const int32_t arg = a.head_argmax.empty() ? int32_t(std::max_element(row, row + n) - row) : a.head_argmax[i];
        if (arg >= copy_begin && arg < copy_end && tokens[size_t(arg)] == target) probe_hits_[i] += 1;
      }
    }
  }
  if (copy_end > copy_begin) {  // a step that copies from the needle: how much of it each layer's top-k holds
    for (int32_t l = 0; l < L_; ++l) {
      double recall = 0;
      for (int32_t h = 0; h < H_; ++h) {
        const auto& t = sets[size_t(l) * size_t(H_) + size_t(h)];
        const auto lo = std::lower_bound(t.begin(), t.end(), copy_begin);
        const auto hi = std::lower_bound(t.begin(), t.end(), copy_end);
        recall += double(hi - lo) / double(copy_end - copy_begin);
      }
      recall_sum_[size_t(l)] += recall / H_;
    }
    ++copy_steps_;
  }
  for (int32_t l = 0; l < L_; ++l) {
    for (int32_t j = 0; j <= l; ++j) {
      double loss = 0, overlap = 0;
      for (int32_t h = 0; h < H_; ++h) {
        const float* row = a.row(l, h);
        const auto& tj = sets[size_t(j) * size_t(H_) + size_t(h)];
        const auto& tl = sets[size_t(l) * size_t(H_) + size_t(h)];
        double kept = 0;
        for (int32_t p : tj) kept += row[p];
        loss += std::clamp(1.0 - kept, 0.0, 1.0);
        std::vector<int32_t> common;
        std::set_intersection(tl.begin(), tl.end(), tj.begin(), tj.end(), std::back_inserter(common));
        overlap += tl.empty() ? 1.0 : double(common.size()) / double(tl.size());
      }
      loss_sum_[size_t(l) * size_t(L_) + size_t(j)] += loss / H_;
      overlap_sum_[size_t(l) * size_t(L_) + size_t(j)] += overlap / H_;
    }
  }
  ++steps_;
}

void CalibrationStats::end_probe(int32_t needle_tokens) {
  for (size_t i = 0; i < score_sum_.size(); ++i) score_sum_[i] += probe_hits_[i] / std::max(needle_tokens, 1);
  ++probes_;
}

std::vector<double> CalibrationStats::retrieval_scores() const {
  std::vector<double> s(size_t(L_) * size_t(H_), 0.0);
  if (!probes_ || group_ == 0) return s;
  for (size_t kv = 0; kv < s.size(); ++kv) {  // a KV head scores as its best query head
    for (int32_t g = 0; g < group_; ++g) s[kv] = std::max(s[kv], score_sum_[kv * size_t(group_) + size_t(g)] / probes_);
  }
  return s;
}

std::vector<double> CalibrationStats::loss() const {
  std::vector<double> out(loss_sum_.size(), std::numeric_limits<double>::quiet_NaN());
  for (int32_t l = 0; l < L_; ++l) {
    for (int32_t j = 0; j <= l; ++j) {
      const size_t i = size_t(l) * size_t(L_) + size_t(j);
      out[i] = steps_ ? loss_sum_[i] / double(steps_) : 1.0;
    }
  }
  return out;
}

std::vector<double> CalibrationStats::overlap() const {
  std::vector<double> out(overlap_sum_.size(), std::numeric_limits<double>::quiet_NaN());
  for (int32_t l = 0; l < L_; ++l) {
    for (int32_t j = 0; j <= l; ++j) {
      const size_t i = size_t(l) * size_t(L_) + size_t(j);
      out[i] = steps_ ? overlap_sum_[i] / double(steps_) : 0.0;
    }
  }
  return out;
}

std::vector<double> CalibrationStats::needle_recall() const {
  std::vector<double> out(size_t(L_), 0.0);
  for (size_t l = 0; l < out.size(); ++l) out[l] = copy_steps_ ? recall_sum_[l] / double(copy_steps_) : 0.0;
  return out;
}

int32_t tidal_best_reselect_layer(const std::vector<double>& loss, const ModelConfig& c, int32_t select_layer) {
  const int32_t L = c.n_layers;
  auto global = [&](int32_t l) { return c.layers[size_t(l)].sliding_window == 0; };
  int32_t s = -1;
  for (int32_t l = std::max(select_layer, 0); l < L && s < 0; ++l) s = global(l) ? l : -1;
  if (s < 0) return -1;
  auto kept = [&](int32_t l, int32_t from) { return 1.0 - loss[size_t(l) * size_t(L) + size_t(from)]; };
  double best = 0;  // no re-selection
  for (int32_t l = s + 1; l < L; ++l) best += global(l) ? kept(l, s) : 0.0;
  int32_t best_r = -1;
  for (int32_t r = s + 1; r < L; ++r) {
    if (!global(r)) continue;
    double total = 1.0;  // the re-selection layer itself attends fully
    for (int32_t l = s + 1; l < r; ++l) total += global(l) ? kept(l, s) : 0.0;
    for (int32_t l = r + 1; l < L; ++l) total += global(l) ? kept(l, r) : 0.0;
    if (total > best + 1e-12) {
      best = total;
      best_r = r;
    }
  }
  return best_r;
}

}  // namespace lcllm
