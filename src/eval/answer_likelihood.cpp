#include "eval/answer_likelihood.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "eval/result_io.h"

namespace lcllm {

double answer_retained(double logprob, double full_logprob, int32_t tokens) {
  if (std::isnan(logprob) || std::isnan(full_logprob) || tokens < 1) return std::nan("");
  return std::min(1.0, std::exp((logprob - full_logprob) / double(tokens)));
}

namespace {

struct Mean {
  double sum = 0;
  int n = 0;
  void add(double v) {
    if (std::isnan(v)) return;
    sum += v;
    ++n;
  }
  double mean() const { return n ? sum / n : std::nan(""); }
  std::string cell(double scale, int digits) const { return n ? format_fixed(scale * mean(), digits) : "-"; }
};

// Per policy: the mean log-prob per token and the mean retained share per length, then over all lengths (the last
// entry). `full_found`: whether any record of full_policy was scored.
struct LikelihoodMeans {
  std::vector<std::vector<Mean>> per_token, retained;  // [policies][lengths + 1]
  bool any = false, full_found = false;
};

LikelihoodMeans likelihood_means(const std::vector<AnswerLikelihood>& records, const std::vector<std::string>& policies,
                                 const std::vector<int32_t>& lengths, const std::string& full_policy) {
  LikelihoodMeans out;
  for (const auto& r : records) out.any = out.any || (!std::isnan(r.logprob) && r.tokens > 0);
  std::map<std::tuple<int32_t, std::string>, double> full;  // (length, prompt) -> full's log-prob
  for (const auto& r : records) {
    if (r.policy == full_policy && !std::isnan(r.logprob)) full[{r.length, r.prompt}] = r.logprob;
  }
  out.full_found = !full.empty();
  for (const auto& p : policies) {
    std::vector<Mean> lp(lengths.size() + 1), ret(lengths.size() + 1);
    for (size_t li = 0; li < lengths.size(); ++li) {
      for (const auto& r : records) {
        if (r.policy != p || r.length != lengths[li] || std::isnan(r.logprob) || r.tokens < 1) continue;
        for (const size_t col : {li, lengths.size()}) lp[col].add(r.logprob / r.tokens);
        auto f = full.find({r.length, r.prompt});
        if (f == full.end()) continue;
        const double v = answer_retained(r.logprob, f->second, r.tokens);
        for (const size_t col : {li, lengths.size()}) ret[col].add(v);
      }
    }
    out.per_token.push_back(lp);
    out.retained.push_back(ret);
  }
  return out;
}

}  // namespace

std::string answer_likelihood_markdown(const std::vector<AnswerLikelihood>& records,
                                       const std::vector<std::string>& policies, const std::vector<int32_t>& lengths,
                                       const std::string& full_policy) {
  const LikelihoodMeans m = likelihood_means(records, policies, lengths, full_policy);
  if (!m.any) return "";
  std::vector<std::string> header{"policy"};
  for (int32_t l : lengths) header.push_back(std::to_string(l));
  header.push_back("all");
  std::vector<std::vector<std::string>> per_token, retained;
  for (size_t pi = 0; pi < policies.size(); ++pi) {
    std::vector<std::string> row_lp{policies[pi]}, row_ret{policies[pi]};
    for (size_t col = 0; col <= lengths.size(); ++col) {
      row_lp.push_back(m.per_token[pi][col].cell(1.0, 3));
      row_ret.push_back(m.retained[pi][col].cell(100.0, 1));
    }
    per_token.push_back(row_lp);
    retained.push_back(row_ret);
  }
  std::string md = "Teacher-forced answer log-probability per token (mean; 0 is certainty), by prompt length.\n\n" +
                   markdown_table(header, per_token);
  if (m.full_found) {
    md += "\nAnswer probability retained relative to " + full_policy +
          " (%): per prompt min(1, (p_policy / p_full)^(1/answer tokens)), mean over prompts.\n\n" +
          markdown_table(header, retained);
  }
  return md;
}

std::vector<float> answer_retained_grid(const std::vector<AnswerLikelihood>& records,
                                        const std::vector<std::string>& policies, const std::vector<int32_t>& lengths,
                                        const std::string& full_policy) {
  const LikelihoodMeans m = likelihood_means(records, policies, lengths, full_policy);
  if (!m.full_found) return {};
  std::vector<float> grid;
  for (const auto& row : m.retained) {
    for (const Mean& cell : row) grid.push_back(float(cell.mean()));
  }
  return grid;
}

}  // namespace lcllm
