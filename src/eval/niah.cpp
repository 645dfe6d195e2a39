#include "eval/niah.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>
#include <map>

#include "eval/answer_likelihood.h"
#include "eval/generation.h"
#include "eval/haystack.h"
#include "eval/metrics.h"
#include "eval/niah_plot.h"
#include "eval/result_io.h"
#include "eval/tasks.h"
#include "lcllm/error.h"

namespace lcllm {

namespace {

std::string utc_timestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S+0000", &tm);
  return buf;
}

struct Pending {
  int32_t depth, sample;
  std::string path;
  nlohmann::ordered_json params;
};

}  // namespace

nlohmann::ordered_json niah_cell_params(const std::string& model, const EvalPolicy& policy, int32_t length,
                                        int32_t depth, int32_t sample, uint64_t seed, int32_t max_new_tokens,
                                        const std::string& text_fingerprint) {
  nlohmann::ordered_json p;
  p["model"] = model;
  p["policy"] = policy.label;
  p["plan"] = policy.fingerprint;
  p["context_length"] = length;
  p["depth_percent"] = depth;
  p["sample"] = sample;
  p["seed"] = seed;
  p["max_new_tokens"] = max_new_tokens;
  p["task_text"] = text_fingerprint;
  p["harness"] = kEvalHarnessVersion;
  return p;
}

std::string niah_cell_path(const std::string& out_dir, const std::string& policy_label, int32_t length, int32_t depth,
                           int32_t sample) {
  return out_dir + "/" + policy_label + "/len_" + std::to_string(length) + "_depth_" + std::to_string(depth) +
         "_sample_" + std::to_string(sample) + ".json";
}

std::optional<NiahCell> niah_load_cell(const std::string& path, const nlohmann::json& params) {
  auto j = eval_read_json(path);
  if (!j || !j->contains("params") || (*j)["params"] != params) return std::nullopt;
  try {
    NiahCell c;
    c.policy = params.at("policy").get<std::string>();
    c.length = params.at("context_length").get<int32_t>();
    c.depth = params.at("depth_percent").get<int32_t>();
    c.sample = params.at("sample").get<int32_t>();
    c.score = j->at("score").get<double>();
    c.exact = j->at("exact_match").get<double>();
    c.value_logprob = j->at("value_logprob").is_null() ? std::nan("") : j->at("value_logprob").get<double>();
    c.value_tokens = j->at("value_tokens").get<int32_t>();
    c.response = j->at("model_response").get<std::string>();
    c.expected = j->at("expected_answer").get<std::string>();
    c.seconds = j->at("test_duration_seconds").get<double>();
    c.resumed = true;
    return c;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;  // a damaged cell is redone
  }
}

std::string niah_summary_csv(const std::vector<NiahCell>& cells) {
  std::map<std::tuple<std::string, int32_t, int32_t>, std::pair<double, int>> agg;
  std::vector<std::tuple<std::string, int32_t, int32_t>> order;
  for (const auto& c : cells) {
    auto key = std::make_tuple(c.policy, c.length, c.depth);
    auto [it, fresh] = agg.try_emplace(key, 0.0, 0);
    if (fresh) order.push_back(key);
    it->second.first += c.score;
    it->second.second += 1;
  }
  std::string csv = "policy,context_length,depth_percent,samples,score\n";
  for (const auto& key : order) {
    const auto& [sum, n] = agg[key];
    csv += csv_field(std::get<0>(key)) + "," + std::to_string(std::get<1>(key)) + "," +
           std::to_string(std::get<2>(key)) + "," + std::to_string(n) + "," + format_fixed(sum / n, 4) + "\n";
  }
  return csv;
}

std::string niah_comparison_markdown(const std::vector<NiahCell>& cells, const std::vector<std::string>& policies,
                                     const std::vector<int32_t>& lengths) {
  std::vector<std::string> header{"policy"};
  for (int32_t l : lengths) header.push_back(std::to_string(l));
  header.push_back("all");
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : policies) {
    std::vector<std::string> row{p};
    double all_sum = 0;
    int all_n = 0;
    for (int32_t l : lengths) {
      double sum = 0;
      int n = 0;
      for (const auto& c : cells) {
        if (c.policy == p && c.length == l) {
          sum += c.score;
          ++n;
        }
      }
      all_sum += sum;
      all_n += n;
      row.push_back(n ? format_fixed(100.0 * sum / n, 1) : "-");
    }
    row.push_back(all_n ? format_fixed(100.0 * all_sum / all_n, 1) : "-");
    rows.push_back(row);
  }
  std::string md = "NIAH accuracy (%): the needle's value found in the answer (RULER's string match), by prompt length "
                   "in tokens, mean over depths and samples.\n\n" +
                   markdown_table(header, rows);
  const std::string ll = answer_likelihood_markdown(niah_likelihood_records(cells), policies, lengths);
  return ll.empty() ? md : md + "\n" + ll;
}

std::vector<AnswerLikelihood> niah_likelihood_records(const std::vector<NiahCell>& cells) {
  std::vector<AnswerLikelihood> likelihood;
  for (const auto& c : cells) {
    likelihood.push_back({c.policy, c.length, std::to_string(c.depth) + "/" + std::to_string(c.sample),
                          c.value_logprob, c.value_tokens});
  }
  return likelihood;
}

std::vector<float> niah_grid(const std::vector<NiahCell>& cells, const std::string& policy,
                             const std::vector<int32_t>& depths, const std::vector<int32_t>& lengths) {
  std::vector<double> sum(depths.size() * lengths.size(), 0.0);
  std::vector<int> n(sum.size(), 0);
  for (const auto& c : cells) {
    if (c.policy != policy) continue;
    auto di = std::find(depths.begin(), depths.end(), c.depth);
    auto li = std::find(lengths.begin(), lengths.end(), c.length);
    if (di == depths.end() || li == lengths.end()) continue;
    const size_t k = size_t(di - depths.begin()) * lengths.size() + size_t(li - lengths.begin());
    sum[k] += c.score;
    n[k] += 1;
  }
  std::vector<float> grid(sum.size(), std::numeric_limits<float>::quiet_NaN());
  for (size_t k = 0; k < grid.size(); ++k) {
    if (n[k]) grid[k] = float(sum[k] / n[k]);
  }
  return grid;
}

std::vector<NiahCell> niah_run(const EvalSession& session, const NiahOptions& o,
                               const std::function<void(const std::string&, size_t, size_t)>& progress) {
  if (o.lengths.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--lengths: no length given");
  if (o.depths.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--depths: no depth given");
  if (o.samples < 1) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--samples must be >= 1");
  if (o.max_new_tokens < 1) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--max-new-tokens must be >= 1");
  const EvalText& text = session.text();
  const std::string text_fp = eval_hex(eval_text_fingerprint(text));
  HaystackBuilder builder(session.tokenizer(), text.filler, text.filler_in_order);
  const int32_t max_len = *std::max_element(o.lengths.begin(), o.lengths.end());
  session.warn_if_beyond_trained(max_len);

  std::vector<NiahCell> cells;
  for (const auto& policy : session.policies()) {
    const size_t total = o.lengths.size() * o.depths.size() * size_t(o.samples);
    size_t done = 0;
    // Resume: collect what exists, then run the rest length by length.
    std::map<int32_t, std::vector<Pending>> pending;
    for (int32_t len : o.lengths) {
      for (int32_t depth : o.depths) {
        for (int32_t s = 0; s < o.samples; ++s) {
          auto params = niah_cell_params(session.model_name(), policy, len, depth, s, o.seed, o.max_new_tokens, text_fp);
          const std::string path = niah_cell_path(o.out_dir, policy.label, len, depth, s);
          if (auto c = niah_load_cell(path, params)) {
            cells.push_back(*c);
            ++done;
          } else {
            pending[len].push_back({depth, s, path, std::move(params)});
          }
        }
      }
    }
    if (progress) progress(policy.label, done, total);
    if (pending.empty()) continue;
    size_t largest = 0;
    for (const auto& [len, items] : pending) largest = std::max(largest, items.size());
    // The value's ids as they continue the query (" 4732835"); every NIAH value has value_digits digits.
    const int32_t forced_max = int32_t(builder.encode_continuation(std::string(size_t(text.value_digits), '9')).size()) + 8;
    auto engine = session.load_engine(policy, max_len + o.max_new_tokens, o.engine, largest, forced_max);
    for (auto& [len, items] : pending) {
      // The samples and depths of one length form one generation batch.
      std::vector<TaskSample> samples;
      std::vector<GenRequest> requests;
      for (const auto& p : items) {
        const uint64_t seed = EvalRng::derive(o.seed, {uint64_t(len), uint64_t(p.depth), uint64_t(p.sample)});
        samples.push_back(make_niah_sample(builder, text, len, p.depth / 100.0, seed));
        GenRequest r;
        r.prompt = samples.back().prompt;
        r.max_new_tokens = o.max_new_tokens;
        r.stop_at_sentence_end = true;
        r.forced = builder.encode_continuation(samples.back().answer);
        if (r.forced.size() > size_t(forced_max)) r.forced.resize(size_t(forced_max));
        requests.push_back(std::move(r));
      }
      eval_generate(*engine, session.tokenizer(), requests, o.engine.batch_size, o.engine.chunk_size,
                    [&](size_t i, const GenOutput& g) {
        const Pending& p = items[i];
        const TaskSample& ts = samples[i];
        NiahCell c;
        c.policy = policy.label;
        c.length = len;
        c.depth = p.depth;
        c.sample = p.sample;
        c.expected = ts.answer;
        c.response = g.text;
        c.score = string_match_all(g.text, {ts.answer});
        c.exact = eval_exact_match(ts.answer, g.text);
        c.value_logprob = g.forced_logprob;
        c.value_tokens = g.forced_tokens;
        c.seconds = g.seconds;
        nlohmann::ordered_json j;
        j["model"] = session.model_name();
        j["context_length"] = len;
        j["depth_percent"] = double(p.depth);
        j["version"] = 1;
        j["needle"] = ts.needles.at(0);
        j["model_response"] = g.text;
        j["score"] = c.score;
        j["test_duration_seconds"] = g.seconds;
        j["test_timestamp_utc"] = utc_timestamp();
        j["policy"] = policy.label;
        j["sample"] = p.sample;
        j["expected_answer"] = ts.answer;
        j["actual_depth_percent"] = 100.0 * ts.depths.at(0);
        j["prompt_tokens"] = ts.prompt.size();
        j["exact_match"] = c.exact;
        if (std::isnan(c.value_logprob)) j["value_logprob"] = nullptr; else j["value_logprob"] = c.value_logprob;
        j["value_tokens"] = c.value_tokens;
        j["params"] = p.params;
        eval_write_file(p.path, j.dump(2) + "\n");
        cells.push_back(std::move(c));
        if (progress) progress(policy.label, ++done, total);
      });
    }
  }

  // Aggregates, in the order the user gave policies and lengths.
  std::vector<std::string> labels;
  for (const auto& p : session.policies()) labels.push_back(p.label);
  eval_write_file(o.out_dir + "/summary.csv", niah_summary_csv(cells));
  eval_write_file(o.out_dir + "/comparison.md", niah_comparison_markdown(cells, labels, o.lengths));
  if (o.write_heatmaps) {
    for (const auto& label : labels) {
      niah_write_heatmap(o.out_dir + "/heatmap_" + label + ".png", "NIAH: " + session.model_name() + ", " + label,
                         niah_grid(cells, label, o.depths, o.lengths), o.depths, o.lengths);
    }
    eval_write_retained_heatmap(o.out_dir, "NIAH: " + session.model_name(), niah_likelihood_records(cells), labels,
                                o.lengths);
  }
  return cells;
}

}  // namespace lcllm
