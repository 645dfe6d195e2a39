// Text on the HTTP side: stop strings over streamed pieces, ChoiceText (detokenizer + stops), raw logprobs, and
// the Prometheus rendering.
#include <cmath>

#include <catch2/catch.hpp>

#include "server/completion.h"
#include "runtime/logprobs.h"
#include "server/metrics.h"
#include "server/stop_matcher.h"
#include "tokenizer/tokenizer.h"

using namespace lcllm;

TEST_CASE("stop strings are found across pieces and never leak a partial match", "[server][stop]") {
  StopMatcher m({"STOP", "xyz"});
  std::string out;
  out += m.push("hello S");
  CHECK(out == "hello ");  // "S" might start STOP: held back
  out += m.push("TO");
  CHECK(out == "hello ");
  out += m.push("P and more");
  CHECK(m.stopped());
  CHECK(out == "hello ");
  CHECK(m.push("anything").empty());
  CHECK(m.finish().empty());
}

TEST_CASE("a held-back tail that does not complete a stop string is released", "[server][stop]") {
  StopMatcher m({"abc"});
  std::string out = m.push("xxab");
  CHECK(out == "xx");
  out += m.push("d");
  CHECK(out == "xxabd");
  out += m.push("a");
  CHECK(out == "xxabd");
  out += m.finish();
  CHECK(out == "xxabda");
  CHECK_FALSE(m.stopped());
}

TEST_CASE("the earliest of several stop strings wins; multi-byte characters stay whole", "[server][stop]") {
  StopMatcher m({"é!", "b"});
  const std::string out = m.push("aé?é!b");
  CHECK(out == "aé?");
  CHECK(m.stopped());
}

TEST_CASE("logprobs are the log-softmax of the raw logits", "[server][logprobs]") {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f};
  const StepLogprobs lp = logprobs_compute(logits, 2, 3);
  double z = 0;
  for (float x : logits) z += std::exp(double(x));
  CHECK(lp.chosen.id == 2);
  CHECK(lp.chosen.logprob == Approx(2.0 - std::log(z)).epsilon(1e-6));
  REQUIRE(lp.top.size() == 3);
  CHECK(lp.top[0].id == 1);  // tie with id 3: the lower id first
  CHECK(lp.top[1].id == 3);
  CHECK(lp.top[2].id == 2);
  CHECK(lp.top[0].logprob == Approx(3.0 - std::log(z)).epsilon(1e-6));
  const std::vector<float> masked = {-INFINITY, 0.0f};
  CHECK(std::isinf(logprobs_compute(masked, 0, 0).chosen.logprob));
  CHECK(logprobs_compute(masked, 1, 0).chosen.logprob == Approx(0.0));
}

TEST_CASE("metrics render Prometheus text with cumulative histogram buckets", "[server][metrics]") {
  ServerMetrics m;
  m.set_gauges({2, 1, 30, 100});
  m.add_generation_tokens(5);
  m.observe_ttft(0.003);
  m.observe_ttft(0.5);
  m.count_response(429);
  const std::string t = m.render();
  CHECK_THAT(t, Catch::Contains("lcllm_num_requests_running 2\n"));
  CHECK_THAT(t, Catch::Contains("lcllm_num_requests_waiting 1\n"));
  CHECK_THAT(t, Catch::Contains("lcllm_kv_cache_usage_perc 0.3\n"));
  CHECK_THAT(t, Catch::Contains("lcllm_generation_tokens_total 5\n"));
  CHECK_THAT(t, Catch::Contains("lcllm_time_to_first_token_seconds_bucket{le=\"0.005\"} 1\n"));
  CHECK_THAT(t, Catch::Contains("lcllm_time_to_first_token_seconds_bucket{le=\"0.5\"} 2\n"));
  CHECK_THAT(t, Catch::Contains("lcllm_time_to_first_token_seconds_count 2\n"));
  CHECK_THAT(t, Catch::Contains("lcllm_http_responses_total{code=\"429\"} 1\n"));
}

// ---- ChoiceText: detokenizer + stop strings, as the HTTP side runs them ---------------------------------------

namespace {

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += n;
  }
  return true;
}

}  // namespace

TEST_CASE("streamed pieces never split a character spread over byte-fallback tokens", "[server][choice]") {
  auto tok = Tokenizer::load(std::string(LCLLM_SOURCE_DIR) + "/models/default");
  // "a" then U+1F600 as four byte tokens, then " b!" (the Llama 2 vocabulary has <0xNN> byte-fallback tokens).
  std::vector<int32_t> ids = tok->encode("a", false);
  for (const char* b : {"<0xF0>", "<0x9F>", "<0x98>", "<0x80>"}) ids.push_back(tok->token_id(b).value());
  for (int32_t id : tok->encode(" b!", false)) ids.push_back(id);
  const std::string whole = tok->decode(ids, true);
  REQUIRE(whole.find("\xF0\x9F\x98\x80") != std::string::npos);

  ChoiceText c(*tok, {});
  std::string joined;
  for (size_t i = 0; i < ids.size(); ++i) {
    TokenEvent e;
    e.token = ids[i];
    if (i + 1 == ids.size()) e.finish_reason = "length";
    const std::string piece = c.on_event(e);
    CHECK(valid_utf8(piece));
    joined += piece;
  }
  CHECK(joined == whole);
  CHECK(c.finish_reason() == "length");
  CHECK(c.tokens() == int32_t(ids.size()));

  ChoiceText stopped(*tok, {"\xF0\x9F\x98\x80"});  // the emoji itself is the stop string
  std::string out;
  for (int32_t id : ids) {
    TokenEvent e;
    e.token = id;
    out += stopped.on_event(e);
    if (stopped.finished()) break;
  }
  CHECK(stopped.finish_reason() == "stop");
  CHECK(out == whole.substr(0, whole.find("\xF0\x9F\x98\x80")));
}
