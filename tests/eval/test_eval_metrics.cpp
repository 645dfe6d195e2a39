// NIAH / RULER scoring and LongBench's metrics against values worked out by hand from the reference definitions
// (RULER constants.py, LongBench metrics.py + the `rouge` 1.0.1 and fuzzywuzzy/difflib rules they call).
#include <catch2/catch.hpp>

#include "eval/eval_rng.h"
#include "eval/longbench_config.h"
#include "eval/longbench_data.h"
#include "eval/longbench_metrics.h"
#include "eval/metrics.h"
#include "lcllm/error.h"

using namespace lcllm;

TEST_CASE("NIAH exact match reads the text up to the first period or newline, trimmed") {
  CHECK(eval_answer_span(" 123456.") == "123456");
  CHECK(eval_answer_span("123456\nThe secret") == "123456");
  CHECK(eval_answer_span("  7 ") == "7");
  CHECK(eval_exact_match("123456", " 123456. And more") == 1.0);
  CHECK(eval_exact_match("123456", " 1234567.") == 0.0);      // a longer number is wrong
  CHECK(eval_exact_match("123456", "The code is 123456.") == 0.0);
  CHECK(eval_exact_match("a, b", " a, b.") == 1.0);
  CHECK(eval_exact_match("123456", "") == 0.0);
}

TEST_CASE("RULER string_match_all gives partial credit, string_match_part any hit; case-insensitive") {
  const std::vector<std::string> refs{"Apple", "pear", "plum", "fig"};
  CHECK(string_match_all("I saw an APPLE and a Pear", refs) == Approx(0.5));
  CHECK(string_match_part("I saw an APPLE and a Pear", refs) == 1.0);
  CHECK(string_match_all("nothing", refs) == 0.0);
  CHECK(string_match_part("nothing", refs) == 0.0);
  CHECK(string_match_all("apple pear plum fig", refs) == 1.0);
  // Aggregate: mean x 100 rounded to 2 decimals: (1 + 0 + 1/3) / 3 = 44.444..
  CHECK(ruler_aggregate({1.0, 0.0, 1.0 / 3.0}) == Approx(44.44));
  CHECK(ruler_aggregate({}) == 0.0);
}

TEST_CASE("LongBench normalize_answer and qa F1") {
  CHECK(longbench_normalize_answer("The  Quick, brown fox -- an apple!") == "quick brown fox apple");
  CHECK(longbench_normalize_answer("Theater and anthem") == "theater and anthem");  // articles only as words
  CHECK(longbench_normalize_answer("fox\xE2\x80\x94" "an apple") == "fox\xE2\x80\x94 apple");  // em dash is no word char
  // pred "cat sat on mat" vs gold "cat on mat": 3 shared, P = 3/4, R = 1, F1 = 2 * .75 / 1.75
  CHECK(longbench_qa_f1("The cat sat on the mat.", "a cat on mat") == Approx(6.0 / 7.0));
  CHECK(longbench_qa_f1("dog", "cat") == 0.0);
  // Repeated tokens count with multiplicity: pred "a1 a1 b", gold "a1 b b": common {a1:1, b:1} = 2, P = R = 2/3
  CHECK(longbench_qa_f1("a1 a1 b", "a1 b b") == Approx(2.0 / 3.0));
}

TEST_CASE("LongBench Rouge-L is the rouge package's summary-level F over distinct words") {
  // ref words {the, cat, is, on, mat} (5), hyp {the, cat, sat, on, mat} (5); LCS "the cat on the mat" covers the
  // distinct words {the, cat, on, mat} = 4: P = R = 4/5, F = 0.8 (standard ROUGE-L would give 5/6).
  CHECK(longbench_rouge_l("the cat sat on the mat", "the cat is on the mat") == Approx(0.8).epsilon(1e-6));
  // Sentences split at '.': union LCS over sentence pairs. hyp [a b][c d], ref [a c][b d]: union {a, b, c, d}.
  CHECK(longbench_rouge_l("a b. c d", "a c. b d") == Approx(1.0).epsilon(1e-6));
  // hyp {x, y}, ref {x, z, w}: LCS {x}: P = 1/2, R = 1/3, F = 2 * (1/6) / (5/6) = 0.4
  CHECK(longbench_rouge_l("x y", "x z w") == Approx(0.4).epsilon(1e-6));
  CHECK(longbench_rouge_l("", "x") == 0.0);     // the package raises on an empty hypothesis; LongBench scores 0
  CHECK(longbench_rouge_l("...", "x") == 0.0);  // only empty sentences
}

TEST_CASE("LongBench classification keeps the Python loop's skip-after-remove behaviour") {
  // Matches in class order [abc, ab, b]; "ab" is a proper substring of the truth and is removed, which makes the
  // loop skip "b" (also a substring) -> [abc, b] -> 1/2.
  CHECK(longbench_classification("abc", "abc", {"abc", "ab", "b"}) == Approx(0.5));
  CHECK(longbench_classification("Type: Location", "Location", {"Location", "Human being", "Entity"}) == 1.0);
  CHECK(longbench_classification("Entity or Location", "Location", {"Location", "Human being", "Entity"}) ==
        Approx(0.5));
  CHECK(longbench_classification("Human being", "Location", {"Location", "Human being"}) == 0.0);
  CHECK(longbench_classification("nothing", "Location", {"Location"}) == 0.0);
}

TEST_CASE("LongBench retrieval and count score the share of matching numbers") {
  CHECK(longbench_retrieval("Paragraph 3 or Paragraph 12", "Paragraph 3") == Approx(0.5));
  CHECK(longbench_retrieval("Paragraph 3", "Paragraph 3") == 1.0);
  CHECK(longbench_retrieval("no idea", "Paragraph 3") == 0.0);
  CHECK(longbench_retrieval_zh("\xE6\xAE\xB5\xE8\x90\xBD" "5", "\xE6\xAE\xB5\xE8\x90\xBD" "5") == 1.0);  // 段落5
  CHECK(longbench_count("There are 7 unique paragraphs out of 10", "7") == Approx(0.5));
  CHECK(longbench_count("7", "7") == 1.0);
  CHECK(longbench_count("seven", "7") == 0.0);
}

TEST_CASE("fuzz.ratio follows difflib's matching blocks and Python's round-half-even") {
  CHECK(fuzz_ratio("abcd", "abce") == 75);        // match "abc": 2 * 3 / 8
  CHECK(fuzz_ratio("kitten", "sitting") == 62);   // "itt" + "n": 2 * 4 / 13 = 0.615
  CHECK(fuzz_ratio("abcdefgh", "aijklmno") == 12);  // 2 * 1 / 16 = 12.5 -> 12 (ties to even)
  CHECK(fuzz_ratio("", "") == 100);
  CHECK(fuzz_ratio("", "x") == 0);
  CHECK(difflib_ratio("abc", "abc") == 1.0);
  // Code similarity: the first line without '`', '#' or '//' is compared.
  CHECK(longbench_code_sim("\n# comment\n    return x + 1\nfoo", "    return x + 1") == 1.0);
  CHECK(longbench_code_sim("```python\nabce", "abcd") == Approx(0.75));
}

TEST_CASE("LongBench dataset scoring: best over answers, first line for few-shot sets, rounded mean") {
  const LongBenchDataset* trec = longbench_find_dataset("trec");
  REQUIRE(trec);
  CHECK(trec->max_new_tokens == 64);
  // Only the first line counts: "Entity" wins although the second line names the truth.
  CHECK(longbench_score_sample(*trec, "\nEntity\nLocation", {"Location"}, {"Location", "Entity"}) == 0.0);
  const LongBenchDataset* hotpot = longbench_find_dataset("hotpotqa");
  REQUIRE(hotpot);
  CHECK(longbench_score_sample(*hotpot, "Paris", {"London", "paris"}, {}) == 1.0);
  CHECK(longbench_score_dataset({1.0, 0.5, 0.0}) == 50.0);
  CHECK(longbench_score_dataset({1.0, 0.0, 0.0}) == Approx(33.33));
  const LongBenchDataset* dureader = longbench_find_dataset("dureader");
  REQUIRE(dureader);
  CHECK_THROWS_AS(longbench_score_sample(*dureader, "x", {"x"}, {}), Error);
  CHECK(longbench_dataset_of_file("/data/hotpotqa_e.jsonl") == "hotpotqa");
  CHECK(longbench_dataset_of_file("repobench-p.jsonl") == "repobench-p");
  CHECK(longbench_find_dataset("nope") == nullptr);
  CHECK(longbench_datasets().size() == 21);
}

TEST_CASE("metrics take arbitrary model output (any bytes, invalid UTF-8) and stay within [0, 1]") {
  EvalRng rng(2024);
  const char alphabet[] = "ab .\n#`/ParagphThe12\xE2\x80\x94\xFF\xC3";
  auto garbage = [&]() {
    std::string s;
    const size_t n = rng.below(80);
    for (size_t i = 0; i < n; ++i) s += alphabet[rng.below(sizeof(alphabet) - 1)];
    return s;
  };
  for (int i = 0; i < 300; ++i) {
    const std::string p = garbage(), g = garbage();
    for (double v : {longbench_qa_f1(p, g), longbench_rouge_l(p, g), longbench_classification(p, g, {"ab", "a", g}),
                     longbench_retrieval(p, g), longbench_count(p, g), longbench_code_sim(p, g),
                     string_match_all(p, {g, "a"}), string_match_part(p, {g})}) {
      CHECK(v >= 0.0);
      CHECK(v <= 1.0 + 1e-9);
    }
    CHECK(longbench_qa_f1(p, p) == (longbench_normalize_answer(p).empty() ? 0.0 : 1.0));
    CHECK(fuzz_ratio(p, p) == 100);
  }
}
