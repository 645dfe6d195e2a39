// LongBench v1 data: JSONL records (one object per line: input, context, answers, length, dataset, all_classes,
// _id), prompt formatting, LongBench's middle truncation, prediction lines and scoring (eval.py's scorer).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/longbench_config.h"
#include "tokenizer/tokenizer.h"

namespace lcllm {

struct LongBenchRecord {
  std::string input, context, dataset, id;
  std::vector<std::string> answers;
  int64_t length = 0;
  nlohmann::json all_classes;  // null or an array of strings, written back to the predictions unchanged
  std::vector<std::string> classes() const;  // all_classes as strings (empty when null)
};

// Reads a LongBench JSONL file; throws ERROR_KIND_INVALID_FILE naming the file, line and field.
std::vector<LongBenchRecord> longbench_read_jsonl(const std::string& path);

// The dataset's template with {context} and {input} substituted in one pass (as Python's str.format does).
std::string longbench_format_prompt(const LongBenchDataset& dataset, const LongBenchRecord& record);

// pred.py's truncation: when `prompt` encodes (with special tokens) to more than max_length ids, keep the text of
// the first max_length/2 and the last max_length/2 ids (decoded without special tokens); else `prompt` unchanged.
std::string longbench_truncate_middle(const Tokenizer& tok, const std::string& prompt, int32_t max_length);

// One pred/<model>/<dataset>.jsonl line: {"pred", "answers", "all_classes", "length"} (+ "_id" for resuming).
nlohmann::ordered_json longbench_pred_line(const LongBenchRecord& record, const std::string& pred);

// eval.py's per-sample score: the best metric value over the ground truths; first-line datasets score only the
// prediction's first line (after leading newlines). Throws ERROR_KIND_UNSUPPORTED for the jieba metrics.
double longbench_score_sample(const LongBenchDataset& dataset, const std::string& prediction,
                              const std::vector<std::string>& answers, const std::vector<std::string>& all_classes);
// eval.py's scorer: round(100 x mean, 2).
double longbench_score_dataset(const std::vector<double>& per_sample);

}  // namespace lcllm
