// Language features rendered byte-identically to transformers' jinja2 environment: one snippet per behaviour
// (whitespace control, Python value rendering, filters, tests, loops, scoping, macros, errors), references from
// tools/make_template_refs.py -> tests/fixtures/template/features.jsonl.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#include "lcllm/error.h"
#include "tokenizer/chat_template.h"

using nlohmann::ordered_json;

TEST_CASE("jinja language features match jinja2 as transformers configures it", "[template][features]") {
  std::ifstream f(std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/template/features.jsonl");
  REQUIRE(f.good());
  std::string line;
  int line_no = 0, n = 0;
  while (std::getline(f, line)) {
    ++line_no;
    if (line.empty()) continue;
    ++n;
    ordered_json rec = ordered_json::parse(line);
    std::string source = rec.at("template").get<std::string>();
    INFO("features.jsonl line " << line_no << ": " << source);
    std::string got;
    try {
      lcllm::ChatTemplate tmpl(source);
      got = tmpl.render_variables(rec.at("variables"));
    } catch (const lcllm::Error& e) {
      if (rec.contains("error")) {
        CHECK_THAT(e.what(), Catch::Matchers::Contains(rec.at("error").get<std::string>()));
      } else {
        FAIL("unexpected error: " << e.what());
      }
      continue;
    }
    if (rec.contains("error")) {
      FAIL("expected an error containing: " << rec.at("error").get<std::string>() << "\nbut rendered: " << got);
    } else {
      CHECK(got == rec.at("expected").get<std::string>());
    }
  }
  CHECK(n >= 80);
}
