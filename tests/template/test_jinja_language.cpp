// Errors, limits and API behaviour of the Jinja renderer (renderings themselves are pinned against jinja2 in
// test_jinja_features.cpp and test_chat_template_refs.cpp).
#include <chrono>

#include <catch2/catch.hpp>

#include <string>

#include "lcllm/error.h"
#include "tokenizer/chat_template.h"

using nlohmann::ordered_json;

namespace {

std::string render(const std::string& source, const ordered_json& vars = ordered_json::object(),
                   const lcllm::TemplateLimits& limits = {}) {
  return lcllm::ChatTemplate(source).render_variables(vars, limits);
}

std::string error_of(const std::string& source, const lcllm::TemplateLimits& limits = {}) {
  try {
    render(source, ordered_json::object(), limits);
  } catch (const lcllm::Error& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST_CASE("syntax errors name the line and column", "[template][errors]") {
  CHECK_THAT(error_of("ok\nok\n{% if x %}never closed"), Catch::Matchers::Contains("line 3") &&
                                                              Catch::Matchers::Contains("endif"));
  CHECK_THAT(error_of("line1\n  {{ 1 + }}"), Catch::Matchers::Contains("line 2, column"));
  CHECK_THAT(error_of("{{ 'unterminated }}"), Catch::Matchers::Contains("unterminated string"));
  CHECK_THAT(error_of("{# never closed"), Catch::Matchers::Contains("comment"));
  CHECK_THAT(error_of("{% raw %}x"), Catch::Matchers::Contains("endraw"));
  CHECK_THAT(error_of("{{ (1 }}"), Catch::Matchers::Contains("line 1"));
  CHECK_THAT(error_of("{{ 1 ) }}"), Catch::Matchers::Contains("unexpected ')'"));
  CHECK_THAT(error_of("{% endfor %}"), Catch::Matchers::Contains("unknown statement 'endfor'"));
  CHECK_THAT(error_of("{% include 'x' %}"), Catch::Matchers::Contains("not supported"));
  CHECK_THAT(error_of("\n{{ x | no_such_filter }}"), Catch::Matchers::Contains("line 2") &&
                                                        Catch::Matchers::Contains("no filter named 'no_such_filter'"));
  CHECK_THAT(error_of("{{ x is no_such_test }}"), Catch::Matchers::Contains("no test named"));
  CHECK_THAT(error_of("{{ 99999999999999999999 }}"), Catch::Matchers::Contains("too large"));
  CHECK_THAT(error_of("{{ a ! b }}"), Catch::Matchers::Contains("unexpected char '!'"));
  // Syntax errors are found when the template is compiled, before any render.
  CHECK_THROWS_AS(lcllm::ChatTemplate("{% for %}"), lcllm::Error);
}

TEST_CASE("render errors name the statement line", "[template][errors]") {
  CHECK_THAT(error_of("a\nb\n{{ 1 // 0 }}"), Catch::Matchers::Contains("line 3") &&
                                               Catch::Matchers::Contains("division or modulo by zero"));
  CHECK_THAT(error_of("{% for x in 3 %}{% endfor %}"), Catch::Matchers::Contains("not iterable"));
  CHECK_THAT(error_of("{{ 9223372036854775807 + 1 }}"), Catch::Matchers::Contains("integer overflow"));
}

TEST_CASE("raise_exception gives the template's message", "[template][errors]") {
  std::string tmpl = "{% if messages[0].role != 'user' %}{{ raise_exception('First message must be from user') }}"
                     "{% endif %}ok";
  lcllm::ChatTemplate t(tmpl);
  CHECK(t.render(ordered_json::parse(R"([{"role":"user","content":"x"}])"), false) == "ok");
  try {
    t.render(ordered_json::parse(R"([{"role":"assistant","content":"x"}])"), false);
    FAIL("no exception");
  } catch (const lcllm::Error& e) {
    CHECK(e.kind() == lcllm::ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
    CHECK_THAT(e.what(), Catch::Matchers::Contains("raised an exception") &&
                             Catch::Matchers::EndsWith("First message must be from user"));
  }
}

TEST_CASE("each limit, when exceeded, gives an error naming it", "[template][limits]") {
  lcllm::TemplateLimits tight;
  tight.max_loop_iterations = 1000;
  tight.max_output_bytes = 4096;
  tight.max_recursion_depth = 8;
  CHECK_THAT(error_of("{% for i in range(2000) %}{% endfor %}", tight),
             Catch::Matchers::Contains("max_loop_iterations (1000)"));
  CHECK_THAT(error_of("{% for i in range(600) %}{% for j in range(600) %}{% endfor %}{% endfor %}", tight),
             Catch::Matchers::Contains("max_loop_iterations"));
  CHECK_THAT(error_of("{% for i in range(500) %}{{ 'xxxxxxxxxx' }}{% endfor %}", tight),
             Catch::Matchers::Contains("max_output_bytes (4096)"));
  CHECK_THAT(error_of("{{ 'x' * 100000 }}", tight), Catch::Matchers::Contains("max_output_bytes"));
  CHECK_THAT(error_of("{% set ns = namespace(s='ab') %}{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}"
                      "{% endfor %}", tight),
             Catch::Matchers::Contains("max_output_bytes"));
  CHECK_THAT(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", tight),
             Catch::Matchers::Contains("max_recursion_depth (8)"));
  CHECK_THAT(error_of("{{ [1] * 100000000 }}", tight), Catch::Matchers::Contains("max_loop_iterations"));
  // Within the limits the same constructs render.
  CHECK(render("{% macro f(n) %}{% if n < 5 %}{{ n }}{{ f(n + 1) }}{% endif %}{% endmacro %}{{ f(0) }}",
               ordered_json::object(), tight) == "01234");
}

TEST_CASE("a render has a total work budget, not only per-string and per-loop limits", "[template][limits]") {
  // E12 item 3: each of these stays inside max_output_bytes and max_loop_iterations yet, with default totals,
  // would build gigabytes or run for hours.
  lcllm::TemplateLimits tight;
  tight.max_output_bytes = 1 << 20;
  tight.max_total_bytes = 8 << 20;
  tight.max_steps = 200000;
  // 100 strings of 1 MB each: every one is under max_output_bytes, together 100 MB.
  CHECK_THAT(error_of("{% for i in range(100) %}{% set s = 'x' * 1000000 %}{% endfor %}", tight),
             Catch::Matchers::Contains("max_total_bytes"));
  // Nested loops that only evaluate expressions (no output, no strings): the step budget ends them.
  tight.max_loop_iterations = 100000000;
  CHECK_THAT(error_of("{% for i in range(5000) %}{% for j in range(5000) %}{% if i == j %}{% endif %}"
                      "{% endfor %}{% endfor %}", tight),
             Catch::Matchers::Contains("max_steps (200000 "));
  // Output counts once per byte appended, so a long but linear render fits.
  CHECK(render("{% for i in range(5000) %}{{ 'abcdefghij' }}{% endfor %}", ordered_json::object(), tight).size() ==
        50000);
  // The defaults leave real templates far inside the budget and stop the hostile ones in seconds.
  lcllm::TemplateLimits defaults;
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THAT(error_of("{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}"
                      "{% endfor %}{% endfor %}{% endfor %}", defaults),
             Catch::Matchers::Contains("max_loop_iterations") || Catch::Matchers::Contains("max_steps"));
  CHECK_THAT(error_of("{% for i in range(90000) %}{% set s = 'y' * 15000000 %}{% endfor %}", defaults),
             Catch::Matchers::Contains("max_total_bytes"));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));
}

TEST_CASE("hostile nesting is rejected instead of exhausting the stack", "[template][limits]") {
  std::string deep_parens = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  CHECK_THAT(error_of(deep_parens), Catch::Matchers::Contains("nested too deeply"));
  std::string long_chain = "{{ 1";
  for (int k = 0; k < 5000; ++k) long_chain += " + 1";
  CHECK_THAT(error_of(long_chain + " }}"), Catch::Matchers::Contains("nested too deeply"));
  std::string deep_ifs;
  for (int k = 0; k < 2000; ++k) deep_ifs += "{% if true %}";
  CHECK_THAT(error_of(deep_ifs), Catch::Matchers::Contains("nested too deeply"));
  // Values nested by a loop stay bounded too.
  CHECK_THAT(error_of("{% set ns = namespace(v=[]) %}{% for i in range(1000) %}{% set ns.v = [ns.v] %}{% endfor %}"
                      "{{ ns.v }}"),
             Catch::Matchers::Contains("nested deeper"));
  CHECK_THAT(error_of("{% set ns = namespace() %}{% set ns.me = ns %}"),
             Catch::Matchers::Contains("namespace cannot hold another namespace"));
}

TEST_CASE("a compiled template renders many conversations", "[template][api]") {
  lcllm::ChatTemplate t("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
                        "{% if add_generation_prompt %}<assistant>{% endif %}{{ bos_token }}");
  ordered_json extra = {{"bos_token", "<s>"}};
  for (int k = 0; k < 100; ++k) {
    ordered_json msgs = ordered_json::array({{{"role", "user"}, {"content", std::to_string(k)}}});
    CHECK(t.render(msgs, k % 2 == 0, extra) == "<user>" + std::to_string(k) + (k % 2 == 0 ? "<assistant>" : "") + "<s>");
  }
  // The free-function form and nlohmann::json (sorted keys) also work.
  nlohmann::json jm = nlohmann::json::parse(R"([{"role":"user","content":"hi"}])");
  CHECK(lcllm::chat_template_render("{{ messages[0].content }}", jm, false, nlohmann::json::object()) == "hi");
}

TEST_CASE("chat inputs are prepared as transformers prepares them", "[template][api]") {
  lcllm::ChatTemplate t("{% for m in messages %}{{ m|tojson }}{% endfor %}|{{ tools }}|{{ documents }}");
  // null keys dropped; reasoning aliased to thinking + reasoning_content
  ordered_json msgs = ordered_json::parse(
      R"([{"role":"assistant","content":null,"reasoning":"r"}])");
  CHECK(t.render(msgs, false) ==
        R"({"thinking": "r", "role": "assistant", "reasoning": "r", "reasoning_content": "r"}|None|None)");
  CHECK_THROWS_WITH(t.render(ordered_json::array(), false), Catch::Matchers::Contains("empty conversation"));
  CHECK_THROWS_WITH(t.render(ordered_json::parse("[1]"), false), Catch::Matchers::Contains("messages[0]"));
  CHECK_THROWS_WITH(t.render(ordered_json::parse(R"([{"role":"user"}])"), false, ordered_json{{"messages", 1}}),
                    Catch::Matchers::Contains("must not contain 'messages'"));
}

TEST_CASE("invalid UTF-8 in a template never crashes", "[template][errors]") {
  std::string bad = "{{ '\xff\xfe' }}\xc3{{ '\xe2\x82'|length }}{{ '\xf0\x9f'|upper }}{{ '\xff'[::-1] }}";
  CHECK_NOTHROW(render(bad));
  CHECK_THROWS_AS(render("{{ \xff }}"), lcllm::Error);
}
