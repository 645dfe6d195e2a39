// The HTTP front end (cpp-httplib): routes, API-key check, limits, OpenAI-shaped errors for every failure.
//
//   GET  /health               200 {"status":"ok"} when ready, 503 while loading or shutting down; no key
//   GET  /metrics              Prometheus text; no key (as vLLM: scrapers rarely carry one)
//   GET  /v1/models            the served model                                    (key when one is set)
//   POST /v1/completions       text completion, stream or not                      (key when one is set)
//   POST /v1/chat/completions  chat completion through the model's chat template   (key when one is set)
//
// Hardening: bodies over max_body_bytes get 413 before they are read; request lines and headers over cpp-httplib's
// 8 KiB limits are refused by the library; reads time out (slow clients) after read_timeout_s; a thread pool
// larger than the batch keeps streams and slow clients from starving new requests.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "server/completion.h"
#include "server/metrics.h"

namespace httplib {
class Server;
}

namespace lcllm {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                    // 0: any free port (see port())
  std::vector<std::string> api_keys;  // empty: no key needed
  size_t max_body_bytes = 8u << 20;
  int read_timeout_s = 10;
  int threads = 64;
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
  void install_routes();
  bool authorized(const std::string& authorization_header) const;
  // True for the (method, path) pairs install_routes() serves.
  static bool route_exists(const std::string& method, const std::string& path);

  HttpServerOptions options_;
  ServerMetrics& metrics_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<const ServeContext*> ctx_{nullptr};
  std::atomic<bool> draining_{false};
  std::atomic<bool> listening_done_{false};
  int32_t max_model_len_ = 0;
  int64_t created_ = 0;
};

}  // namespace lcllm
