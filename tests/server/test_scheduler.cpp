// The continuous-batching scheduler over a real engine (llama2 parity fixture, CPU): batched greedy generation
// equals Engine::generate one request at a time; cancellation frees pages; admission errors name their numbers.
#include <chrono>
#include <thread>

#include <catch2/catch.hpp>

#include "runtime/engine.h"
#include "server/request.h"
#include "server/scheduler.h"

using namespace lcllm;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<Engine> load_engine(int32_t context_tokens, int32_t step_tokens) {
  EngineOptions o;
  o.model_path = std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/parity/llama2";
  o.threads = 2;
  o.context_tokens = context_tokens;
  o.page_size = 4;
  o.max_step_tokens = step_tokens;
  return Engine::load(o);
}

GenerationRequest greedy(std::vector<int32_t> prompt, int32_t max_tokens) {
  GenerationRequest g;
  g.prompt = std::move(prompt);
  g.max_tokens = max_tokens;
  g.sampling.temperature = 0;
  return g;
}

std::vector<int32_t> collect(RequestHandle& h, std::string* reason = nullptr) {
  std::vector<int32_t> out;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    for (const TokenEvent& e : h.wait(100ms)) {
      if (e.token >= 0) out.push_back(e.token);
      if (!e.finish_reason.empty()) {
        if (reason) *reason = e.finish_reason;
        return out;
      }
    }
  }
  FAIL("no finish event");
  return out;
}

}  // namespace

TEST_CASE("batched greedy generation equals one request at a time", "[server][scheduler]") {
  const std::vector<std::vector<int32_t>> prompts = {
      {1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45, 49, 53, 57, 61, 65, 69, 73, 77}, {2, 4, 6}, {100, 7}, {3}};
  auto ref = load_engine(512, 64);
  std::vector<std::vector<int32_t>> want;
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerateOptions go;
    go.max_tokens = 6 + int32_t(i);
    go.sampling.temperature = 0;
    want.push_back(ref->generate(prompts[i], go).tokens);
  }
  // A step of 8 tokens forces the 20-token prompt into chunks interleaved with the others' decode steps.
  auto engine = load_engine(512, 8);
  ServerMetrics metrics;
  Scheduler s(*engine, SchedulerOptions{4, 8, 256}, metrics);
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (size_t i = 0; i < prompts.size(); ++i) handles.push_back(s.submit(greedy(prompts[i], 6 + int32_t(i))));
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::string reason;
    CHECK(collect(*handles[i], &reason) == want[i]);
    CHECK(reason == "length");
  }
  std::this_thread::sleep_for(50ms);
  CHECK(engine->kv_cache().pages_free() == engine->kv_cache().n_pages());
  CHECK_THAT(metrics.render(), Catch::Contains("lcllm_generation_tokens_total 30\n"));
}

TEST_CASE("a cancelled request frees its pages at the next step", "[server][scheduler]") {
  auto engine = load_engine(512, 16);
  ServerMetrics metrics;
  Scheduler s(*engine, SchedulerOptions{2, 4, 512}, metrics);
  auto h = s.submit(greedy({1, 2, 3, 4, 5}, 400));
  while (h->wait(100ms).empty()) {
  }
  h->cancel();
  std::string reason;
  collect(*h, &reason);
  CHECK(reason == "abort");
  std::this_thread::sleep_for(50ms);
  CHECK(engine->kv_cache().pages_free() == engine->kv_cache().n_pages());
  CHECK_THAT(metrics.render(), Catch::Contains("lcllm_request_success_total{finished_reason=\"abort\"} 1"));
}

TEST_CASE("admission errors: too long for the context or the cache, queue full, shutting down", "[server][scheduler]") {
  auto engine = load_engine(64, 16);
  ServerMetrics metrics;
  Scheduler s(*engine, SchedulerOptions{1, 1, 100}, metrics);
  try {
    s.submit(greedy(std::vector<int32_t>(30, 1), 80));
    FAIL("no error");
  } catch (const RequestError& e) {
    CHECK(e.status == 400);
    CHECK_THAT(e.what(), Catch::Contains("100") && Catch::Contains("110") && Catch::Contains("30 in the prompt"));
  }
  try {
    s.submit(greedy(std::vector<int32_t>(30, 1), 50));  // fits max_model_len (100) but not the 64-token cache
    FAIL("no error");
  } catch (const RequestError& e) {
    CHECK(e.status == 400);
    CHECK_THAT(e.what(), Catch::Contains("holds 64"));
  }
  auto running = s.submit(greedy({1, 2}, 60));
  while (running->wait(100ms).empty()) {
  }
  auto waiting = s.submit(greedy({1, 2}, 2));
  try {
    s.submit(greedy({1, 2}, 2));
    FAIL("no error");
  } catch (const RequestError& e) {
    CHECK(e.status == 429);
  }
  s.drain(std::chrono::milliseconds(0));  // cancels both
  std::string reason;
  collect(*waiting, &reason);
  CHECK(reason == "abort");
  try {
    s.submit(greedy({1, 2}, 2));
    FAIL("no error");
  } catch (const RequestError& e) {
    CHECK(e.status == 503);
  }
}
