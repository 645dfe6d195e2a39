#include "eval/longbench_data.h"

#include <cmath>
#include <fstream>

#include "eval/longbench_metrics.h"
#include "lcllm/error.h"

namespace lcllm {

namespace {

[[noreturn]] void bad_line(const std::string& path, size_t line, const std::string& msg) {
  throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, path + ":" + std::to_string(line) + ": " + msg);
}

std::string want_string(const nlohmann::json& j, const char* name, const std::string& path, size_t line) {
  auto it = j.find(name);
  if (it == j.end()) bad_line(path, line, std::string("missing field \"") + name + "\"");
  if (!it->is_string()) bad_line(path, line, std::string("\"") + name + "\" must be a string");
  return it->get<std::string>();
}

}  // namespace

std::vector<std::string> LongBenchRecord::classes() const {
  std::vector<std::string> out;
  if (all_classes.is_array()) {
    for (const auto& c : all_classes) out.push_back(c.get<std::string>());
  }
  return out;
}

std::vector<LongBenchRecord> longbench_read_jsonl(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::ERROR_KIND_NOT_FOUND, "cannot read LongBench file '" + path + "'");
  std::vector<LongBenchRecord> out;
  std::string text;
  size_t line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      bad_line(path, line, std::string("not valid JSON (") + e.what() + ")");
    }
    if (!j.is_object()) bad_line(path, line, "a record must be a JSON object");
    LongBenchRecord r;
    r.input = want_string(j, "input", path, line);
    r.context = want_string(j, "context", path, line);
    r.dataset = want_string(j, "dataset", path, line);
    r.id = want_string(j, "_id", path, line);
    auto answers = j.find("answers");
    if (answers == j.end() || !answers->is_array() || answers->empty()) {
      bad_line(path, line, "\"answers\" must be a non-empty array of strings");
    }
    for (const auto& a : *answers) {
      if (!a.is_string()) bad_line(path, line, "\"answers\" must be a non-empty array of strings");
      r.answers.push_back(a.get<std::string>());
    }
    auto length = j.find("length");
    if (length == j.end() || !length->is_number_integer()) bad_line(path, line, "\"length\" must be an integer");
    r.length = length->get<int64_t>();
    auto classes = j.find("all_classes");
    if (classes == j.end()) bad_line(path, line, "missing field \"all_classes\" (null or an array of strings)");
    if (!classes->is_null()) {
      if (!classes->is_array()) bad_line(path, line, "\"all_classes\" must be null or an array of strings");
      for (const auto& c : *classes) {
        if (!c.is_string()) bad_line(path, line, "\"all_classes\" must be null or an array of strings");
      }
    }
    r.all_classes = *classes;
    out.push_back(std::move(r));
  }
  return out;
}

std::string longbench_format_prompt(const LongBenchDataset& dataset, const LongBenchRecord& record) {
  std::string out;
  const std::string& t = dataset.prompt;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t.compare(i, 9, "{context}") == 0) {
      out += record.context;
      i += 8;
    } else if (t.compare(i, 7, "{input}") == 0) {
      out += record.input;
      i += 6;
    } else {
      out += t[i];
    }
  }
  return out;
}

std::string longbench_truncate_middle(const Tokenizer& tok, const std::string& prompt, int32_t max_length) {
  const std::vector<int32_t> ids = tok.encode(prompt, true);
  if (int64_t(ids.size()) <= max_length) return prompt;
  const size_t half = size_t(max_length / 2);
  std::span<const int32_t> all(ids);
  return tok.decode(all.first(half), true) + tok.decode(all.last(half), true);
}

nlohmann::ordered_json longbench_pred_line(const LongBenchRecord& record, const std::string& pred) {
  nlohmann::ordered_json j;
  j["pred"] = pred;
  j["answers"] = record.answers;
  j["all_classes"] = record.all_classes;
  j["length"] = record.length;
  j["_id"] = record.id;
  return j;
}

double longbench_score_sample(const LongBenchDataset& dataset, const std::string& prediction,
                              const std::vector<std::string>& answers, const std::vector<std::string>& all_classes) {
  std::string pred = prediction;
  if (dataset.first_line) {
    const size_t start = pred.find_first_not_of('\n');
    pred = start == std::string::npos ? "" : pred.substr(start);
    pred = pred.substr(0, pred.find('\n'));
  }
  double best = 0.0;
  for (const auto& gt : answers) {
    double s = 0.0;
    switch (dataset.metric) {
      case LongBenchMetric::QA_F1: s = longbench_qa_f1(pred, gt); break;
      case LongBenchMetric::ROUGE_L: s = longbench_rouge_l(pred, gt); break;
      case LongBenchMetric::CLASSIFICATION: s = longbench_classification(pred, gt, all_classes); break;
      case LongBenchMetric::RETRIEVAL: s = longbench_retrieval(pred, gt); break;
      case LongBenchMetric::RETRIEVAL_ZH: s = longbench_retrieval_zh(pred, gt); break;
      case LongBenchMetric::COUNT: s = longbench_count(pred, gt); break;
      case LongBenchMetric::CODE_SIM: s = longbench_code_sim(pred, gt); break;
      case LongBenchMetric::QA_F1_ZH:
      case LongBenchMetric::ROUGE_L_ZH:
        throw Error(ErrorKind::ERROR_KIND_UNSUPPORTED,
                    "dataset " + dataset.name + ": " + longbench_metric_name(dataset.metric) +
                        " needs the jieba Chinese word segmenter, which lcllm does not have");
    }
    best = std::max(best, s);
  }
  return best;
}

double longbench_score_dataset(const std::vector<double>& per_sample) {
  if (per_sample.empty()) return 0.0;
  double sum = 0;
  for (double v : per_sample) sum += v;
  return std::round(100.0 * sum / double(per_sample.size()) * 100.0) / 100.0;
}

}  // namespace lcllm
