#include "eval/ruler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "eval/answer_likelihood.h"
#include "eval/generation.h"
#include "eval/haystack.h"
#include "eval/metrics.h"
#include "eval/niah_plot.h"
#include "eval/result_io.h"
#include "lcllm/error.h"

namespace lcllm {

int32_t ruler_default_max_new_tokens(const std::string& task) {
  if (task == "niah_multivalue" || task == "niah_multiquery") return 64;
  if (task == "vt") return 48;
  if (task == "cwe") return 120;
  return 32;
}

nlohmann::ordered_json ruler_sample_params(const std::string& model, const EvalPolicy& policy, const std::string& task,
                                           int32_t length, int32_t index, uint64_t seed, int32_t max_new_tokens,
                                           const std::string& text_fingerprint) {
  nlohmann::ordered_json p;
  p["model"] = model;
  p["policy"] = policy.label;
  p["plan"] = policy.fingerprint;
  p["task"] = task;
  p["context_length"] = length;
  p["index"] = index;
  p["seed"] = seed;
  p["max_new_tokens"] = max_new_tokens;
  p["task_text"] = text_fingerprint;
  p["harness"] = kEvalHarnessVersion;
  return p;
}

std::string ruler_file_path(const std::string& out_dir, const std::string& policy_label, const std::string& task,
                            int32_t length) {
  return out_dir + "/" + policy_label + "/" + task + "/len_" + std::to_string(length) + ".jsonl";
}

std::string ruler_summary_csv(const std::vector<RulerResult>& results) {
  struct Agg {
    std::vector<double> all, part, exact;
  };
  std::map<std::tuple<std::string, std::string, int32_t>, Agg> agg;
  std::vector<std::tuple<std::string, std::string, int32_t>> order;
  for (const auto& r : results) {
    auto key = std::make_tuple(r.policy, r.task, r.length);
    auto [it, fresh] = agg.try_emplace(key);
    if (fresh) order.push_back(key);
    it->second.all.push_back(r.match_all);
    it->second.part.push_back(r.match_part);
    it->second.exact.push_back(r.exact);
  }
  std::string csv = "policy,task,context_length,samples,string_match_all,string_match_part,exact_match\n";
  for (const auto& key : order) {
    const Agg& a = agg[key];
    csv += csv_field(std::get<0>(key)) + "," + std::get<1>(key) + "," + std::to_string(std::get<2>(key)) + "," +
           std::to_string(a.all.size()) + "," + format_fixed(ruler_aggregate(a.all), 2) + "," +
           format_fixed(ruler_aggregate(a.part), 2) + "," + format_fixed(ruler_aggregate(a.exact), 2) + "\n";
  }
  return csv;
}

std::string ruler_comparison_markdown(const std::vector<RulerResult>& results, const std::vector<std::string>& policies,
                                      const std::vector<std::string>& tasks, const std::vector<int32_t>& lengths) {
  std::vector<std::string> header{"policy"};
  header.insert(header.end(), tasks.begin(), tasks.end());
  header.push_back("mean");
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : policies) {
    std::vector<std::string> row{p};
    std::vector<double> task_scores;
    for (const auto& t : tasks) {
      std::vector<double> v;
      for (const auto& r : results) {
        if (r.policy == p && r.task == t) v.push_back(r.match_all);
      }
      if (v.empty()) {
        row.push_back("-");
      } else {
        task_scores.push_back(ruler_aggregate(v));
        row.push_back(format_fixed(task_scores.back(), 1));
      }
    }
    double mean = 0;
    for (double s : task_scores) mean += s;
    row.push_back(task_scores.empty() ? "-" : format_fixed(mean / double(task_scores.size()), 1));
    rows.push_back(row);
  }
  std::string md = "RULER string_match_all (%) per task, mean over lengths and samples.\n\n" + markdown_table(header, rows);
  const std::string ll = answer_likelihood_markdown(ruler_likelihood_records(results), policies, lengths);
  return ll.empty() ? md : md + "\n" + ll;
}

std::vector<AnswerLikelihood> ruler_likelihood_records(const std::vector<RulerResult>& results) {
  std::vector<AnswerLikelihood> likelihood;
  for (const auto& r : results) {
    likelihood.push_back({r.policy, r.length, r.task + "/" + std::to_string(r.index), r.answer_logprob, r.answer_tokens});
  }
  return likelihood;
}

std::vector<RulerResult> ruler_run(const EvalSession& session, const RulerOptions& o,
                                   const std::function<void(const std::string&, size_t, size_t)>& progress) {
  if (o.tasks.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--tasks: no task given");
  if (o.lengths.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--lengths: no length given");
  if (o.samples < 1) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--samples must be >= 1");
  if (o.max_new_tokens < 0) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--max-new-tokens must be >= 0");
  const auto known = ruler_task_names();
  for (const auto& t : o.tasks) {
    if (std::find(known.begin(), known.end(), t) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--tasks: unknown task '" + t + "' (known: " + list + ")");
    }
  }
  const EvalText& text = session.text();
  const std::string text_fp = eval_hex(eval_text_fingerprint(text));
  HaystackBuilder builder(session.tokenizer(), text.filler, text.filler_in_order);
  const int32_t max_len = *std::max_element(o.lengths.begin(), o.lengths.end());
  session.warn_if_beyond_trained(max_len);
  int32_t max_new = 0;
  for (const auto& t : o.tasks) max_new = std::max(max_new, o.max_new_tokens ? o.max_new_tokens : ruler_default_max_new_tokens(t));

  std::vector<RulerResult> results;
  for (const auto& policy : session.policies()) {
    const size_t total = o.tasks.size() * o.lengths.size() * size_t(o.samples);
    size_t done = 0;
    struct Job {
      std::string task, path;
      int32_t length, index, max_new;
      nlohmann::ordered_json params;
    };
    std::vector<Job> jobs;
    for (const auto& task : o.tasks) {
      const int32_t task_max_new = o.max_new_tokens ? o.max_new_tokens : ruler_default_max_new_tokens(task);
      for (int32_t len : o.lengths) {
        const std::string path = ruler_file_path(o.out_dir, policy.label, task, len);
        // Keep the lines of this run's parameters; drop stale ones (rewritten below before appending).
        std::map<int32_t, nlohmann::json> kept;
        bool stale = false;
        for (auto& line : eval_read_jsonl(path)) {
          const int32_t idx = line.value("index", -1);
          if (idx >= 0 && idx < o.samples && line.contains("params") &&
              line["params"] == ruler_sample_params(session.model_name(), policy, task, len, idx, o.seed,
                                                    task_max_new, text_fp) &&
              !kept.count(idx)) {
            kept[idx] = std::move(line);
          } else {
            stale = true;
          }
        }
        if (stale) {
          std::string content;
          for (const auto& [idx, line] : kept) content += line.dump() + "\n";
          eval_write_file(path, content);
        }
        for (int32_t i = 0; i < o.samples; ++i) {
          auto it = kept.find(i);
          if (it != kept.end()) {
            RulerResult r{policy.label, task, len, i, it->second.value("string_match_all", 0.0),
                          it->second.value("string_match_part", 0.0), it->second.value("exact_match", 0.0), true};
            const auto lp = it->second.find("answer_logprob");
            if (lp != it->second.end() && lp->is_number()) r.answer_logprob = lp->get<double>();
            r.answer_tokens = it->second.value("answer_tokens", 0);
            results.push_back(r);
            ++done;
          } else {
            jobs.push_back({task, path, len, i, task_max_new,
                            ruler_sample_params(session.model_name(), policy, task, len, i, o.seed, task_max_new,
                                                text_fp)});
          }
        }
      }
    }
    if (progress) progress(policy.label, done, total);
    if (jobs.empty()) continue;
    size_t largest = 0;  // jobs are grouped by (task, length); each group decodes together
    for (size_t b = 0, run = 0; b < jobs.size(); ++b) {
      run = (b > 0 && jobs[b].task == jobs[b - 1].task && jobs[b].length == jobs[b - 1].length) ? run + 1 : 1;
      largest = std::max(largest, run);
    }
    // Room for a teacher-forced fork of the answer (capped at the generation limit, as the answer is scored
    // only as far as a generation could have reached).
    auto engine = session.load_engine(policy, max_len + max_new, o.engine, largest, max_new);
    // One generation batch per (task, length).
    for (size_t b = 0; b < jobs.size();) {
      size_t e = b;
      while (e < jobs.size() && jobs[e].task == jobs[b].task && jobs[e].length == jobs[b].length) ++e;
      std::vector<TaskSample> samples;
      std::vector<GenRequest> requests;
      for (size_t k = b; k < e; ++k) {
        const Job& j = jobs[k];
        const uint64_t seed = EvalRng::derive(o.seed, {eval_fnv1a(j.task), uint64_t(j.length), uint64_t(j.index)});
        samples.push_back(make_ruler_sample(j.task, builder, text, j.length, seed, o.sizes));
        GenRequest r;
        r.prompt = samples.back().prompt;
        r.max_new_tokens = j.max_new;
        r.stop_at_sentence_end = true;
        r.forced = builder.encode_continuation(samples.back().answer);
        if (r.forced.size() > size_t(j.max_new)) r.forced.resize(size_t(j.max_new));
        requests.push_back(std::move(r));
      }
      eval_generate(*engine, session.tokenizer(), requests, o.engine.batch_size, o.engine.chunk_size,
                    [&](size_t i, const GenOutput& g) {
        const Job& j = jobs[b + i];
        const TaskSample& ts = samples[i];
        RulerResult r{policy.label, j.task, j.length, j.index, string_match_all(g.text, ts.references),
                      string_match_part(g.text, ts.references), eval_exact_match(ts.answer, g.text), false,
                      g.forced_logprob, g.forced_tokens};
        nlohmann::ordered_json line;
        line["index"] = j.index;
        line["task"] = j.task;
        line["context_length"] = j.length;
        line["prompt_tokens"] = ts.prompt.size();
        line["policy"] = policy.label;
        line["answer"] = ts.answer;
        line["references"] = ts.references;
        line["pred"] = g.text;
        line["string_match_all"] = r.match_all;
        line["string_match_part"] = r.match_part;
        line["exact_match"] = r.exact;
        if (std::isnan(r.answer_logprob)) line["answer_logprob"] = nullptr; else line["answer_logprob"] = r.answer_logprob;
        line["answer_tokens"] = r.answer_tokens;
        line["needles"] = ts.needles;
        line["depths"] = ts.depths;
        line["seconds"] = g.seconds;
        line["params"] = j.params;
        eval_append_line(j.path, line.dump());
        results.push_back(r);
        if (progress) progress(policy.label, ++done, total);
      });
      b = e;
    }
  }
  std::vector<std::string> labels;
  for (const auto& p : session.policies()) labels.push_back(p.label);
  eval_write_file(o.out_dir + "/summary.csv", ruler_summary_csv(results));
  eval_write_file(o.out_dir + "/comparison.md", ruler_comparison_markdown(results, labels, o.tasks, o.lengths));
  eval_write_retained_heatmap(o.out_dir, "RULER: " + session.model_name(), ruler_likelihood_records(results), labels,
                              o.lengths);
  return results;
}

}  // namespace lcllm
