#include "eval/longbench.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "eval/generation.h"
#include "eval/longbench_data.h"
#include "eval/result_io.h"
#include "lcllm/error.h"
#include "tokenizer/chat_template.h"

namespace lcllm {

namespace fs = std::filesystem;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::ERROR_KIND_NOT_FOUND, "cannot read chat template file '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> jsonl_files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().extension() == ".jsonl") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string longbench_model_name(const EvalSession& session, const LongBenchOptions& o) {
  if (!o.model_name.empty()) return o.model_name;
  const std::string& label = session.policies().at(0).label;
  return label == "full" ? session.model_name() : session.model_name() + "_" + label;
}

std::vector<int32_t> longbench_prompt_ids(const Tokenizer& tok, const std::string& prompt, bool chat,
                                          const std::string& chat_template_source, int32_t max_length) {
  const std::string truncated = longbench_truncate_middle(tok, prompt, max_length);
  if (!chat) return tok.encode(truncated, true);
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  messages.push_back({{"role", "user"}, {"content", truncated}});
  nlohmann::ordered_json extra = {{"bos_token", tok.bos_token()}, {"eos_token", tok.eos_token()}};
  // The rendered template carries its own BOS, so special tokens are not added again (as `lcllm run --chat`).
  return tok.encode(ChatTemplate(chat_template_source).render(messages, true, extra), false);
}

namespace {

// Per-sample scores of one prediction file, with each record's length; nullopt when the dataset is skipped.
std::optional<std::vector<std::pair<double, int64_t>>> score_file(const std::string& path,
                                                                  std::vector<std::string>& skipped) {
  const std::string name = fs::path(path).stem().string();
  const LongBenchDataset* ds = longbench_find_dataset(name);
  if (!ds) {
    skipped.push_back(name + ": not a LongBench v1 dataset name");
    return std::nullopt;
  }
  if (!longbench_metric_supported(ds->metric)) {
    skipped.push_back(name + ": " + longbench_metric_name(ds->metric) + " needs the jieba segmenter (not supported)");
    return std::nullopt;
  }
  std::vector<std::pair<double, int64_t>> out;
  for (const auto& line : eval_read_jsonl(path)) {
    if (!line.contains("pred") || !line.contains("answers") || !line["pred"].is_string() || !line["answers"].is_array()) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, path + ": a prediction line lacks \"pred\" or \"answers\"");
    }
    std::vector<std::string> answers, classes;
    for (const auto& a : line["answers"]) answers.push_back(a.get<std::string>());
    if (line.contains("all_classes") && line["all_classes"].is_array()) {
      for (const auto& c : line["all_classes"]) classes.push_back(c.get<std::string>());
    }
    const int64_t length = line.contains("length") && line["length"].is_number() ? line["length"].get<int64_t>() : 0;
    out.emplace_back(longbench_score_sample(*ds, line["pred"].get<std::string>(), answers, classes), length);
  }
  return out;
}

}  // namespace

std::map<std::string, double> longbench_score_dir(const std::string& pred_dir, std::vector<std::string>& skipped) {
  std::map<std::string, double> scores;
  for (const auto& path : jsonl_files(pred_dir)) {
    auto scored = score_file(path, skipped);
    if (!scored || scored->empty()) continue;
    std::vector<double> per_sample;
    for (const auto& [score, length] : *scored) per_sample.push_back(score);
    scores[fs::path(path).stem().string()] = longbench_score_dataset(per_sample);
  }
  return scores;
}

nlohmann::ordered_json longbench_score_dir_e(const std::string& pred_dir, std::vector<std::string>& skipped) {
  nlohmann::ordered_json result = nlohmann::ordered_json::object();
  for (const auto& path : jsonl_files(pred_dir)) {
    auto scored = score_file(path, skipped);
    if (!scored || scored->empty()) continue;
    std::vector<double> bins[3];
    for (const auto& [score, length] : *scored) bins[length < 4000 ? 0 : length < 8000 ? 1 : 2].push_back(score);
    nlohmann::ordered_json j;
    const char* names[3] = {"0-4k", "4-8k", "8k+"};
    for (int b = 0; b < 3; ++b) {
      j[names[b]] = bins[b].empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(longbench_score_dataset(bins[b]));
    }
    result[fs::path(path).stem().string()] = j;
  }
  return result;
}

LongBenchReport longbench_run(const EvalSession& session, const LongBenchOptions& o,
                              const std::function<void(const std::string&, size_t, size_t)>& progress) {
  if (session.policies().size() != 1) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "eval longbench runs one --policy at a time");
  }
  if (o.max_length < 2) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--max-length must be >= 2");
  if (o.limit < 0) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--limit must be >= 0");
  std::error_code ec;
  if (!fs::is_directory(o.data_dir, ec)) {
    throw Error(ErrorKind::ERROR_KIND_NOT_FOUND, "--data: '" + o.data_dir + "' is not a directory");
  }
  const Tokenizer& tok = session.tokenizer();
  std::string chat_source;
  if (o.chat) {
    chat_source = o.chat_template_file.empty() ? tok.chat_template() : read_text(o.chat_template_file);
    if (chat_source.empty()) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                  "--chat: the tokenizer has no chat_template; pass one with --chat-template FILE");
    }
  }

  // Which files: the requested datasets, else every .jsonl with a LongBench name.
  std::vector<std::pair<std::string, const LongBenchDataset*>> files;
  LongBenchReport report;
  if (o.datasets.empty()) {
    for (const auto& path : jsonl_files(o.data_dir)) {
      const std::string name = longbench_dataset_of_file(path);
      const LongBenchDataset* ds = longbench_find_dataset(name);
      if (!ds) {
        report.skipped.push_back(fs::path(path).filename().string() + ": not a LongBench v1 dataset name");
      } else {
        files.emplace_back(path, ds);
      }
    }
  } else {
    for (const auto& name : o.datasets) {
      const LongBenchDataset* ds = longbench_find_dataset(name);
      if (!ds) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--datasets: unknown LongBench dataset '" + name + "'");
      const std::string path = o.data_dir + "/" + name + ".jsonl";
      if (!fs::exists(path, ec)) throw Error(ErrorKind::ERROR_KIND_NOT_FOUND, "--datasets: no file '" + path + "'");
      files.emplace_back(path, ds);
    }
  }
  if (files.empty()) {
    throw Error(ErrorKind::ERROR_KIND_NOT_FOUND, "--data: '" + o.data_dir + "' has no LongBench <dataset>.jsonl files");
  }

  report.pred_dir = o.out_dir + (o.longbench_e ? "/pred_e/" : "/pred/") + longbench_model_name(session, o);
  struct Item {
    const LongBenchDataset* ds;
    std::string out_path;
    LongBenchRecord record;
    GenRequest request;
  };
  std::vector<Item> items;
  int32_t need_ctx = 1;
  for (const auto& [path, ds] : files) {
    if (!longbench_metric_supported(ds->metric)) {
      report.skipped.push_back(ds->name + ": " + longbench_metric_name(ds->metric) +
                               " needs the jieba segmenter (not supported)");
      continue;
    }
    const std::string out_path = report.pred_dir + "/" + ds->name + ".jsonl";
    std::set<std::string> done;
    for (const auto& line : eval_read_jsonl(out_path)) {
      if (line.contains("_id") && line["_id"].is_string()) done.insert(line["_id"].get<std::string>());
    }
    auto records = longbench_read_jsonl(path);
    if (o.limit > 0 && int64_t(records.size()) > o.limit) records.resize(size_t(o.limit));
    for (auto& r : records) {
      if (done.count(r.id)) continue;
      Item it{ds, out_path, std::move(r), {}};
      it.request.prompt = longbench_prompt_ids(tok, longbench_format_prompt(*ds, it.record), o.chat && ds->chat,
                                               chat_source, o.max_length);
      it.request.max_new_tokens = ds->max_new_tokens;
      if (ds->stop_at_newline) {  // pred.py: eos_token_id=[eos, tokenizer.encode("\n")[-1]]
        auto nl = tok.encode("\n", false);
        if (!nl.empty()) it.request.extra_stop_ids.push_back(nl.back());
      }
      need_ctx = std::max<int32_t>(need_ctx, int32_t(it.request.prompt.size()) + ds->max_new_tokens);
      items.push_back(std::move(it));
    }
  }

  if (!items.empty()) {
    size_t largest = 0;  // items are grouped by dataset; each group decodes together
    for (size_t b = 0, run = 0; b < items.size(); ++b) {
      run = (b > 0 && items[b].ds == items[b - 1].ds) ? run + 1 : 1;
      largest = std::max(largest, run);
    }
    auto engine = session.load_engine(session.policies()[0], need_ctx, o.engine, largest);
    // One generation batch (and one progress bar) per dataset.
    for (size_t b = 0; b < items.size();) {
      size_t e = b;
      while (e < items.size() && items[e].ds == items[b].ds) ++e;
      std::vector<GenRequest> requests;
      for (size_t k = b; k < e; ++k) requests.push_back(items[k].request);
      size_t done = 0;
      if (progress) progress(items[b].ds->name, 0, e - b);
      eval_generate(*engine, tok, requests, o.engine.batch_size, o.engine.chunk_size,
                    [&](size_t i, const GenOutput& g) {
        const Item& it = items[b + i];
        eval_append_line(it.out_path, longbench_pred_line(it.record, g.text).dump());
        if (progress) progress(it.ds->name, ++done, e - b);
      });
      b = e;
    }
  }
  if (o.longbench_e) {
    report.result = longbench_score_dir_e(report.pred_dir, report.skipped);
  } else {
    report.scores = longbench_score_dir(report.pred_dir, report.skipped);
    report.result = nlohmann::ordered_json::object();
    for (const auto& [name, score] : report.scores) report.result[name] = score;
  }
  eval_write_file(report.pred_dir + "/result.json", report.result.dump(4) + "\n");
  return report;
}

}  // namespace lcllm
