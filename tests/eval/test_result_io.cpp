// Flag parsing and output helpers the evals share: lengths, depth ranges, policy labels, CSV and markdown.
#include <catch2/catch.hpp>

#include "eval/niah_plot.h"
#include "eval/result_io.h"
#include "lcllm/error.h"

using namespace lcllm;

TEST_CASE("--lengths accepts plain counts and k/m suffixes, rejects the rest by name") {
  CHECK(eval_parse_length("256", "--lengths") == 256);
  CHECK(eval_parse_length("4k", "--lengths") == 4096);
  CHECK(eval_parse_length("1.5k", "--lengths") == 1536);
  CHECK(eval_parse_length("1m", "--lengths") == 1048576);
  CHECK_THROWS_WITH(eval_parse_length("1x", "--lengths"), Catch::Contains("--lengths: '1x' is not a token count"));
  CHECK_THROWS_AS(eval_parse_length("", "--lengths"), Error);
  CHECK_THROWS_AS(eval_parse_length("0", "--lengths"), Error);
  CHECK_THROWS_AS(eval_parse_length("-5", "--lengths"), Error);
  CHECK_THROWS_AS(eval_parse_length("1.3", "--lengths"), Error);  // not a whole number of tokens
  CHECK_THROWS_AS(eval_parse_length("4096m", "--lengths"), Error);  // beyond int32
  CHECK(eval_split_list(" full, streaming ,,tidal") == std::vector<std::string>{"full", "streaming", "tidal"});
}

TEST_CASE("--depths: START:STOP:STEP (STOP always included) or a list, within 0..100") {
  CHECK(eval_parse_depths("0:100:25", "--depths") == std::vector<int32_t>{0, 25, 50, 75, 100});
  CHECK(eval_parse_depths("0:100:30", "--depths") == std::vector<int32_t>{0, 30, 60, 90, 100});
  CHECK(eval_parse_depths("10,50", "--depths") == std::vector<int32_t>{10, 50});
  CHECK_THROWS_WITH(eval_parse_depths("0:200:10", "--depths"), Catch::Contains("'200'"));
  CHECK_THROWS_AS(eval_parse_depths("0:100", "--depths"), Error);
  CHECK_THROWS_AS(eval_parse_depths("50:10:10", "--depths"), Error);
  CHECK_THROWS_AS(eval_parse_depths("0:100:0", "--depths"), Error);
  CHECK_THROWS_AS(eval_parse_depths("x", "--depths"), Error);
}

TEST_CASE("policy labels, CSV quoting, markdown tables, length labels") {
  CHECK(eval_policy_label("streaming") == "streaming");
  CHECK(eval_policy_label("configs/policies/tidal.json") == "tidal");
  CHECK(eval_policy_label("my plan.json") == "my_plan");
  CHECK(csv_field("plain") == "plain");
  CHECK(csv_field("a,b") == "\"a,b\"");
  CHECK(csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(markdown_table({"p", "1k"}, {{"full", "100.0"}}) == "| p | 1k |\n|---|---:|\n| full | 100.0 |\n");
  CHECK(eval_length_label(4096) == "4k");
  CHECK(eval_length_label(1000) == "1000");
  CHECK(eval_length_label(1048576) == "1M");
}
