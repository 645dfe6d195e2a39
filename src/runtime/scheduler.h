// Continuous batching over the paged KV cache (ARCHITECTURE.md §3 "Scheduler"), on one engine thread. It knows
// nothing of HTTP (E11 item 1): refusals are RequestRefused with a plain kind the server maps to a status code,
// and what it measures goes to a SchedulerObserver (the server's /metrics).
//
// Clients submit() requests and read their tokens from a RequestHandle (a thread-safe channel). Each step
// the engine thread (1) drops cancelled requests, freeing their pages, (2) admits waiting requests in arrival order
// while the batch has room (--max-num-seqs) and the KV cache can promise every admitted sequence the pages its
// prompt + max_tokens still need (KvCache::reserve: pages a prefix-cache hit or a fork shares are counted once, so
// a running sequence never runs out of cache and nothing is ever preempted),
// (3) runs one Engine::step: one decode token for every sequence past its prompt plus prompt chunks of the others
// (chunked prefill, Sarathi-style) up to the engine's step size, (4) samples, and hands tokens to the handles.
// Requests naming different attention policies run in the same step, each sequence under its own plan.
// `run`, `serve` and every eval drive it (evals add a teacher-forced scoring choice, GenerationRequest::forced).
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <stdexcept>

#include "lcllm/sampling_params.h"
#include "runtime/engine.h"
#include "runtime/logprobs.h"

namespace lcllm {

struct GenerationRequest {
  std::vector<int32_t> prompt;    // [n_prompt] >= 1 token
  int32_t max_tokens = 16;        // >= 1
  SamplingParams sampling;        // choice i samples with seed + i
  std::vector<int32_t> stop_ids;  // a sampled id in this list ends its choice ("stop"), the id included
  int32_t n = 1;                  // sampled choices, each its own sequence (0 only with `forced`: score only)
  int32_t logprobs = -1;          // -1: none; k >= 0: the chosen token's logprob and k alternatives
  std::string policy;             // attention preset; "" = the engine's plan
  // Teacher-forced scoring (evals, E10 item 7): when non-empty, one more choice (index n) forks the prompt and is
  // fed these ids instead of sampled ones; its events carry each id with TokenEvent::forced_logprob =
  // ln p(forced[i] | prompt, forced[<i]) and it ends with "length" after the last one. Stop ids do not apply.
  std::vector<int32_t> forced;    // [n_forced]
  // Called on the engine thread after each token a sampled choice draws (not a stop id), with the choice's tokens
  // so far; true ends the choice with "stop", that token included. A rule the reader could apply later (an eval's
  // sentence end) applied here frees the sequence at once and keeps the schedule independent of thread timing.
  std::function<bool(std::span<const int32_t> output)> stop_when;
};

struct TokenEvent {
  int32_t choice = 0;
  int32_t token = -1;             // -1: no token, only the end of the choice
  bool has_logprobs = false;
  StepLogprobs logprobs;
  double forced_logprob = 0;      // the scoring choice only: ln softmax(logits)[token], in double precision
  std::string finish_reason;      // "" while the choice runs; else stop, length, abort or error
};

class Scheduler;

// Wakes one thread that waits on many requests (an eval driver): every event pushed to a handle submitted with
// it bumps a counter.
class EventWaker {
 public:
  void notify();
  // Waits until the counter differs from `seen` or `timeout` passes; returns the counter.
  uint64_t wait(uint64_t seen, std::chrono::milliseconds timeout);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t count_ = 0;
};

// One request's channel from the engine thread to its reader (an HTTP handler, `run`, an eval driver).
class RequestHandle {
 public:
  // Events so far; waits up to `timeout` when there are none. Empty after the last event has been taken.
  std::vector<TokenEvent> wait(std::chrono::milliseconds timeout);
  // The client is gone or every choice hit a stop string: the engine frees the sequences at its next step
  // (it never sleeps while sequences run, so no wakeup is needed).
  void cancel();
  bool cancelled() const { return cancelled_.load(); }
  // One choice is done for the reader (a stop string, an eval's sentence end): the engine frees its sequence at
  // its next step and closes it with a token-less "stop" event; tokens it sampled before then may still arrive.
  void stop_choice(int32_t choice);
  bool choice_stopped(int32_t choice) const;
  // Every choice has finished and its events were taken.
  bool finished() const;
  int32_t prompt_tokens() const { return prompt_tokens_; }
  // When the scheduler admitted the request (its sequences started), or nothing while it waits.
  std::optional<std::chrono::steady_clock::time_point> admitted_at() const;

 private:
  friend class Scheduler;
  void push(TokenEvent e);
  bool choice_stopped_locked(int32_t choice) const;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<TokenEvent> events_;
  std::vector<int32_t> stopped_choices_;
  std::shared_ptr<EventWaker> waker_;
  std::optional<std::chrono::steady_clock::time_point> admitted_;
  int32_t open_choices_ = 0;
  int32_t prompt_tokens_ = 0;
  std::atomic<bool> cancelled_{false};
};

// Why submit() refused a request (the server maps each to an HTTP status: 400, 400, 429, 503).
enum class RefusalKind {
  INVALID_REQUEST,          // a field is out of range (empty prompt, n, unknown policy)
  CONTEXT_LENGTH_EXCEEDED,  // prompt + max_tokens exceeds max_model_len or the whole KV cache
  QUEUE_FULL,               // max_waiting requests are already waiting: retry later
  SHUTTING_DOWN,            // drain() was called
};

class RequestRefused : public std::runtime_error {
 public:
  RequestRefused(RefusalKind why, const std::string& message, std::string at_field = "")
      : std::runtime_error(message), kind(why), field(std::move(at_field)) {}
  RefusalKind kind;
  std::string field;  // the GenerationRequest field at fault: prompt, max_tokens, n, policy ("" when none)
};

// Load and cache state, published after every step.
struct SchedulerGauges {
  int64_t requests_running = 0;
  int64_t requests_waiting = 0;
  int64_t kv_pages_used = 0;
  int64_t kv_pages_total = 0;
  int64_t kv_pages_reserved = 0;    // promised to running sequences, not yet allocated
  int64_t prefix_query_tokens = 0;  // prefix caching: prompt tokens looked up
  int64_t prefix_hit_tokens = 0;    // of those, found cached
  int64_t prefix_evictions = 0;     // cached pages reused for other data
  int64_t prefix_cached_pages = 0;  // pages registered now
  int64_t sequences_running = 0;    // choices holding a sequence or waiting to fork one
};

// What the scheduler reports as it runs. Called on the engine thread (and, for on_request_end of a request
// cancelled while waiting, on the thread that finds it); implementations must be thread-safe. Defaults do nothing.
class SchedulerObserver {
 public:
  virtual ~SchedulerObserver() = default;
  virtual void on_first_token(double /*seconds_since_arrival*/) {}
  virtual void on_next_token(double /*seconds_since_previous*/) {}
  virtual void on_request_end(double /*seconds_since_arrival*/, const std::string& /*finish_reason*/) {}
  virtual void on_step_tokens(int64_t /*prompt_tokens*/, int64_t /*generated_tokens*/) {}
  virtual void on_gauges(const SchedulerGauges& /*gauges*/) {}
};

struct SchedulerOptions {
  int32_t max_num_seqs = 16;     // sequences (choices) in the running batch
  int32_t max_waiting = 64;      // requests queued beyond that: 429
  int32_t max_model_len = 4096;  // prompt + max_tokens of one sequence
  // > 0: prompts are prefilled in chunks of exactly this many tokens from their first uncached one (the last
  // chunk shorter), a chunk only when all of it fits the step, so what a prompt computes never depends on what
  // else runs (evals: results independent of --batch-size and timing; HiP's query blocks start at chunk starts).
  // Must leave room for the decode rows: prefill_chunk + max_num_seqs <= Engine::max_step_tokens().
  // 0: a prompt takes whatever room the step has left.
  int32_t prefill_chunk = 0;
  // Pipelined greedy decoding (vLLM's --async-scheduling, SGLang's overlap scheduler): while every running choice
  // decodes greedily without logprobs, the next step is recorded and launched before this step's tokens reach the
  // host (Engine::step_launch), so the device does not wait for the host between steps. A choice that stops costs
  // one discarded step. Same tokens as without it.
  bool async_decode = false;
};

class Scheduler {
 public:
  // Starts the engine thread. The engine (and the observer, when given) must outlive the scheduler.
  Scheduler(Engine& engine, const SchedulerOptions& options, SchedulerObserver* observer = nullptr);
  ~Scheduler();  // cancels what is left and joins the engine thread

  // Throws RequestRefused: CONTEXT_LENGTH_EXCEEDED when prompt + max_tokens cannot fit (naming both numbers),
  // INVALID_REQUEST for an empty prompt, a bad n or an unknown or unrunnable policy, QUEUE_FULL when the waiting
  // queue is full, SHUTTING_DOWN after drain().
  // `waker`, when given, is notified of every event of this request.
  std::shared_ptr<RequestHandle> submit(GenerationRequest request, std::shared_ptr<EventWaker> waker = nullptr);
  // Several requests queued at once (in order, under one lock: the engine thread sees all or none of them, so a
  // batch's schedule does not depend on how fast the caller submits). All are checked first; one refusal queues
  // none. QUEUE_FULL counts all of them against max_waiting.
  std::vector<std::shared_ptr<RequestHandle>> submit_all(std::vector<GenerationRequest> requests,
                                                         std::shared_ptr<EventWaker> waker = nullptr);

  // Graceful shutdown: refuse new requests (503), let running and waiting ones finish for up to `grace`, then
  // cancel the rest (their streams end with finish_reason "abort"). Returns when the engine is idle.
  void drain(std::chrono::milliseconds grace);

  // Suggested Retry-After for a 429, from the current load.
  int32_t retry_after_seconds() const;
  const SchedulerOptions& options() const { return options_; }

 private:
  struct Pending;
  struct Running;
  struct Group;
  std::shared_ptr<Group> prepare(GenerationRequest request, std::shared_ptr<EventWaker> waker);
  void enqueue(std::vector<std::shared_ptr<Group>> groups);
  void loop();
  void abort_all();
  void drop_cancelled();
  void admit();
  void run_step();
  // The choices a finished step samples for, with their logits row, or the argmax the backend took (-2: none).
  struct Sampling {
    Running* running;
    std::span<const float> logits;
    int32_t argmax = -2;
  };
  void emit_tokens(const std::vector<Sampling>& samplers, int64_t prompt_tokens,
                   std::chrono::steady_clock::time_point now);
  // async_decode: a launched step, its chunks' choices (null once a choice ended), and the step after it.
  struct InFlight {
    LaunchedStep step;
    std::vector<Running*> owners;  // [rows]
  };
  void run_launched_step(InFlight current);
  std::optional<InFlight> chain_after(const InFlight& current);
  void forget_done_in_flight();  // before running_ drops done choices: the in-flight step stops pointing at them
  void settle_in_flight();       // waits for the in-flight step, if any, and drops its tokens
  // `announced`: the choice's last token event already carried the reason.
  void finish_choice(Running& r, const std::string& reason, bool announced = false);
  void publish_gauges();

  Engine& engine_;
  SchedulerOptions options_;
  SchedulerObserver no_observer_;
  SchedulerObserver& observer_;

  mutable std::mutex mu_;  // guards waiting_, stopping_, refusing_, and wakeups
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Pending>> waiting_;
  bool refusing_ = false;
  bool stopping_ = false;
  bool aborting_ = false;
  std::atomic<int64_t> running_requests_{0};

  // Engine thread only.
  std::vector<std::unique_ptr<Running>> running_;  // in admission order
  std::optional<InFlight> in_flight_;              // async_decode: the step launched and not yet read
  std::thread thread_;
};

}  // namespace lcllm
