// The continuous-batching scheduler (src/runtime/, no HTTP) over a real engine (llama2 parity fixture, CPU):
// batched greedy generation equals Engine::generate one request at a time; cancellation frees pages; admission
// refusals name their numbers; page accounting is the KV cache's own (reservations shared by forks, prefix hits
// counted once); what it measures reaches its observer.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <thread>

#include <catch2/catch.hpp>

#include "runtime/engine.h"
#include "runtime/scheduler.h"

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

// Records what the scheduler reports.
struct CountingObserver : SchedulerObserver {
  std::atomic<int64_t> first_tokens{0}, next_tokens{0}, prompt_tokens{0}, generated{0};
  std::mutex mu;
  std::vector<std::string> ends;  // finish reasons of ended requests
  SchedulerGauges last;
  void on_first_token(double s) override { CHECK(s >= 0); ++first_tokens; }
  void on_next_token(double s) override { CHECK(s >= 0); ++next_tokens; }
  void on_request_end(double, const std::string& reason) override {
    std::lock_guard<std::mutex> lock(mu);
    ends.push_back(reason);
  }
  void on_step_tokens(int64_t p, int64_t g) override {
    prompt_tokens += p;
    generated += g;
  }
  void on_gauges(const SchedulerGauges& g) override {
    std::lock_guard<std::mutex> lock(mu);
    last = g;
  }
};

RefusalKind refusal_of(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const RequestRefused& e) {
    if (message) *message = e.what();
    return e.kind;
  }
  FAIL("not refused");
  return RefusalKind::INVALID_REQUEST;
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
  CountingObserver obs;
  Scheduler s(*engine, SchedulerOptions{4, 8, 256}, &obs);
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (size_t i = 0; i < prompts.size(); ++i) handles.push_back(s.submit(greedy(prompts[i], 6 + int32_t(i))));
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::string reason;
    CHECK(collect(*handles[i], &reason) == want[i]);
    CHECK(reason == "length");
  }
  std::this_thread::sleep_for(50ms);
  CHECK(engine->kv_cache().pages_free() == engine->kv_cache().n_pages());
  CHECK(engine->kv_cache().pages_reserved() == 0);
  CHECK(obs.generated == 30);
  CHECK(obs.first_tokens == 4);
  CHECK(obs.next_tokens == 26);
  CHECK(obs.prompt_tokens == 20 + 3 + 2 + 1);
  std::lock_guard<std::mutex> lock(obs.mu);
  CHECK(obs.ends == std::vector<std::string>(4, "length"));
  CHECK(obs.last.requests_running == 0);
  CHECK(obs.last.kv_pages_used == 0);
}

TEST_CASE("a step's tokens reach the observer before any client receives them (/metrics never lags a client)",
          "[server][scheduler]") {
  // The counter sleeps before counting: had the scheduler pushed the tokens first, the client would read them
  // while the count still lagged (tests/server/test_batching.py read /metrics right after its last token and saw one
  // token too few under load).
  struct SlowCounter : SchedulerObserver {
    std::atomic<int64_t> generated{0};
    void on_step_tokens(int64_t, int64_t g) override {
      std::this_thread::sleep_for(20ms);
      generated += g;
    }
  };
  auto engine = load_engine(512, 8);
  SlowCounter obs;
  Scheduler s(*engine, SchedulerOptions{4, 8, 256}, &obs);
  auto h = s.submit(greedy({1, 5, 9, 13, 17}, 5));
  int64_t received = 0;
  bool finished = false;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!finished && std::chrono::steady_clock::now() < deadline) {
    for (const TokenEvent& e : h->wait(100ms)) {
      if (e.token >= 0) ++received;
      CHECK(obs.generated.load() >= received);
      if (!e.finish_reason.empty()) finished = true;
    }
  }
  CHECK(finished);
  CHECK(received == 5);
}

TEST_CASE("async decode: the same tokens as one request at a time; a stop token ends a choice whose next step was "
          "already launched; a request arriving mid-chain; every page comes back", "[scheduler]") {
  const std::vector<int32_t> p0 = {1, 5, 9, 13, 17, 21, 25}, p1 = {2, 4, 6}, p2 = {100, 7};
  auto ref = load_engine(512, 64);
  GenerateOptions go;
  go.max_tokens = 12;
  go.sampling.temperature = 0;
  const std::vector<int32_t> want0 = ref->generate(p0, go).tokens, want1 = ref->generate(p1, go).tokens;
  go.max_tokens = 5;
  const std::vector<int32_t> want2 = ref->generate(p2, go).tokens;
  REQUIRE(want0.size() == 12);
  // p1 stops at the first occurrence of its 4th token: the step after it was launched before the host saw it.
  const int32_t stop = want1[3];
  const size_t stop_at = size_t(std::find(want1.begin(), want1.end(), stop) - want1.begin()) + 1;

  auto engine = load_engine(512, 16);
  CountingObserver obs;
  SchedulerOptions so{4, 8, 256};
  so.async_decode = true;
  Scheduler s(*engine, so, &obs);
  auto h0 = s.submit(greedy(p0, 12));
  GenerationRequest r1 = greedy(p1, 12);
  r1.stop_ids = {stop};
  auto h1 = s.submit(r1);
  // The third request arrives once the first two decode (chained): the chain stops for its prompt, then resumes.
  while (h0->wait(100ms).empty()) {
  }
  auto h2 = s.submit(greedy(p2, 5));
  std::string reason0, reason1, reason2;
  std::vector<int32_t> got0 = collect(*h0, &reason0);
  CHECK(reason0 == "length");
  CHECK(got0.size() + 1 <= want0.size());  // the first token(s) were read above
  CHECK(std::equal(got0.rbegin(), got0.rend(), want0.rbegin()));
  const std::vector<int32_t> got1 = collect(*h1, &reason1);
  CHECK(reason1 == "stop");
  CHECK(got1 == std::vector<int32_t>(want1.begin(), want1.begin() + std::ptrdiff_t(stop_at)));
  CHECK(collect(*h2, &reason2) == want2);
  CHECK(reason2 == "length");
  std::this_thread::sleep_for(50ms);
  CHECK(engine->kv_cache().pages_free() == engine->kv_cache().n_pages());
  CHECK(engine->kv_cache().pages_reserved() == 0);
  CHECK(obs.generated == int64_t(12 + stop_at + 5));
}

TEST_CASE("a cancelled request frees its pages at the next step (async decode: mid-chain)", "[server][scheduler]") {
  const bool async_decode = GENERATE(false, true);
  INFO("async_decode " << async_decode);
  auto engine = load_engine(512, 16);
  CountingObserver obs;
  SchedulerOptions so{2, 4, 512};
  so.async_decode = async_decode;
  Scheduler s(*engine, so, &obs);
  auto h = s.submit(greedy({1, 2, 3, 4, 5}, 400));
  int32_t seen = 0;  // a few tokens first: with async decode a chained step is in flight when the cancel lands
  while (seen < 3) seen += int32_t(h->wait(100ms).size());
  h->cancel();
  std::string reason;
  collect(*h, &reason);
  CHECK(reason == "abort");
  std::this_thread::sleep_for(50ms);
  CHECK(engine->kv_cache().pages_free() == engine->kv_cache().n_pages());
  CHECK(engine->kv_cache().pages_reserved() == 0);
  {
    std::lock_guard<std::mutex> lock(obs.mu);
    CHECK(obs.ends == std::vector<std::string>{"abort"});
  }
  // Nothing is left in flight: the next request runs.
  auto h2 = s.submit(greedy({9, 8, 7}, 4));
  CHECK(collect(*h2).size() == 4);
}

TEST_CASE("admission refusals: too long for the context or the cache, queue full, shutting down", "[server][scheduler]") {
  auto engine = load_engine(64, 16);
  Scheduler s(*engine, SchedulerOptions{1, 1, 100});
  std::string msg;
  CHECK(refusal_of([&] { s.submit(greedy(std::vector<int32_t>(30, 1), 80)); }, &msg) ==
        RefusalKind::CONTEXT_LENGTH_EXCEEDED);
  CHECK_THAT(msg, Catch::Contains("100") && Catch::Contains("110") && Catch::Contains("30 in the prompt"));
  // Fits max_model_len (100) but not the 64-token cache.
  CHECK(refusal_of([&] { s.submit(greedy(std::vector<int32_t>(30, 1), 50)); }, &msg) ==
        RefusalKind::CONTEXT_LENGTH_EXCEEDED);
  CHECK_THAT(msg, Catch::Contains("holds 64"));
  CHECK(refusal_of([&] { s.submit(greedy({}, 5)); }) == RefusalKind::INVALID_REQUEST);
  GenerationRequest two = greedy({1, 2}, 2);
  two.n = 2;  // more choices than --max-num-seqs (1)
  CHECK(refusal_of([&] { s.submit(two); }) == RefusalKind::INVALID_REQUEST);
  GenerationRequest bad_sampling = greedy({1, 2}, 2);
  bad_sampling.sampling.temperature = -1;  // refused at submit, not found later on the engine thread
  CHECK(refusal_of([&] { s.submit(bad_sampling); }) == RefusalKind::INVALID_REQUEST);
  GenerationRequest bad_policy = greedy({1, 2}, 2);
  bad_policy.policy = "nope";
  CHECK(refusal_of([&] { s.submit(bad_policy); }, &msg) == RefusalKind::INVALID_REQUEST);
  CHECK_THAT(msg, Catch::Contains("nope"));
  auto running = s.submit(greedy({1, 2}, 60));
  while (running->wait(100ms).empty()) {
  }
  auto waiting = s.submit(greedy({1, 2}, 2));
  CHECK(refusal_of([&] { s.submit(greedy({1, 2}, 2)); }) == RefusalKind::QUEUE_FULL);
  s.drain(std::chrono::milliseconds(0));  // cancels both
  std::string reason;
  collect(*waiting, &reason);
  CHECK(reason == "abort");
  CHECK(refusal_of([&] { s.submit(greedy({1, 2}, 2)); }) == RefusalKind::SHUTTING_DOWN);
}

TEST_CASE("page accounting is the KV cache's: a request that does not fit yet waits, then runs", "[scheduler]") {
  // 64 tokens of cache in pages of 4 = 16 pages; each request needs 10 pages (8-token prompt + 32 tokens).
  auto engine = load_engine(64, 16);
  CountingObserver obs;
  Scheduler s(*engine, SchedulerOptions{4, 8, 64}, &obs);
  auto ref = load_engine(64, 16);
  GenerateOptions go;
  go.max_tokens = 32;
  go.sampling.temperature = 0;
  const std::vector<int32_t> pa = {1, 2, 3, 4, 5, 6, 7, 8}, pb = {9, 8, 7, 6, 5, 4, 3, 2};
  const auto want_a = ref->generate(pa, go).tokens, want_b = ref->generate(pb, go).tokens;
  auto a = s.submit(greedy(pa, 32));
  auto b = s.submit(greedy(pb, 32));  // 10 + 10 > 16: waits until a ends
  CHECK(collect(*a) == want_a);
  CHECK(collect(*b) == want_b);
  std::this_thread::sleep_for(50ms);
  CHECK(engine->kv_cache().pages_reserved() == 0);
  CHECK(engine->kv_cache().pages_free() == engine->kv_cache().n_pages());
}

TEST_CASE("n > 1 forks share the prompt's pages and one reservation; the choices equal separate requests",
          "[scheduler]") {
  // A 10-token prompt (2 full pages + a partial one) + 6 tokens = 4 pages per choice. Three choices take
  // 4 + 2 x (4 - 2) = 8 pages, not 12: a 36-token cache (9 pages) holds them only when forks share.
  auto engine = load_engine(36, 16);
  Scheduler s(*engine, SchedulerOptions{4, 4, 36});
  const std::vector<int32_t> prompt = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3};
  GenerationRequest g;
  g.prompt = prompt;
  g.max_tokens = 6;
  g.n = 3;
  g.sampling.temperature = 0.8f;
  g.sampling.seed = 42;
  auto h = s.submit(g);
  std::map<int32_t, std::vector<int32_t>> got;
  int32_t ended = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (ended < 3 && std::chrono::steady_clock::now() < deadline) {
    for (const TokenEvent& e : h->wait(100ms)) {
      if (e.token >= 0) got[e.choice].push_back(e.token);
      if (!e.finish_reason.empty()) ++ended;
    }
  }
  REQUIRE(ended == 3);
  std::this_thread::sleep_for(50ms);
  CHECK(engine->kv_cache().pages_reserved() == 0);
  CHECK(engine->kv_cache().pages_free() == engine->kv_cache().n_pages());
  // Each choice samples with seed + choice: the same as a request of one choice with that seed.
  auto ref = load_engine(64, 16);
  for (int32_t c = 0; c < 3; ++c) {
    GenerateOptions go;
    go.max_tokens = 6;
    go.sampling = g.sampling;
    go.sampling.seed = 42 + uint64_t(c);
    CHECK(got[c] == ref->generate(prompt, go).tokens);
  }
}

TEST_CASE("a scoring choice is fed the forced answer: its log-probs equal one prefill over prompt + answer, the "
          "sampled choice is unchanged, and a score-only request needs no sampled choice", "[scheduler]") {
  // A 10-token prompt (2 full pages + a partial one) + 6 sampled tokens = 4 pages; the scoring fork adds
  // pages_for(10 + 5) - 2 = 2: 6 pages, so a 24-token cache holds the pair only because the fork shares.
  auto engine = load_engine(24, 16);
  Scheduler s(*engine, SchedulerOptions{2, 4, 24});
  const std::vector<int32_t> prompt = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3};
  const std::vector<int32_t> answer = {7, 11, 13, 17, 19};
  auto ref = load_engine(64, 16);
  GenerateOptions go;
  go.max_tokens = 6;
  go.sampling.temperature = 0;
  const std::vector<int32_t> want = ref->generate(prompt, go).tokens;
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), answer.begin(), answer.end());
  const int32_t seq = ref->create_sequence();
  const std::vector<float> logits = ref->feed(seq, all, true);  // [15, vocab]
  ref->free_sequence(seq);
  const size_t V = size_t(ref->config().vocab_size);
  std::vector<double> want_lp;  // [5]
  for (size_t i = 0; i < answer.size(); ++i) {
    want_lp.push_back(log_softmax_at(std::span<const float>(logits.data() + (prompt.size() - 1 + i) * V, V), answer[i]));
  }

  for (const int32_t n : {1, 0}) {
    GenerationRequest g = greedy(prompt, 6);
    g.n = n;
    g.forced = answer;
    auto h = s.submit(g);
    std::map<int32_t, std::vector<int32_t>> tokens;
    std::vector<double> lp;
    std::map<int32_t, std::string> reasons;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!h->finished() && std::chrono::steady_clock::now() < deadline) {
      for (const TokenEvent& e : h->wait(100ms)) {
        if (e.token >= 0) tokens[e.choice].push_back(e.token);
        if (e.token >= 0 && e.choice == n) lp.push_back(e.forced_logprob);
        if (!e.finish_reason.empty()) reasons[e.choice] = e.finish_reason;
      }
    }
    REQUIRE(h->finished());
    CHECK(tokens[n] == answer);  // the scoring choice reports the ids it was fed
    CHECK(reasons[n] == "length");
    REQUIRE(lp.size() == want_lp.size());
    for (size_t i = 0; i < lp.size(); ++i) CHECK(lp[i] == Approx(want_lp[i]).epsilon(1e-4));
    if (n == 1) {
      CHECK(tokens[0] == want);
      CHECK(reasons[0] == "length");
    }
    std::this_thread::sleep_for(50ms);
    CHECK(engine->kv_cache().pages_reserved() == 0);
    CHECK(engine->kv_cache().pages_free() == engine->kv_cache().n_pages());
  }
  // The scoring sequence counts against --max-num-seqs (2): n = 2 leaves no room for it.
  GenerationRequest too_many = greedy(prompt, 2);
  too_many.n = 2;
  too_many.forced = answer;
  std::string msg;
  CHECK(refusal_of([&] { s.submit(too_many); }, &msg) == RefusalKind::INVALID_REQUEST);
  CHECK_THAT(msg, Catch::Contains("less the scoring sequence"));
  GenerationRequest none = greedy(prompt, 2);
  none.n = 0;  // score only needs an answer to score
  CHECK(refusal_of([&] { s.submit(none); }) == RefusalKind::INVALID_REQUEST);
}

TEST_CASE("a choice the reader stops frees its sequence at the next step while its sibling runs on", "[scheduler]") {
  auto engine = load_engine(1024, 16);
  struct SequenceCounts : SchedulerObserver {
    std::mutex mu;
    std::vector<int64_t> running;  // sequences_running after each step
    void on_gauges(const SchedulerGauges& g) override {
      std::lock_guard<std::mutex> lock(mu);
      running.push_back(g.sequences_running);
    }
  } obs;
  Scheduler s(*engine, SchedulerOptions{2, 4, 1024}, &obs);
  GenerationRequest g = greedy({1, 2, 3, 4, 5}, 300);
  g.n = 2;
  g.sampling.temperature = 0.9f;  // the choices differ; the stop must pick the right one
  auto h = s.submit(g);
  std::map<int32_t, std::vector<int32_t>> tokens;
  std::map<int32_t, std::string> reasons;
  size_t after_stop = 0;  // choice 0 tokens that arrived after stop_choice (sampled before the engine saw it)
  bool stopped = false;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!h->finished() && std::chrono::steady_clock::now() < deadline) {
    for (const TokenEvent& e : h->wait(100ms)) {
      if (e.token >= 0) {
        tokens[e.choice].push_back(e.token);
        if (e.choice == 0 && stopped) ++after_stop;
      }
      if (!e.finish_reason.empty()) reasons[e.choice] = e.finish_reason;
      if (e.choice == 0 && e.token >= 0 && !stopped) {
        h->stop_choice(0);
        stopped = true;
      }
    }
  }
  REQUIRE(h->finished());
  CHECK(reasons[0] == "stop");
  CHECK(reasons[1] == "length");
  CHECK(tokens[1].size() == 300);
  CHECK(tokens[0].size() < 300);
  CHECK(tokens[0].size() == 1 + after_stop);
  std::this_thread::sleep_for(50ms);
  CHECK(engine->kv_cache().pages_free() == engine->kv_cache().n_pages());
  std::lock_guard<std::mutex> lock(obs.mu);
  // Once choice 0 was dropped, steps ran with one sequence: most of choice 1's 300 tokens.
  CHECK(std::count(obs.running.begin(), obs.running.end(), int64_t(1)) >= 200);
}

TEST_CASE("fixed prefill chunks: a prompt is prefilled in whole chunks whatever else runs; stop_when ends a choice "
          "on the engine thread", "[scheduler]") {
  // A step of 8 tokens, chunks of 5: the 3-token prompt and B's first chunk share step 1 (8 tokens), then B takes
  // 5 and 2 beside A's decode rows. Without fixed chunks B would take the 7 tokens the step has left in step 2.
  const std::vector<int32_t> pa = {1, 2, 3}, pb = {4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  auto ref = load_engine(512, 16);
  GenerateOptions go;
  go.max_tokens = 6;
  go.sampling.temperature = 0;
  const auto want_a = ref->generate(pa, go).tokens, want_b = ref->generate(pb, go).tokens;
  for (const int32_t chunk : {5, 0}) {
    auto engine = load_engine(512, 8);
    struct Steps : SchedulerObserver {
      std::mutex mu;
      std::vector<int64_t> prompt;  // prompt tokens of each step that had any
      void on_step_tokens(int64_t p, int64_t) override {
        std::lock_guard<std::mutex> lock(mu);
        if (p > 0) prompt.push_back(p);
      }
    } obs;
    SchedulerOptions so{3, 8, 512};
    so.prefill_chunk = chunk;
    Scheduler s(*engine, so, &obs);
    auto h = s.submit_all({greedy(pa, 6), greedy(pb, 6)});
    CHECK(collect(*h[0]) == want_a);
    CHECK(collect(*h[1]) == want_b);
    std::lock_guard<std::mutex> lock(obs.mu);
    INFO("prefill_chunk " << chunk);
    CHECK(obs.prompt == (chunk == 5 ? std::vector<int64_t>{8, 5, 2} : std::vector<int64_t>{8, 7}));
  }
  // A chunk that leaves no room for the decode rows is refused.
  auto engine = load_engine(512, 8);
  SchedulerOptions too_big{4, 8, 512};
  too_big.prefill_chunk = 5;
  CHECK_THROWS_WITH(Scheduler(*engine, too_big), Catch::Contains("do not fit the engine's step"));
  // stop_when sees the tokens so far and ends the choice with "stop", its token included.
  Scheduler s(*engine, SchedulerOptions{2, 4, 512});
  GenerationRequest g = greedy(pb, 6);
  g.stop_when = [](std::span<const int32_t> out) { return out.size() == 3; };
  auto h = s.submit(g);
  std::string reason;
  const std::vector<int32_t> got = collect(*h, &reason);
  CHECK(reason == "stop");
  CHECK(got == std::vector<int32_t>(want_b.begin(), want_b.begin() + 3));
  GenerationRequest bad = greedy(pb, 2);
  bad.forced = {1, 1 << 20};  // outside the vocabulary: refused, never fed
  CHECK(refusal_of([&] { s.submit(bad); }) == RefusalKind::INVALID_REQUEST);
}

TEST_CASE("random request mixes: every request ends, tokens and scores equal one-at-a-time references, every page "
          "comes back", "[scheduler][scheduler_fuzz]") {
  std::mt19937 rng(20261205);
  auto ref = load_engine(1024, 16);
  const int32_t V = ref->config().vocab_size;
  // A second plan that differs from FULL at these lengths: streaming with sink 2 + recent 4, and its reference.
  const std::string stream_plan = (std::filesystem::temp_directory_path() / "lcllm_sched_fuzz_stream.json").string();
  {
    std::ofstream f(stream_plan);
    f << R"({"name": "stream-2-4", "preset": "streaming", "params": {"sink": 2, "recent": 4}})";
  }
  EngineOptions stream_options;
  stream_options.model_path = std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/parity/llama2";
  stream_options.threads = 2;
  stream_options.context_tokens = 1024;
  stream_options.page_size = 4;
  stream_options.max_step_tokens = 16;
  stream_options.policy = stream_plan;
  stream_options.kv_window = false;  // the scheduler's engine keeps every head's keys (its plan is FULL)
  auto ref_stream = Engine::load(stream_options);
  bool plans_differ = false;
  // A small cache (96 tokens) so that admission waits; steps of 12 tokens so that prompts go in chunks.
  // async_decode: decode steps chained on the device's argmax whenever every running choice decodes greedily.
  for (const auto& [prefill_chunk, async_decode] : {std::pair{0, false}, std::pair{4, false}, std::pair{0, true},
                                                    std::pair{4, true}}) {
    auto engine = load_engine(96, 12);
    SchedulerOptions so{4, 64, 96};
    so.prefill_chunk = prefill_chunk;
    so.async_decode = async_decode;
    auto sched = std::make_unique<Scheduler>(*engine, so);
    Scheduler& s = *sched;
    struct Case {
      GenerationRequest req;
      std::shared_ptr<RequestHandle> handle;
      bool cancel_early = false;
      int32_t stop_at = 0;  // stop_when after this many tokens (0: none)
    };
    std::vector<Case> cases;
    for (int i = 0; i < 24; ++i) {
      Case c;
      std::vector<int32_t> prompt(size_t(1 + rng() % 20));
      for (auto& t : prompt) t = int32_t(3 + rng() % uint32_t(V - 3));
      c.req = greedy(prompt, int32_t(1 + rng() % 10));
      c.req.n = rng() % 4 == 0 ? 2 : 1;
      if (rng() % 3 == 0) {
        c.req.forced.resize(size_t(1 + rng() % 5));
        for (auto& t : c.req.forced) t = int32_t(rng() % uint32_t(V));
        if (rng() % 3 == 0) c.req.n = 0;  // score only
        if (c.req.n + 1 > so.max_num_seqs) c.req.n = 1;
      }
      if (rng() % 4 == 0) {
        c.stop_at = int32_t(1 + rng() % 3);
        const int32_t at = c.stop_at;
        c.req.stop_when = [at](std::span<const int32_t> out) { return int32_t(out.size()) == at; };
      }
      if (rng() % 3 == 0) c.req.policy = stream_plan;  // another plan in the same steps
      c.cancel_early = rng() % 8 == 0;
      cases.push_back(std::move(c));
    }
    std::vector<GenerationRequest> all;
    for (const Case& c : cases) all.push_back(c.req);
    const auto handles = s.submit_all(all);
    for (size_t i = 0; i < cases.size(); ++i) {
      cases[i].handle = handles[i];
      if (cases[i].cancel_early) cases[i].handle->cancel();
    }
    for (size_t i = 0; i < cases.size(); ++i) {
      const Case& c = cases[i];
      const int32_t n_seq = c.req.n + (c.req.forced.empty() ? 0 : 1);
      std::map<int32_t, std::vector<int32_t>> tokens;
      std::map<int32_t, std::string> reasons;
      std::vector<double> lp;
      const auto deadline = std::chrono::steady_clock::now() + 60s;
      while (!c.handle->finished() && std::chrono::steady_clock::now() < deadline) {
        for (const TokenEvent& e : c.handle->wait(50ms)) {
          if (e.token >= 0) tokens[e.choice].push_back(e.token);
          if (e.token >= 0 && e.choice == c.req.n && !c.req.forced.empty()) lp.push_back(e.forced_logprob);
          if (!e.finish_reason.empty()) reasons[e.choice] = e.finish_reason;
        }
      }
      INFO("prefill_chunk " << prefill_chunk << " async_decode " << async_decode << " request " << i);
      REQUIRE(c.handle->finished());
      CHECK(int32_t(reasons.size()) == n_seq);
      if (c.cancel_early) continue;  // cancelled before or while running: ended ("abort" or done), nothing more to check
      GenerateOptions go;
      go.max_tokens = c.req.max_tokens;
      go.sampling.temperature = 0;
      Engine& reference = c.req.policy.empty() ? *ref : *ref_stream;
      std::vector<int32_t> want = c.req.n > 0 ? reference.generate(c.req.prompt, go).tokens : std::vector<int32_t>{};
      if (!c.req.policy.empty() && c.req.n > 0) plans_differ = plans_differ || want != ref->generate(c.req.prompt, go).tokens;
      if (c.stop_at > 0 && int32_t(want.size()) > c.stop_at) want.resize(size_t(c.stop_at));
      for (int32_t ch = 0; ch < c.req.n; ++ch) CHECK(tokens[ch] == want);
      if (!c.req.forced.empty()) {
        std::vector<int32_t> seq_tokens = c.req.prompt;
        seq_tokens.insert(seq_tokens.end(), c.req.forced.begin(), c.req.forced.end());
        const int32_t seq = reference.create_sequence();
        const std::vector<float> logits = reference.feed(seq, seq_tokens, true);
        reference.free_sequence(seq);
        REQUIRE(lp.size() == c.req.forced.size());
        for (size_t k = 0; k < lp.size(); ++k) {
          const size_t row = c.req.prompt.size() - 1 + k;
          CHECK(lp[k] == Approx(log_softmax_at(std::span<const float>(logits.data() + row * size_t(V), size_t(V)),
                                               c.req.forced[k])).epsilon(1e-4));
        }
      }
    }
    sched.reset();  // joins the engine thread: the cache is read after its last free
    CHECK(engine->kv_cache().pages_reserved() == 0);
    CHECK(engine->kv_cache().pages_free() == engine->kv_cache().n_pages());
  }
  CHECK(plans_differ);  // the second plan changed some answers: the mix was a real one
  std::filesystem::remove(stream_plan);
}
