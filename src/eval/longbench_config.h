// LongBench v1's per-dataset settings (THUDM/LongBench: config/dataset2prompt.json, config/dataset2maxlen.json,
// eval.py's dataset2metric, pred.py's chat and post-processing rules), as our own table.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lcllm {

enum class LongBenchMetric {
  QA_F1,
  QA_F1_ZH,        // needs jieba: not supported
  ROUGE_L,
  ROUGE_L_ZH,      // needs jieba: not supported
  CLASSIFICATION,
  RETRIEVAL,
  RETRIEVAL_ZH,
  COUNT,
  CODE_SIM,
};

struct LongBenchDataset {
  std::string name;
  std::string prompt;        // Python str.format template over the record: {context}, {input}
  int32_t max_new_tokens;    // dataset2maxlen
  LongBenchMetric metric;
  bool chat;                 // false: few-shot and code tasks skip the chat template (pred.py)
  bool first_line;           // eval.py scores only the first line of the prediction (trec, triviaqa, samsum, lsht)
  bool stop_at_newline;      // pred.py stops samsum generation at a newline
};

const char* longbench_metric_name(LongBenchMetric m);
bool longbench_metric_supported(LongBenchMetric m);
const std::vector<LongBenchDataset>& longbench_datasets();
// nullptr for an unknown name.
const LongBenchDataset* longbench_find_dataset(const std::string& name);
// A dataset name from a file name: "hotpotqa.jsonl" and "hotpotqa_e.jsonl" (LongBench-E) -> "hotpotqa".
std::string longbench_dataset_of_file(const std::string& filename);

}  // namespace lcllm
