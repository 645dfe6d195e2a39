// Prometheus metrics of the server (text exposition format 0.0.4), named after vLLM's where one exists so
// existing dashboards map over: requests running/waiting, KV cache usage, prompt/generation token counters,
// time-to-first-token, inter-token and end-to-end latency histograms, HTTP responses by status code.
// Thread-safe: the engine thread observes, HTTP threads count responses and render.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/scheduler.h"

namespace lcllm {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double v);
  // Appends the _bucket/_sum/_count lines of metric `name`.
  void render(const std::string& name, const std::string& help, std::string& out) const;
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;    // [n_buckets] upper bounds, ascending (+Inf implied)
  std::vector<uint64_t> counts_;  // [n_buckets + 1] observations per bucket (not cumulative)
  double sum_ = 0;
  uint64_t count_ = 0;
};

using MetricsGauges = SchedulerGauges;

// Also the scheduler's observer: what the engine thread measures lands here.
class ServerMetrics : public SchedulerObserver {
 public:
  ServerMetrics();

  // SchedulerObserver
  void on_first_token(double seconds) override { observe_ttft(seconds); }
  void on_next_token(double seconds) override { observe_inter_token(seconds); }
  void on_request_end(double seconds, const std::string& reason) override { observe_e2e(seconds, reason); }
  void on_step_tokens(int64_t prompt, int64_t generated) override {
    add_prompt_tokens(prompt);
    add_generation_tokens(generated);
  }
  void on_gauges(const SchedulerGauges& g) override { set_gauges(g); }

  void set_gauges(const MetricsGauges& g);
  void add_prompt_tokens(int64_t n);
  void add_generation_tokens(int64_t n);
  void observe_ttft(double seconds);
  void observe_inter_token(double seconds);
  void observe_e2e(double seconds, const std::string& finish_reason);
  void count_response(int status);
  // A connection the HTTP front end closed because of a limit: "timeout", "evicted" or "limit".
  void count_dropped_connection(const std::string& reason);
  void set_open_connections(int64_t n);

  std::string render() const;

 private:
  mutable std::mutex mu_;
  MetricsGauges gauges_;
  int64_t prompt_tokens_ = 0;
  int64_t generation_tokens_ = 0;
  Histogram ttft_, inter_token_, e2e_;
  std::map<std::string, int64_t> finished_;  // finish reason -> requests
  std::map<int, int64_t> responses_;         // HTTP status -> responses
  std::map<std::string, int64_t> dropped_;   // reason -> connections closed by a limit
  int64_t open_connections_ = 0;
};

}  // namespace lcllm
