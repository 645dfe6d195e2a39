// Task generators: NIAH (one needle at a chosen depth) and the RULER synthetic tasks (arXiv 2404.06654 §3, Table 2):
// niah_single, niah_multikey, niah_multivalue, niah_multiquery, vt (variable tracking), cwe (common words).
// Every generator is deterministic in its seed; answers follow the eval-format contract (docs/EVALUATION.md).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "eval/eval_rng.h"
#include "eval/eval_text.h"
#include "eval/haystack.h"

namespace lcllm {

struct TaskSample {
  std::string task;
  std::vector<int32_t> prompt;          // [prompt tokens]
  std::string answer;                   // the exact expected continuation (before the final ".")
  std::vector<std::string> references;  // what string_match_all / string_match_part look for
  std::vector<std::string> needles;     // the inserted sentences, in order of appearance
  std::vector<double> depths;           // [needles]: actual depth of each (filler fraction before it)
  std::string query;                    // the query text
};

// RULER's task sizes (its synthetic.yaml defaults): 4 keys / values / queries, 4 variable-tracking hops, 10 common
// words.
struct TaskSizes {
  int32_t multikey_keys = 4;
  int32_t multivalue_values = 4;
  int32_t multiquery_queries = 4;
  int32_t vt_hops = 4;
  int32_t cwe_common = 10;
};

std::vector<std::string> ruler_task_names();  // niah_single, niah_multikey, ..., cwe

// A random integer with exactly `digits` digits, as a string.
std::string eval_random_value(EvalRng& rng, int32_t digits);

// One needle at `depth` (0..1) in a prompt of exactly `length` tokens (eval niah).
TaskSample make_niah_sample(const HaystackBuilder& builder, const EvalText& text, int32_t length, double depth,
                            uint64_t seed);
// RULER task `task` at `length` tokens (cwe: at most `length`; the rest exactly). Throws ERROR_KIND_INVALID_ARGUMENT
// for an unknown task or a length too short for it.
TaskSample make_ruler_sample(const std::string& task, const HaystackBuilder& builder, const EvalText& text,
                             int32_t length, uint64_t seed, const TaskSizes& sizes = {});

}  // namespace lcllm
