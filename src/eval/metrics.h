// NIAH and RULER scoring.
//   exact match (NIAH, the eval-format contract): the expected answer equals the generated text up to the first
//     ".", newline or end of text, with surrounding whitespace trimmed.
//   string_match_all / string_match_part (RULER, scripts/eval/synthetic/constants.py): per sample, the fraction of
//     references contained in the prediction (all) or 1 if any is (part), case-insensitively (ASCII case folding;
//     RULER's references are ASCII); a set of samples scores the mean x 100.
#pragma once
#include <string>
#include <vector>

namespace lcllm {

// The answer part of a generation: up to the first '.', '\n' or the end, trimmed of spaces/tabs/CR.
std::string eval_answer_span(const std::string& generated);
// 1.0 when eval_answer_span(generated) == expected, else 0.0.
double eval_exact_match(const std::string& expected, const std::string& generated);

double string_match_all(const std::string& prediction, const std::vector<std::string>& references);
double string_match_part(const std::string& prediction, const std::vector<std::string>& references);
// RULER's aggregate: mean of per-sample scores x 100, rounded to 2 decimals; 0 for no samples.
double ruler_aggregate(const std::vector<double>& per_sample);

}  // namespace lcllm
