// LongBench v1 metrics (THUDM/LongBench, LongBench/metrics.py and eval.py), reimplemented with the same rules:
//   qa_f1            token F1 after normalize_answer (lower case, drop ASCII punctuation, drop the articles
//                    a/an/the as whole words, collapse whitespace), SQuAD style
//   rouge_l          ROUGE-L F of the `rouge` package 1.0.1 that LongBench calls: both texts split into sentences at
//                    '.', words at ' '; summary-level union LCS over *distinct* words (the package's default
//                    exclusive=True); F = 2PR / (P + R + 1e-8); empty text scores 0 (the package raises, LongBench
//                    catches)
//   classification   the classes named in the prediction, minus those that are a proper substring of the ground truth
//                    (removed while iterating the list, as the Python loop does, so a removal skips the next item);
//                    1 / |matches| when the ground truth is among them, else 0
//   retrieval        "Paragraph N" (zh: "段落N") in the ground truth; the share of numbers in the prediction equal to N
//   count            the share of numbers in the prediction equal to the ground truth
//   code_sim         fuzzywuzzy fuzz.ratio / 100 between the prediction's first line without '`', '#' or '//' and the
//                    ground truth; fuzz.ratio = round(100 x difflib.SequenceMatcher ratio) (fuzzywuzzy without
//                    python-Levenshtein, which LongBench does not install), ties rounded to even as Python does
// Chinese qa F1 and Chinese Rouge (multifieldqa_zh, dureader, vcsum) need the jieba word segmenter and are not
// supported (docs/DECISIONS.md).
#pragma once
#include <string>
#include <vector>

namespace lcllm {

std::string longbench_normalize_answer(const std::string& s);
double longbench_qa_f1(const std::string& prediction, const std::string& ground_truth);
double longbench_rouge_l(const std::string& prediction, const std::string& ground_truth);
double longbench_classification(const std::string& prediction, const std::string& ground_truth,
                                const std::vector<std::string>& all_classes);
double longbench_retrieval(const std::string& prediction, const std::string& ground_truth);
double longbench_retrieval_zh(const std::string& prediction, const std::string& ground_truth);
double longbench_count(const std::string& prediction, const std::string& ground_truth);
double longbench_code_sim(const std::string& prediction, const std::string& ground_truth);
// difflib.SequenceMatcher(None, a, b).ratio() over Unicode code points (autojunk on, as difflib's default).
double difflib_ratio(const std::string& a, const std::string& b);
// fuzzywuzzy fuzz.ratio(a, b): 100 when equal, 0 when either is empty, else round-half-even(100 x difflib_ratio).
int fuzz_ratio(const std::string& a, const std::string& b);

}  // namespace lcllm
