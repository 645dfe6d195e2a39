// Stop strings over streamed pieces, raw logprobs, and the Prometheus rendering.
#include <cmath>

#include <catch2/catch.hpp>

#include "server/logprobs.h"
#include "server/metrics.h"
#include "server/stop_matcher.h"

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
