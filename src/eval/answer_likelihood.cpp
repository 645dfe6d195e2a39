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
  std::string cell(double scale, int digits) const { return n ? format_fixed(scale * sum / n, digits) : "-"; }
};

}  // namespace

std::string answer_likelihood_markdown(const std::vector<AnswerLikelihood>& records,
                                       const std::vector<std::string>& policies, const std::vector<int32_t>& lengths,
                                       const std::string& full_policy) {
  bool any = false;
  for (const auto& r : records) any = any || (!std::isnan(r.logprob) && r.tokens > 0);
  if (!any) return "";
  std::map<std::tuple<int32_t, std::string>, double> full;  // (length, prompt) -> full's log-prob
  for (const auto& r : records) {
    if (r.policy == full_policy && !std::isnan(r.logprob)) full[{r.length, r.prompt}] = r.logprob;
  }
  std::vector<std::string> header{"policy"};
  for (int32_t l : lengths) header.push_back(std::to_string(l));
  header.push_back("all");
  std::vector<std::vector<std::string>> per_token, retained;
  for (const auto& p : policies) {
    std::vector<std::string> row_lp{p}, row_ret{p};
    Mean all_lp, all_ret;
    for (int32_t l : lengths) {
      Mean lp, ret;
      for (const auto& r : records) {
        if (r.policy != p || r.length != l || std::isnan(r.logprob) || r.tokens < 1) continue;
        lp.add(r.logprob / r.tokens);
        all_lp.add(r.logprob / r.tokens);
        auto f = full.find({r.length, r.prompt});
        if (f == full.end()) continue;
        const double v = answer_retained(r.logprob, f->second, r.tokens);
        ret.add(v);
        all_ret.add(v);
      }
      row_lp.push_back(lp.cell(1.0, 3));
      row_ret.push_back(ret.cell(100.0, 1));
    }
    row_lp.push_back(all_lp.cell(1.0, 3));
    row_ret.push_back(all_ret.cell(100.0, 1));
    per_token.push_back(row_lp);
    retained.push_back(row_ret);
  }
  std::string md = "Teacher-forced answer log-probability per token (mean; 0 is certainty), by prompt length.\n\n" +
                   markdown_table(header, per_token);
  if (!full.empty()) {
    md += "\nAnswer probability retained relative to " + full_policy +
          " (%): per prompt min(1, (p_policy / p_full)^(1/answer tokens)), mean over prompts.\n\n" +
          markdown_table(header, retained);
  }
  return md;
}

}  // namespace lcllm
