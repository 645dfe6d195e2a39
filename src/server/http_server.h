// The HTTP front end: routes, API-key check, limits, OpenAI-shaped errors for every failure, over lcllm's own
// HTTP/1.1 connection handling (http_listener.h).
//
//   GET  /health               200 {"status":"ok"} when ready, 503 while loading or shutting down; no key
//   GET  /metrics              Prometheus text; no key (as vLLM: scrapers rarely carry one)
//   GET  /v1/models            the served model                                    (key when one is set)
//   POST /v1/completions       text completion, stream or not                      (key when one is set)
//   POST /v1/chat/completions  chat completion through the model's chat template   (key when one is set)
//
// Hardening (E12): everything that refuses a request (framing, size, encoding, key, route) decides from the head,
// before a body byte is read; a whole request must arrive within read_timeout_s; connections are limited in total
// and per client address, the oldest stalled one making room for a new one; /health, /metrics and /v1/models are
// answered by the connection loop itself, so they respond while every worker is busy.
#pragma once
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/completion.h"
#include "server/http_listener.h"
#include "server/metrics.h"

namespace lcllm {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                    // 0: any free port (see port())
  std::vector<std::string> api_keys;  // empty: no key needed
  size_t max_body_bytes = 8u << 20;
  int read_timeout_s = 30;                  // a whole request, head and body
  int threads = 64;                         // workers answering completions
  size_t max_connections = 1024;            // all clients together
  size_t max_connections_per_client = 256;  // one client address (0: no limit)
};

class HttpServer {
 public:
  HttpServer(const HttpServerOptions& options, ServerMetrics& metrics);
  ~HttpServer();

  // Binds and starts serving on a background thread: /health says 503 until set_ready(). Throws lcllm::Error
  // (ERROR_KIND_IO) when the address cannot be bound.
  void start();
  int port() const { return port_; }
  // The model is loaded: completion routes open. `ctx` must outlive the server.
  void set_ready(const ServeContext* ctx, int32_t max_model_len, int64_t created);
  // /health turns 503 ("shutting down") and new completions get 503; running ones go on.
  void set_draining() { draining_.store(true); }
  // Stops accepting and closes the listener; returns when the serving thread has ended.
  void stop();

 private:
  HttpRoutes routes();
  bool authorized(const std::string* authorization_header) const;
  // Refusals decided from the head alone: key, route.
  std::optional<HttpResponse> before_body(const HttpRequest& head) const;
  HttpResponse handle(HttpRequest& req);
  HttpResponse completion(const HttpRequest& req, bool chat);
  std::optional<HttpResponse> not_ready() const;

  HttpServerOptions options_;
  ServerMetrics& metrics_;
  std::unique_ptr<HttpListener> listener_;
  int port_ = 0;
  std::atomic<const ServeContext*> ctx_{nullptr};
  std::atomic<bool> draining_{false};
  int32_t max_model_len_ = 0;
  int64_t created_ = 0;
};

}  // namespace lcllm
