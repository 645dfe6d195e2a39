// Byte-identical rendering of the real llama3 / qwen3 / gemma3 chat templates against references produced by
// transformers + jinja2 (tools/make_template_refs.py -> tests/fixtures/template/<name>.jsonl).
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include "lcllm/error.h"
#include "tokenizer/chat_template.h"

namespace {

using nlohmann::ordered_json;

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string template_of(const std::string& name) {
  std::string path = std::string(LCLLM_SHARED_DIR) + "/assets/tokenizers/" + name + "/tokenizer_config.json";
  INFO("tokenizer config: " << path);
  return ordered_json::parse(read_file(path)).at("chat_template").get<std::string>();
}

// Where two renderings first differ, with a little context, for a readable failure.
std::string first_difference(const std::string& got, const std::string& want) {
  std::size_t k = 0;
  while (k < got.size() && k < want.size() && got[k] == want[k]) ++k;
  std::size_t from = k > 40 ? k - 40 : 0;
  return "first difference at byte " + std::to_string(k) + "\n  got:  " + ordered_json(got.substr(from, 100)).dump(-1, ' ', false, ordered_json::error_handler_t::replace) +
         "\n  want: " + ordered_json(want.substr(from, 100)).dump(-1, ' ', false, ordered_json::error_handler_t::replace);
}

void check_references(const std::string& name) {
  lcllm::ChatTemplate tmpl(template_of(name));
  std::ifstream f(std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/template/" + name + ".jsonl");
  REQUIRE(f.good());
  std::string line;
  int n_render = 0, n_error = 0, line_no = 0;
  while (std::getline(f, line)) {
    ++line_no;
    if (line.empty()) continue;
    ordered_json rec = ordered_json::parse(line);
    INFO(name << ".jsonl line " << line_no);
    const ordered_json& messages = rec.at("messages");
    bool agp = rec.at("add_generation_prompt").get<bool>();
    const ordered_json& extra = rec.at("extra");
    if (rec.contains("expected")) {
      ++n_render;
      std::string want = rec.at("expected").get<std::string>();
      std::string got;
      REQUIRE_NOTHROW(got = tmpl.render(messages, agp, extra));
      INFO(first_difference(got, want));
      CHECK(got == want);
    } else {
      ++n_error;
      std::string want = rec.at("error").get<std::string>();
      try {
        std::string got = tmpl.render(messages, agp, extra);
        FAIL("expected an error containing: " << want << "\nbut rendered: " << got);
      } catch (const lcllm::Error& e) {
        CHECK_THAT(e.what(), Catch::Matchers::Contains(want));
      }
    }
  }
  CHECK(n_render + n_error >= 30);
  CHECK(n_error >= 1);
}

}  // namespace

TEST_CASE("llama3 chat template renders byte-identically to transformers", "[template][refs]") {
  check_references("llama3");
}

TEST_CASE("qwen3 chat template renders byte-identically to transformers", "[template][refs]") {
  check_references("qwen3");
}

TEST_CASE("gemma3 chat template renders byte-identically to transformers", "[template][refs]") {
  check_references("gemma3");
}
