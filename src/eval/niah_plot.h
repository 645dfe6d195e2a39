// The NIAH heat map: needle depth (rows, top = 0%) x prompt length (columns), mean exact-match score in [0, 1]
// (gkamradt's LLMTest_NeedleInAHaystack layout).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "eval/answer_likelihood.h"

namespace lcllm {

// grid: [depths.size(), lengths.size()] row-major, NaN = no data. Throws lcllm::Error when the PNG cannot be written.
void niah_write_heatmap(const std::string& path, const std::string& title, const std::vector<float>& grid,
                        const std::vector<int32_t>& depths, const std::vector<int32_t>& lengths);
// OUT_DIR/retained.png: the share of full attention's answer probability each policy keeps, policies (rows) x prompt
// lengths and "all" (columns; answer_retained_grid), titled "TITLE, answer probability retained vs full" — when full
// and at least one other policy ran; otherwise an earlier run's file is removed (it would not match comparison.md).
void eval_write_retained_heatmap(const std::string& out_dir, const std::string& title,
                                 const std::vector<AnswerLikelihood>& records, const std::vector<std::string>& policies,
                                 const std::vector<int32_t>& lengths);
// "4k" for multiples of 1024, else the number ("1000").
std::string eval_length_label(int32_t tokens);

}  // namespace lcllm
