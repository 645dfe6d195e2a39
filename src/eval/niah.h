// `lcllm eval niah`: needle-in-a-haystack over lengths x depths x samples for each policy.
//
// Output layout (OUT = --out):
//   OUT/<policy>/len_<L>_depth_<D>_sample_<S>.json   one cell, the fields of gkamradt's LLMTest_NeedleInAHaystack
//                                                    results (model, context_length, depth_percent, version, needle,
//                                                    model_response, score, test_duration_seconds,
//                                                    test_timestamp_utc) plus policy, sample, expected_answer,
//                                                    actual_depth_percent, prompt_tokens, exact_match,
//                                                    value_logprob, value_tokens and "params" (what resume compares)
//   OUT/summary.csv                                  policy, context_length, depth_percent, samples, mean score
//   OUT/heatmap_<policy>.png                         depth (rows) x length (columns), mean score
//   OUT/comparison.md                                policies x lengths, mean score over depths and samples, and the
//                                                    teacher-forced answer likelihood (eval/answer_likelihood.h)
// Resumable: a cell whose JSON exists with equal params is read, not rerun.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/answer_likelihood.h"
#include "eval/eval_session.h"

namespace lcllm {

struct NiahOptions {
  std::vector<int32_t> lengths;  // prompt tokens, exact
  std::vector<int32_t> depths;   // percent
  int32_t samples = 1;
  uint64_t seed = 0;
  int32_t max_new_tokens = 32;
  std::string out_dir;
  bool write_heatmaps = true;
  EvalEngineSettings engine;
};

struct NiahCell {
  std::string policy;  // label
  int32_t length = 0, depth = 0, sample = 0;
  double score = 0;           // 1 when the needle's value is in the answer (RULER's string match), else 0
  double exact = 0;           // 1 when the answer up to its first '.' is exactly the value (the needle contract)
  double value_logprob = std::numeric_limits<double>::quiet_NaN();  // teacher-forced ln p(" " + value | prompt)
  int32_t value_tokens = 0;   // the value's ids scored
  std::string expected, response;
  double seconds = 0;
  bool resumed = false;  // read from an earlier run
};

// The resume key of one cell: every input that changes its result.
nlohmann::ordered_json niah_cell_params(const std::string& model, const EvalPolicy& policy, int32_t length,
                                        int32_t depth, int32_t sample, uint64_t seed, int32_t max_new_tokens,
                                        const std::string& text_fingerprint);
std::string niah_cell_path(const std::string& out_dir, const std::string& policy_label, int32_t length, int32_t depth,
                           int32_t sample);
// The cell stored at `path` when it exists, parses and its "params" equal `params`; else nullopt (run it).
std::optional<NiahCell> niah_load_cell(const std::string& path, const nlohmann::json& params);

// Writers for the aggregate files (policies and lengths in the given order).
std::string niah_summary_csv(const std::vector<NiahCell>& cells);
std::string niah_comparison_markdown(const std::vector<NiahCell>& cells, const std::vector<std::string>& policies,
                                     const std::vector<int32_t>& lengths);
// The cells' teacher-forced answer scores, a prompt named by its depth and sample (eval/answer_likelihood.h).
std::vector<AnswerLikelihood> niah_likelihood_records(const std::vector<NiahCell>& cells);
// Mean score per (depth, length) for one policy: [depths.size()][lengths.size()] row-major, NaN where no cell.
std::vector<float> niah_grid(const std::vector<NiahCell>& cells, const std::string& policy,
                             const std::vector<int32_t>& depths, const std::vector<int32_t>& lengths);

// Runs every policy; progress(label, done, total) after each cell. Returns all cells (resumed ones included).
std::vector<NiahCell> niah_run(const EvalSession& session, const NiahOptions& options,
                               const std::function<void(const std::string&, size_t, size_t)>& progress = {});

}  // namespace lcllm
