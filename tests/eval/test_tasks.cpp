// Task text (lcllm_eval.json contract) and the answers the NIAH / RULER generators expect: values in order of
// appearance, the query's key order, the variable chain, the common words.
#include <algorithm>
#include <map>
#include <regex>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "eval/eval_text.h"
#include "eval/haystack.h"
#include "eval/tasks.h"
#include "lcllm/error.h"

using namespace lcllm;

namespace {

const Tokenizer& tok() {
  static std::unique_ptr<Tokenizer> t = Tokenizer::load(std::string(LCLLM_SOURCE_DIR) + "/models/default");
  return *t;
}

// A valid version-1 file in the contract's shape, with `n` filler sentences, keys and names.
nlohmann::json contract_json(int n_filler = 60, int n_keys = 120, int n_names = 60) {
  nlohmann::json j;
  j["version"] = 1;
  for (int i = 0; i < n_filler; ++i) j["filler"].push_back("Filler sentence number " + std::to_string(i) + ".");
  for (int i = 0; i < n_keys; ++i) j["keys"].push_back("key" + std::to_string(i));
  j["value_digits"] = 6;
  j["needle"] = "The secret code for {key} is {value}.";
  j["query_single"] = "What is the secret code for {key}? The secret code for {key} is";
  j["query_multivalue"] = "What are all the secret codes for {key}? The secret codes for {key} are";
  j["query_multiquery"] = "What are the secret codes for {keys}? The secret codes are";
  for (int i = 0; i < n_names; ++i) j["vt_names"].push_back("V" + std::to_string(1000 + i));
  j["vt_assign"] = "VAR {var} = {value}.";
  j["vt_copy"] = "VAR {var} = VAR {src}.";
  j["query_vt"] = "Which variables are assigned the value {value}? Answer: the variables are";
  j["answer_separator"] = ", ";
  return j;
}

// Position of `needle` in the decoded prompt (npos when absent).
size_t find_in_prompt(const TaskSample& s, const std::string& needle) {
  return tok().decode(s.prompt, true).find(needle);
}

}  // namespace

TEST_CASE("lcllm_eval.json: a contract file parses; missing or bad fields are named") {
  EvalText t = eval_text_parse(contract_json().dump(), "m/lcllm_eval.json");
  CHECK(t.filler.size() == 60);
  CHECK(t.value_digits == 6);
  CHECK(t.preamble_niah.empty());  // contract models get exactly BOS + haystack + " " + query
  CHECK(!t.cwe_words.empty());     // built-in list when the file has none

  auto broken = [](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = contract_json();
    edit(j);
    return j.dump();
  };
  CHECK_THROWS_WITH(eval_text_parse(broken([](auto& j) { j.erase("needle"); }), "f"),
                    Catch::Contains("missing required field \"needle\""));
  CHECK_THROWS_WITH(eval_text_parse(contract_json(10).dump(), "f"), Catch::Contains("at least 50"));
  CHECK_THROWS_WITH(eval_text_parse(contract_json(60, 99).dump(), "f"), Catch::Contains("\"keys\" has 99"));
  CHECK_THROWS_WITH(eval_text_parse(broken([](auto& j) { j["version"] = 2; }), "f"), Catch::Contains("version"));
  CHECK_THROWS_WITH(eval_text_parse(broken([](auto& j) { j["needle"] = "code {key}"; }), "f"),
                    Catch::Contains("must contain {value}"));
  CHECK_THROWS_WITH(eval_text_parse(broken([](auto& j) { j["query_vt"] = "{value} {oops}"; }), "f"),
                    Catch::Contains("unknown placeholder {oops}"));
  CHECK_THROWS_WITH(eval_text_parse(broken([](auto& j) { j["keys"][3] = "key0"; }), "f"), Catch::Contains("repeats"));
  CHECK_THROWS_WITH(eval_text_parse("{not json", "f"), Catch::Contains("not valid JSON"));
  CHECK_THROWS_AS(eval_text_parse("[]", "f"), Error);

  // The fingerprint follows the text.
  EvalText u = t;
  u.needle = "The code for {key} is {value}.";
  CHECK(eval_text_fingerprint(t) != eval_text_fingerprint(u));
  CHECK(eval_text_fingerprint(t) == eval_text_fingerprint(eval_text_parse(contract_json().dump(), "other")));
}

TEST_CASE("eval_fill substitutes in one pass") {
  CHECK(eval_fill("a {x} b {y}", {{"x", "{y}"}, {"y", "2"}}) == "a {y} b 2");
  CHECK_THROWS_AS(eval_fill("{missing}", {}), Error);
  const EvalText d = eval_text_defaults();
  CHECK(d.filler.size() >= 50);
  CHECK(d.keys.size() >= 100);
  CHECK(d.vt_names.size() >= 50);
}

TEST_CASE("NIAH sample: exact length, the value has the configured digits and is in the needle") {
  const EvalText text = eval_text_parse(contract_json().dump(), "contract");
  HaystackBuilder b(tok(), text.filler);
  TaskSample s = make_niah_sample(b, text, 512, 0.5, 42);
  CHECK(s.prompt.size() == 512);
  CHECK(s.answer.size() == 6);
  CHECK(s.answer[0] != '0');
  REQUIRE(s.needles.size() == 1);
  CHECK(s.needles[0].find(s.answer) != std::string::npos);
  CHECK(find_in_prompt(s, s.needles[0]) != std::string::npos);
  // The prompt ends with the query, so the model continues it with " <value>."
  const std::string decoded = tok().decode(s.prompt, true);
  CHECK(decoded.substr(decoded.size() - s.query.size()) == s.query);
  CHECK(s.depths[0] <= 0.5);
  CHECK(s.depths[0] > 0.4);
}

TEST_CASE("RULER answers follow the contract") {
  const EvalText text = eval_text_parse(contract_json().dump(), "contract");
  HaystackBuilder b(tok(), text.filler);
  const uint64_t seed = GENERATE(1u, 2u, 3u);
  {
    SECTION("multivalue: the key's values in order of appearance") {
      TaskSample s = make_ruler_sample("niah_multivalue", b, text, 1024, seed);
      REQUIRE(s.references.size() == 4);
      std::vector<size_t> pos;
      for (const auto& v : s.references) pos.push_back(find_in_prompt(s, v));
      CHECK(std::is_sorted(pos.begin(), pos.end()));
      CHECK(s.answer == s.references[0] + ", " + s.references[1] + ", " + s.references[2] + ", " + s.references[3]);
      CHECK(s.prompt.size() == 1024);
    }
    SECTION("multikey: the queried key's value; the other needles use other keys") {
      TaskSample s = make_ruler_sample("niah_multikey", b, text, 1024, seed);
      REQUIRE(s.needles.size() == 4);
      std::smatch m;
      REQUIRE(std::regex_search(s.query, m, std::regex("code for (key[0-9]+)\\?")));
      const std::string key = m[1];
      int with_key = 0;
      for (const auto& n : s.needles) {
        if (n.find("for " + key + " is") != std::string::npos) {
          ++with_key;
          CHECK(n == "The secret code for " + key + " is " + s.answer + ".");
        }
      }
      CHECK(with_key == 1);
    }
    SECTION("multiquery: values in the order the query names the keys") {
      TaskSample s = make_ruler_sample("niah_multiquery", b, text, 1024, seed);
      std::smatch m;
      REQUIRE(std::regex_search(s.query, m, std::regex("codes for (.*)\\? The")));
      std::vector<std::string> keys;
      const std::string list = m[1];
      const std::regex key_re("key[0-9]+");
      std::sregex_iterator it(list.begin(), list.end(), key_re), end;
      for (; it != end; ++it) keys.push_back(it->str());
      REQUIRE(keys.size() == 4);
      REQUIRE(s.references.size() == 4);
      for (size_t i = 0; i < 4; ++i) {
        CHECK(find_in_prompt(s, "The secret code for " + keys[i] + " is " + s.references[i] + ".") !=
              std::string::npos);
      }
    }
    SECTION("vt: the chain's variables in order, assignment first") {
      TaskSample s = make_ruler_sample("vt", b, text, 1024, seed);
      REQUIRE(s.references.size() == 5);
      std::smatch m;
      REQUIRE(std::regex_search(s.query, m, std::regex("value ([0-9]+)\\?")));
      CHECK(find_in_prompt(s, "VAR " + s.references[0] + " = " + m[1].str() + ".") != std::string::npos);
      size_t last = 0;
      for (size_t i = 1; i < 5; ++i) {
        const size_t p = find_in_prompt(s, "VAR " + s.references[i] + " = VAR " + s.references[i - 1] + ".");
        REQUIRE(p != std::string::npos);
        CHECK(p > last);
        last = p;
      }
    }
  }
}

TEST_CASE("cwe: the common words are the most frequent ones and the prompt fits") {
  const EvalText text = eval_text_defaults();
  HaystackBuilder b(tok(), text.filler);
  for (int32_t length : {1024, 4096}) {
    TaskSample s = make_ruler_sample("cwe", b, text, length, 5);
    CHECK(int32_t(s.prompt.size()) <= length);
    CHECK(int32_t(s.prompt.size()) > length - 64);  // filled up to the budget, not far below
    REQUIRE(s.references.size() == 10);
    // Count list items: every common word appears more often than any other word.
    const std::string decoded = tok().decode(s.prompt, true);
    std::map<std::string, int> count;
    const std::regex item_re("\n[0-9]+\\. ([a-z-]+)");
    std::sregex_iterator it(decoded.begin(), decoded.end(), item_re), end;
    for (; it != end; ++it) ++count[(*it)[1].str()];
    int min_common = 1 << 30, max_other = 0;
    for (const auto& [w, c] : count) {
      const bool common = std::find(s.references.begin(), s.references.end(), w) != s.references.end();
      if (common) min_common = std::min(min_common, c);
      else max_other = std::max(max_other, c);
    }
    CHECK(min_common > max_other);
  }
  CHECK_THROWS_WITH(make_ruler_sample("nope", b, text, 512, 1), Catch::Contains("unknown RULER task"));
}
