// lcllm's HTTP/1.1 connection handling (E12; replaces cpp-httplib, see docs/DECISIONS.md "Own HTTP front end").
//
// One event-loop thread owns every connection while its request is arriving: it reads with poll(), parses heads
// incrementally (http_request_parser.h) and enforces, per connection,
//   - a deadline for the whole request, head and body, from its first byte (408 when it passes), so a client
//     trickling a byte every few seconds is gone after request_timeout_s however it paces itself;
//   - an idle deadline between keep-alive requests;
// and, over all connections, a total and a per-client-address limit. At the total limit a new connection evicts
// the connection that has been waiting longest for its request to arrive, so stalled clients can never lock new
// ones out. Requests the routes can refuse from the head (before_body) are answered before a body byte is read.
//
// Complete requests go to a fixed pool of worker threads, except the cheap routes (answer_inline: /health,
// /metrics, the model list), which the loop answers itself, so they respond while every worker is streaming.
// Workers write with a bounded wait (write_timeout_s) and hand keep-alive connections back to the loop, which then
// parses any request pipelined behind the answered one; responses leave in request order (RFC 9112 §9.3.2).
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "server/http_message.h"
#include "server/http_request_parser.h"

namespace lcllm {

struct HttpListenerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                          // 0: any free port
  int workers = 64;                         // threads running request handlers
  size_t max_connections = 1024;            // open connections, all clients (capped by the open-file limit)
  size_t max_connections_per_client = 256;  // open connections from one client address (0: no limit)
  int request_timeout_s = 30;               // to receive a whole request, head and body
  int keep_alive_timeout_s = 5;             // idle between two requests of a connection
  int write_timeout_s = 30;                 // a response (or one streamed piece) that cannot be sent this long
  size_t max_queued = 256;                  // complete requests waiting for a worker; beyond: 503
  HttpParseLimits limits;
};

struct HttpRoutes {
  // After the head, before any of the body: a response here refuses the request (sent, then the connection
  // closes, since its unread body must not be taken for the next request). Runs on the loop thread: cheap.
  std::function<std::optional<HttpResponse>(const HttpRequest&)> before_body;
  // True: `handle` runs on the loop thread (must be cheap and never block).
  std::function<bool(const HttpRequest&)> answer_inline;
  std::function<HttpResponse(HttpRequest&)> handle;
  // The response for an error the front end itself detects (parse errors, 408, 503 when saturated, 500).
  std::function<HttpResponse(int status, const std::string& message)> error;
  std::function<void(int status)> on_response;        // every response sent (metrics)
  std::function<void(const char* reason)> on_dropped;  // a connection closed by a limit: timeout|evicted|limit
};

class HttpListener {
 public:
  HttpListener(HttpListenerOptions options, HttpRoutes routes);
  ~HttpListener();
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // Binds, then starts the loop and the workers. Throws lcllm::Error when the address cannot be bound or the
  // threads cannot be created (nothing is left running then).
  void start();
  int port() const { return port_; }
  size_t open_connections() const;
  // Stops accepting, closes connections that are not being answered, and returns when every worker has finished
  // the response it was writing.
  void stop();

 private:
  struct State;
  std::unique_ptr<State> state_;
  int port_ = 0;
};

}  // namespace lcllm
