// What calibration measures from recorded decode-step attention (ARCHITECTURE.md §4.5), as plain math over
// attention distributions so it can be tested on hand-made attention:
//
//  - retrieval score per (layer, KV head), the Retrieval Head copy-paste rule (arXiv 2404.15574 §2): at a decode
//    step whose target token w is copied from the needle, the head "copies" when its arg-max attention position
//    lies in the needle and holds w; score = copied steps / needle tokens, averaged over probes. The rule is applied
//    to every query head (the paper's unit); a KV head's score — the unit a plan assigns — is the highest score
//    among its query heads, since streaming a KV head streams all of them. (Applying the rule to the group's mean
//    attention instead missed Gemma 3 270M's retrieval in layers 11 and 17, where the sink dominates the mean.)
//  - HyLRA profile (arXiv 2602.00777): loss[l][j] = 1 − the attention mass of layer l on layer j's top-k set
//    (j < l: reuse; j = l: own top-k, the sensitivity), mean over steps and KV heads.
//  - inter-layer top-k overlap[l][j] = |T_l ∩ T_j| / k, mean over steps and KV heads.
//  - needle recall[l] = the share of the needle's positions inside layer l's top-k, mean over KV heads and the
//    steps that copy from the needle: whether a selection made at l would let later layers retrieve.
#pragma once
#include <cstdint>
#include <vector>

#include "io/model_config.h"

namespace lcllm {

// One decode step's attention: mass[(l * n_kv_heads + h) * n_keys + j], each (l, h) row summing to 1.
struct StepAttention {
  int32_t n_layers = 0, n_kv_heads = 0, n_keys = 0;
  std::vector<float> mass;  // [n_layers, n_kv_heads, n_keys] the group's mean probabilities
  // [n_layers, n_kv_heads, group] each query head's arg-max position (ties to the lower); empty: the arg-max of
  // the group's mean row stands for the one query head.
  int32_t group = 1;
  std::vector<int32_t> head_argmax;
  const float* row(int32_t l, int32_t h) const {
    return mass.data() + (size_t(l) * size_t(n_kv_heads) + size_t(h)) * size_t(n_keys);
  }
};

class CalibrationStats {
 public:
  CalibrationStats(int32_t n_layers, int32_t n_kv_heads);
  // A probe begins: its needle value's tokens are context[value_begin, value_begin + value_len).
  void begin_probe();
  // One decode step of the probe: `tokens` are the sequence's tokens so far (context + answer prefix, [n_keys]),
  // `target` the token this step must produce, copy_span [begin, end) the needle positions it may copy from.
  void add_step(const StepAttention& a, const std::vector<int32_t>& tokens, int32_t target, int32_t copy_begin,
                int32_t copy_end, int32_t k);
  void end_probe(int32_t needle_tokens);

  std::vector<double> retrieval_scores() const;  // [n_layers * n_kv_heads]
  std::vector<double> loss() const;              // [n_layers * n_layers], j <= l filled, else NaN
  std::vector<double> overlap() const;           // [n_layers * n_layers], j <= l filled, else NaN
  std::vector<double> needle_recall() const;     // [n_layers]; 0 when no step copied
  int64_t steps() const { return steps_; }

 private:
  int32_t L_, H_;
  std::vector<double> probe_hits_;            // [L * H * group] copies in the current probe, per query head
  std::vector<double> score_sum_;             // [L * H * group] sum of per-probe scores
  int32_t group_ = 0;                         // query heads per KV head (from the first step)
  int32_t probes_ = 0;
  std::vector<double> loss_sum_, overlap_sum_;  // [L * L]
  std::vector<double> recall_sum_;             // [L] needle recall summed over copying steps
  int64_t copy_steps_ = 0;
  int64_t steps_ = 0;                          // decode steps seen (each adds L_ * H_ samples per (l, j))
};

// TidalDecode's re-selection layer (arXiv 2410.05076 §3.2) from a measured loss matrix: with selection at
// `select_layer`, the layer r that maximises the attention mass the sparse layers keep when layers after r reuse
// r's selection instead of select_layer's (global layers only: sliding-window layers stay FULL). -1 when no
// re-selection keeps more than none.
// (Choosing r by needle recall instead was measured and did not help: on SmolLM2-135M the selection layer's own
// top-k holds 18% of the needle, and every layer between it and r reads that; see docs/EVALUATION.md.)
int32_t tidal_best_reselect_layer(const std::vector<double>& loss, const ModelConfig& config, int32_t select_layer);

}  // namespace lcllm
