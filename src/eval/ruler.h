// `lcllm eval ruler`: RULER's synthetic tasks (arXiv 2404.06654) over tasks x lengths x samples for each policy.
//
// Output layout (OUT = --out):
//   OUT/<policy>/<task>/len_<L>.jsonl   one line per sample: index, prompt_tokens, answer, references, pred,
//                                       string_match_all, string_match_part, exact_match, needles, depths,
//                                       seconds, params (what resume compares)
//   OUT/summary.csv                     policy, task, context_length, samples, string_match_all,
//                                       string_match_part, exact_match (RULER's aggregate: mean x 100)
//   OUT/comparison.md                   policies x tasks, string_match_all averaged over lengths
// Resumable: lines whose params match are kept; the rest is generated again.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/answer_likelihood.h"
#include "eval/eval_session.h"
#include "eval/tasks.h"

namespace lcllm {

struct RulerOptions {
  std::vector<std::string> tasks;  // ruler_task_names() subset
  std::vector<int32_t> lengths;
  int32_t samples = 10;
  uint64_t seed = 0;
  int32_t max_new_tokens = 0;      // 0: the per-task default (ruler_default_max_new_tokens)
  std::string out_dir;
  TaskSizes sizes;
  EvalEngineSettings engine;
};

struct RulerResult {
  std::string policy, task;
  int32_t length = 0, index = 0;
  double match_all = 0, match_part = 0, exact = 0;
  bool resumed = false;
  double answer_logprob = std::numeric_limits<double>::quiet_NaN();  // teacher-forced ln p(" " + answer | prompt)
  int32_t answer_tokens = 0;
};

// RULER's generation budgets, scaled to our short answers: niah 32 (multi-value / multi-query 64), vt 48, cwe 120.
int32_t ruler_default_max_new_tokens(const std::string& task);
nlohmann::ordered_json ruler_sample_params(const std::string& model, const EvalPolicy& policy, const std::string& task,
                                           int32_t length, int32_t index, uint64_t seed, int32_t max_new_tokens,
                                           const std::string& text_fingerprint);
std::string ruler_file_path(const std::string& out_dir, const std::string& policy_label, const std::string& task,
                            int32_t length);
std::string ruler_summary_csv(const std::vector<RulerResult>& results);
// string_match_all per policy x task, then the teacher-forced answer likelihood per policy x length
// (eval/answer_likelihood.h).
std::string ruler_comparison_markdown(const std::vector<RulerResult>& results, const std::vector<std::string>& policies,
                                      const std::vector<std::string>& tasks, const std::vector<int32_t>& lengths);
// The results' teacher-forced answer scores, a prompt named by its task and index.
std::vector<AnswerLikelihood> ruler_likelihood_records(const std::vector<RulerResult>& results);

std::vector<RulerResult> ruler_run(const EvalSession& session, const RulerOptions& options,
                                   const std::function<void(const std::string&, size_t, size_t)>& progress = {});

}  // namespace lcllm
