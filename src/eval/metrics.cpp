#include "eval/metrics.h"

#include <cmath>

namespace lcllm {

namespace {

std::string ascii_lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  }
  return s;
}

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

}  // namespace

std::string eval_answer_span(const std::string& generated) {
  return trim(generated.substr(0, generated.find_first_of(".\n")));
}

double eval_exact_match(const std::string& expected, const std::string& generated) {
  return eval_answer_span(generated) == expected ? 1.0 : 0.0;
}

double string_match_all(const std::string& prediction, const std::vector<std::string>& references) {
  if (references.empty()) return 0.0;
  const std::string p = ascii_lower(prediction);
  double hits = 0;
  for (const auto& r : references) hits += p.find(ascii_lower(r)) != std::string::npos ? 1.0 : 0.0;
  return hits / double(references.size());
}

double string_match_part(const std::string& prediction, const std::vector<std::string>& references) {
  const std::string p = ascii_lower(prediction);
  for (const auto& r : references) {
    if (p.find(ascii_lower(r)) != std::string::npos) return 1.0;
  }
  return 0.0;
}

double ruler_aggregate(const std::vector<double>& per_sample) {
  if (per_sample.empty()) return 0.0;
  double sum = 0;
  for (double v : per_sample) sum += v;
  return std::round(sum / double(per_sample.size()) * 100.0 * 100.0) / 100.0;
}

}  // namespace lcllm
