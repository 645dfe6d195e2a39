#include "server/metrics.h"

#include <cstdio>

namespace lcllm {

namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void header(std::string& out, const std::string& name, const char* type, const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(const std::string& name, const std::string& help, std::string& out) const {
  header(out, name, "histogram", help);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{le=\"" + num(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum " + num(sum_) + "\n" + name + "_count " + std::to_string(count_) + "\n";
}

// Bucket bounds in seconds: vLLM's TTFT/inter-token/e2e choices, spanning a CPU test model to a long H100 prefill.
ServerMetrics::ServerMetrics()
    : ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80}),
      inter_token_({0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4,
                    0.5, 0.75, 1, 2.5}),
      e2e_({0.01, 0.03, 0.1, 0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240}) {}

void ServerMetrics::set_gauges(const MetricsGauges& g) {
  std::lock_guard<std::mutex> lock(mu_);
  gauges_ = g;
}
void ServerMetrics::add_prompt_tokens(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += n;
}
void ServerMetrics::add_generation_tokens(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  generation_tokens_ += n;
}
void ServerMetrics::observe_ttft(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_.observe(s);
}
void ServerMetrics::observe_inter_token(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  inter_token_.observe(s);
}
void ServerMetrics::observe_e2e(double s, const std::string& finish_reason) {
  std::lock_guard<std::mutex> lock(mu_);
  e2e_.observe(s);
  ++finished_[finish_reason];
}
void ServerMetrics::count_response(int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++responses_[status];
}
void ServerMetrics::count_dropped_connection(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++dropped_[reason];
}
void ServerMetrics::set_open_connections(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  open_connections_ = n;
}

std::string ServerMetrics::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  header(out, "lcllm_num_requests_running", "gauge", "Requests whose sequences are in the running batch.");
  out += "lcllm_num_requests_running " + std::to_string(gauges_.requests_running) + "\n";
  header(out, "lcllm_num_requests_waiting", "gauge", "Requests queued for admission.");
  out += "lcllm_num_requests_waiting " + std::to_string(gauges_.requests_waiting) + "\n";
  header(out, "lcllm_kv_cache_usage_perc", "gauge", "Fraction of KV cache pages in use (0 to 1).");
  const double usage = gauges_.kv_pages_total ? double(gauges_.kv_pages_used) / double(gauges_.kv_pages_total) : 0;
  out += "lcllm_kv_cache_usage_perc " + num(usage) + "\n";
  header(out, "lcllm_kv_cache_pages_used", "gauge", "KV cache pages held by live sequences.");
  out += "lcllm_kv_cache_pages_used " + std::to_string(gauges_.kv_pages_used) + "\n";
  header(out, "lcllm_kv_cache_pages_reserved", "gauge",
         "KV cache pages promised to running requests (prompt + max_tokens) and not yet taken.");
  out += "lcllm_kv_cache_pages_reserved " + std::to_string(gauges_.kv_pages_reserved) + "\n";
  header(out, "lcllm_kv_cache_pages_total", "gauge", "KV cache pages in the pool.");
  out += "lcllm_kv_cache_pages_total " + std::to_string(gauges_.kv_pages_total) + "\n";
  header(out, "lcllm_prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.");
  out += "lcllm_prefix_cache_queries_total " + std::to_string(gauges_.prefix_query_tokens) + "\n";
  header(out, "lcllm_prefix_cache_hits_total", "counter", "Prompt tokens found in the prefix cache (not prefilled).");
  out += "lcllm_prefix_cache_hits_total " + std::to_string(gauges_.prefix_hit_tokens) + "\n";
  header(out, "lcllm_prefix_cache_evictions_total", "counter", "Cached prefix pages reused for other data.");
  out += "lcllm_prefix_cache_evictions_total " + std::to_string(gauges_.prefix_evictions) + "\n";
  header(out, "lcllm_prefix_cache_pages", "gauge", "KV pages registered in the prefix cache (in use or idle).");
  out += "lcllm_prefix_cache_pages " + std::to_string(gauges_.prefix_cached_pages) + "\n";
  header(out, "lcllm_prompt_tokens_total", "counter", "Prompt tokens prefilled.");
  out += "lcllm_prompt_tokens_total " + std::to_string(prompt_tokens_) + "\n";
  header(out, "lcllm_generation_tokens_total", "counter", "Tokens generated.");
  out += "lcllm_generation_tokens_total " + std::to_string(generation_tokens_) + "\n";
  header(out, "lcllm_request_success_total", "counter", "Finished requests by finish reason.");
  for (const auto& [reason, n] : finished_) {
    out += "lcllm_request_success_total{finished_reason=\"" + reason + "\"} " + std::to_string(n) + "\n";
  }
  header(out, "lcllm_http_responses_total", "counter", "HTTP responses by status code.");
  for (const auto& [code, n] : responses_) {
    out += "lcllm_http_responses_total{code=\"" + std::to_string(code) + "\"} " + std::to_string(n) + "\n";
  }
  header(out, "lcllm_http_connections_open", "gauge", "Open HTTP connections.");
  out += "lcllm_http_connections_open " + std::to_string(open_connections_) + "\n";
  header(out, "lcllm_http_connections_dropped_total", "counter",
         "HTTP connections closed by a limit: timeout (request not in time), evicted (made room), limit (refused).");
  for (const auto& [reason, n] : dropped_) {
    out += "lcllm_http_connections_dropped_total{reason=\"" + reason + "\"} " + std::to_string(n) + "\n";
  }
  ttft_.render("lcllm_time_to_first_token_seconds", "Time from arrival to the first generated token.", out);
  inter_token_.render("lcllm_inter_token_latency_seconds", "Time between consecutive generated tokens.", out);
  e2e_.render("lcllm_e2e_request_latency_seconds", "Time from arrival to the last token of a request.", out);
  return out;
}

}  // namespace lcllm
