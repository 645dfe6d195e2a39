// `lcllm eval longbench MODEL --data DIR`: LongBench v1 (THUDM/LongBench pred.py + eval.py) on lcllm.
//
// For every DIR/<dataset>.jsonl (LongBench's own files): the dataset's prompt template, pred.py's middle truncation to
// --max-length tokens, the chat template for chat models (--chat; not for trec, triviaqa, samsum, lsht, lcc,
// repobench-p, as pred.py), greedy generation of up to the dataset's max length (samsum also stops at a newline).
// Output, in LongBench's layout:
//   OUT/pred/<model>/<dataset>.jsonl   {"pred", "answers", "all_classes", "length", "_id"} per record (appended;
//                                      records whose _id is already there are skipped: resumable)
//   OUT/pred/<model>/result.json       {"<dataset>": score} over every .jsonl in that folder, as eval.py writes it
// With --e (LongBench-E): OUT/pred_e/<model>/ and result.json scores per length bin.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/eval_session.h"

namespace lcllm {

struct LongBenchOptions {
  std::string data_dir;
  std::vector<std::string> datasets;  // empty: every <dataset>.jsonl in data_dir
  int32_t max_length = 3500;          // prompt tokens after truncation (LongBench's llama2-7b-chat-4k setting)
  bool chat = false;
  std::string chat_template_file;     // overrides the tokenizer's chat_template
  std::string model_name;             // the pred/ folder name; empty: <model dir name>[_<policy>]
  int32_t limit = 0;                  // at most this many records per dataset; 0 = all
  bool longbench_e = false;           // LongBench-E: pred_e/ and scores per length bin (0-4k, 4-8k, 8k+)
  std::string out_dir = ".";
  EvalEngineSettings engine;
};

struct LongBenchReport {
  std::string pred_dir;
  std::map<std::string, double> scores;    // result.json (LongBench v1)
  nlohmann::ordered_json result;           // what result.json holds (v1 scores, or LongBench-E bins)
  std::vector<std::string> skipped;        // "<dataset>: reason"
};

// The pred/ folder name for a run.
std::string longbench_model_name(const EvalSession& session, const LongBenchOptions& options);
// Scores every <dataset>.jsonl in pred_dir (eval.py): {dataset: round(100 x mean, 2)}; datasets with jieba metrics
// or unknown names are listed in `skipped`.
std::map<std::string, double> longbench_score_dir(const std::string& pred_dir, std::vector<std::string>& skipped);

// LongBench-E (eval.py --e): per dataset {"0-4k", "4-8k", "8k+"} by the record's `length` (< 4000, < 8000, else);
// an empty bin is null (eval.py's mean of nothing is NaN, which is not JSON).
nlohmann::ordered_json longbench_score_dir_e(const std::string& pred_dir, std::vector<std::string>& skipped);

// The token ids of one record's prompt: template, middle truncation, optional chat template.
std::vector<int32_t> longbench_prompt_ids(const Tokenizer& tok, const std::string& prompt, bool chat,
                                          const std::string& chat_template_source, int32_t max_length);

LongBenchReport longbench_run(const EvalSession& session, const LongBenchOptions& options,
                              const std::function<void(const std::string&, size_t, size_t)>& progress = {});

}  // namespace lcllm
