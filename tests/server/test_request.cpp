// Request parsing: valid OpenAI bodies become the right plain struct; every rule violation is a RequestError 400
// naming the field (the full bad-input matrix against the live server is tests/server/test_bad_input.py).
#include <catch2/catch.hpp>

#include "server/request.h"

using namespace lcllm;

namespace {

RequestLimits limits() {
  RequestLimits l;
  l.max_model_len = 512;
  l.vocab_size = 1000;
  l.policies = {"full", "streaming"};
  return l;
}

RequestError error_of(const std::string& body, bool chat) {
  try {
    parse_completion_request(body, chat, limits());
  } catch (const RequestError& e) {
    return e;
  }
  FAIL("no error for " << body);
  return RequestError(0, "");
}

}  // namespace

TEST_CASE("a full chat request parses into sampling params and options", "[server][request]") {
  const auto r = parse_completion_request(
      R"({"model": "m", "messages": [{"role": "system", "content": "s"},
          {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
          "max_completion_tokens": 7, "max_tokens": 99, "temperature": 0.5, "top_p": 0.9, "top_k": 40,
          "min_p": 0.05, "frequency_penalty": 0.5, "presence_penalty": -0.5, "seed": -1, "n": 2,
          "stop": "END", "logprobs": true, "top_logprobs": 3, "stream": true,
          "stream_options": {"include_usage": true}, "attention_policy": "streaming", "user": "ignored"})",
      true, limits());
  CHECK(r.chat);
  CHECK(r.model == "m");
  REQUIRE(r.messages.size() == 2);
  CHECK(r.messages[1]["content"] == "ab");
  CHECK(r.max_tokens == 7);  // max_completion_tokens wins over the deprecated max_tokens
  CHECK(r.sampling.temperature == 0.5f);
  CHECK(r.sampling.top_p == 0.9f);
  CHECK(r.sampling.top_k == 40);
  CHECK(r.sampling.min_p == 0.05f);
  CHECK(r.sampling.frequency_penalty == 0.5f);
  CHECK(r.sampling.presence_penalty == -0.5f);
  CHECK(r.sampling.seed == UINT64_MAX);
  CHECK(r.seed_given);
  CHECK(r.n == 2);
  CHECK(r.stop == std::vector<std::string>{"END"});
  CHECK(r.logprobs == 3);
  CHECK(r.stream);
  CHECK(r.include_usage);
  CHECK(r.policy == "streaming");
}

TEST_CASE("completion prompts: text, token ids, and batches of one", "[server][request]") {
  auto r = parse_completion_request(R"({"prompt": "hello"})", false, limits());
  CHECK(r.prompt == "hello");
  CHECK_FALSE(r.prompt_is_ids);
  CHECK_FALSE(r.max_tokens.has_value());
  CHECK(r.logprobs == -1);
  r = parse_completion_request(R"({"prompt": [[1, 2, 3]], "logprobs": 0, "top_k": -1, "temperature": null})", false,
                               limits());
  CHECK(r.prompt_is_ids);
  CHECK(r.prompt_ids == std::vector<int32_t>{1, 2, 3});
  CHECK(r.logprobs == 0);
  CHECK(r.sampling.top_k == 0);
  CHECK(r.sampling.temperature == 1.0f);  // null = not given
  r = parse_completion_request(R"({"prompt": ["only one"], "stop": ["", "x"]})", false, limits());
  CHECK(r.prompt == "only one");
  CHECK(r.stop == std::vector<std::string>{"x"});  // empty stop strings are dropped
}

TEST_CASE("invalid requests name the field and never escape as another exception", "[server][request]") {
  struct Case {
    const char* body;
    bool chat;
    const char* param;
  };
  const Case cases[] = {
      {R"({"messages": []})", true, "messages"},
      {R"({"messages": [{"role": "x", "content": "a"}]})", true, "messages[0].role"},
      {R"({"messages": [{"role": "user", "content": null}]})", true, "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", true, "messages[0].content[0].type"},
      {R"({"prompt": "a", "max_tokens": 513})", false, "max_tokens"},
      {R"({"prompt": "a", "max_tokens": 0})", false, "max_tokens"},
      {R"({"prompt": "a", "max_tokens": 1.5})", false, "max_tokens"},
      {R"({"prompt": "a", "temperature": 2.5})", false, "temperature"},
      {R"({"prompt": "a", "top_p": 0})", false, "top_p"},
      {R"({"prompt": "a", "n": 9})", false, "n"},
      {R"({"prompt": "a", "logprobs": 21})", false, "logprobs"},
      {R"({"prompt": [1, 1000]})", false, "prompt"},
      {R"({"prompt": "a", "stop": ["a", 1]})", false, "stop"},
      {R"({"prompt": "a", "stream_options": {}})", false, "stream_options"},
      {R"({"prompt": "a", "attention_policy": "configs/x.json"})", false, "attention_policy"},
      {R"({"prompt": "a", "stop_token_ids": [1000]})", false, "stop_token_ids"},
  };
  for (const Case& c : cases) {
    INFO(c.body);
    const RequestError e = error_of(c.body, c.chat);
    CHECK(e.status == 400);
    CHECK(e.param == c.param);
    CHECK(e.type == "invalid_request_error");
  }
  CHECK(error_of("{", false).code == "invalid_json");
  CHECK(error_of("\"just a string\"", false).code == "invalid_json");
  CHECK(error_of(std::string(1000, '['), false).code == "json_too_deep");
}

TEST_CASE("nesting depth counts brackets outside strings only", "[server][request]") {
  CHECK(json_nesting_depth(R"({"a": [1, {"b": 2}]})", 100) == 3);
  CHECK(json_nesting_depth(R"({"a": "[[[[[\"[[["})", 100) == 1);
  CHECK(json_nesting_depth(std::string(50, '['), 10) == 10);
}

TEST_CASE("error messages quote at most a short excerpt of a client's value, cut at a UTF-8 boundary", "[server][request]") {
  CHECK(error_excerpt("tiny") == "tiny");
  const std::string big(7'000'000, 'x');
  const std::string e = error_excerpt(big);
  CHECK(e.size() < 200);
  CHECK(e.find("(7000000 bytes)") != std::string::npos);
  // 127 ASCII bytes then a 3-byte character straddling the cut: the character is dropped whole.
  const std::string utf8 = std::string(127, 'a') + "\xe2\x82\xac" + std::string(10, 'b');
  const std::string cut = error_excerpt(utf8, 128);
  CHECK(cut.substr(0, 127) == std::string(127, 'a'));
  CHECK(cut.substr(127, 4) == "... ");
}
