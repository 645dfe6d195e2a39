#include "server/http_server.h"

#include <cctype>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "lcllm/error.h"

namespace lcllm {

using ojson = nlohmann::ordered_json;

namespace {

void send_error(httplib::Response& res, const RequestError& e) {
  res.status = e.status;
  res.set_content(json_dump(openai_error(e)), "application/json");
}

void send_json(httplib::Response& res, const ojson& j) { res.set_content(json_dump(j), "application/json"); }

// Compares every byte (no early exit), so response time does not tell how much of a key matched.
bool same_key(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= (unsigned char)(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

HttpServer::HttpServer(const HttpServerOptions& options, ServerMetrics& metrics)
    : options_(options), metrics_(metrics), server_(std::make_unique<httplib::Server>()) {
  const int threads = std::max(4, options_.threads);
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  server_->set_payload_max_length(options_.max_body_bytes);
  server_->set_read_timeout(options_.read_timeout_s, 0);
  server_->set_write_timeout(options_.read_timeout_s, 0);
  server_->set_keep_alive_timeout(5);
  install_routes();
}

HttpServer::~HttpServer() { stop(); }

bool HttpServer::authorized(const std::string& header) const {
  if (options_.api_keys.empty()) return true;
  // RFC 6750 §2.1 / RFC 9110 §11.1: the scheme name is case-insensitive ("bearer", "BEARER" are "Bearer").
  static const std::string kBearer = "bearer ";
  if (header.size() <= kBearer.size()) return false;
  for (size_t i = 0; i < kBearer.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kBearer[i]) return false;
  }
  const std::string key = header.substr(kBearer.size());
  bool ok = false;
  for (const std::string& k : options_.api_keys) ok = same_key(key, k) || ok;
  return ok;
}

bool HttpServer::route_exists(const std::string& method, const std::string& path) {
  // The routes install_routes() serves; anything else is refused before its body is read.
  if (method == "GET" || method == "HEAD") {
    return path == "/health" || path == "/metrics" || path == "/v1/models" ||
           (path.rfind("/v1/models/", 0) == 0 && path.size() > std::string("/v1/models/").size());
  }
  if (method == "POST") return path == "/v1/completions" || path == "/v1/chat/completions";
  return method == "OPTIONS";  // the library answers these itself
}

void HttpServer::install_routes() {
  httplib::Server& s = *server_;
  // Runs after the headers and before the library reads a body (E12): everything that refuses a request decides
  // here, so a refused request's body is never read, inflated or buffered. A refusal closes the connection (its
  // unread body must not be parsed as the next request).
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    auto refuse = [&res](const RequestError& e) {
      send_error(res, e);
      res.set_header("Connection", "close");
      return httplib::Server::HandlerResponse::Handled;
    };
    // Framing (RFC 9112 §6.1, §6.3): differing Content-Length values, or Content-Length with Transfer-Encoding,
    // are unrecoverable; chunked request bodies are refused (OpenAI clients send Content-Length), so the body
    // limit holds before a byte of the body is read.
    const size_t n_length = req.get_header_value_count("Content-Length");
    for (size_t i = 1; i < n_length; ++i) {
      if (req.get_header_value("Content-Length", i) != req.get_header_value("Content-Length", 0)) {
        return refuse(RequestError(400, "conflicting Content-Length headers", "", "bad_framing"));
      }
    }
    if (req.has_header("Transfer-Encoding")) {
      if (n_length > 0) {
        return refuse(RequestError(400, "Content-Length together with Transfer-Encoding", "", "bad_framing"));
      }
      return refuse(RequestError(411, "send the body with a Content-Length (chunked request bodies are not accepted)",
                                 "", "length_required"));
    }
    // Compressed bodies would be inflated by the HTTP library before any limit applies: refused.
    if (req.has_header("Content-Encoding") && req.get_header_value("Content-Encoding") != "identity") {
      return refuse(RequestError(415, "compressed request bodies (Content-Encoding: " +
                                          error_excerpt(req.get_header_value("Content-Encoding"), 32) +
                                          ") are not accepted; send the body uncompressed",
                                 "", "unsupported_media_type"));
    }
    // Authentication before routing, so every /v1 route (unknown ones included) needs the key.
    if (req.path.rfind("/v1/", 0) == 0 && !authorized(req.get_header_value("Authorization"))) {
      return refuse(RequestError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'", "",
                                 "invalid_api_key"));
    }
    if (!route_exists(req.method, req.path)) {
      return refuse(RequestError(404, "no such route (see /v1/models, /v1/completions, /v1/chat/completions)"));
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics_.count_response(res.status);
    spdlog::debug("{} {} -> {}", req.method, req.path, res.status);
  });
  // Whatever the library or a route left without a body (404, 413, 400 on a bad request line) gets OpenAI's shape.
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = "HTTP " + std::to_string(res.status);
    if (res.status == 404) message = "no such route (see /v1/models, /v1/completions, /v1/chat/completions)";
    if (res.status == 413) message = "the request body is too large";
    if (res.status == 405) message = "method not allowed on this route";
    send_error(res, RequestError(res.status, message));
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("unhandled exception in a request handler: {}", what);
    send_error(res, RequestError(500, "internal server error", "", "internal_error"));
  });

  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const bool ready = ctx_.load() != nullptr && !draining_.load();
    res.status = ready ? 200 : 503;
    const char* state = draining_.load() ? "shutting_down" : ready ? "ok" : "loading";
    send_json(res, ojson{{"status", state}});
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.render(), "text/plain; version=0.0.4");
  });
  auto not_ready = [this](httplib::Response& res) {
    if (ctx_.load() && !draining_.load()) return false;
    send_error(res, RequestError(503, draining_.load() ? "the server is shutting down" : "the model is loading",
                                 "", "unavailable"));
    res.set_header("Retry-After", "5");
    return true;
  };
  s.Get("/v1/models", [this, not_ready](const httplib::Request&, httplib::Response& res) {
    if (not_ready(res)) return;
    send_json(res, models_list(ctx_.load()->model_name, created_, max_model_len_));
  });
  s.Get(R"(/v1/models/(.+))", [this, not_ready](const httplib::Request& req, httplib::Response& res) {
    if (not_ready(res)) return;
    const std::string id = req.matches[1];
    if (id != ctx_.load()->model_name) {
      return send_error(res, RequestError(404, "the model '" + error_excerpt(id) + "' does not exist", "model",
                                          "model_not_found"));
    }
    send_json(res, models_list(id, created_, max_model_len_)["data"][0]);
  });
  for (const bool chat : {false, true}) {
    s.Post(chat ? "/v1/chat/completions" : "/v1/completions",
           [this, chat, not_ready](const httplib::Request& req, httplib::Response& res) {
             if (not_ready(res)) return;
             const ServeContext& ctx = *ctx_.load();
             try {
               PreparedCompletion p = completion_prepare(ctx, req.body, chat);
               if (!p.request.stream) {
                 return send_json(res, completion_collect(ctx, p));
               }
               auto stream = std::make_shared<CompletionStream>(ctx, std::move(p));
               res.set_header("Cache-Control", "no-cache");
               res.set_chunked_content_provider(
                   "text/event-stream",
                   [stream](size_t, httplib::DataSink& sink) {
                     std::string out;
                     bool more = false;
                     try {  // nothing may escape into cpp-httplib's write loop
                       more = stream->next(out);
                     } catch (const std::exception& e) {
                       spdlog::error("stream failed: {}", e.what());
                       return false;  // closes the connection; the stream's destructor cancels the request
                     }
                     // A closed connection ends the provider; the stream's destructor cancels the request.
                     if (!sink.is_writable()) return false;
                     if (!out.empty() && !sink.write(out.data(), out.size())) return false;
                     if (!more) sink.done();
                     return true;
                   },
                   [stream](bool) mutable { stream.reset(); });
             } catch (const RequestError& e) {
               if (e.status == 429) res.set_header("Retry-After", std::to_string(ctx.scheduler->retry_after_seconds()));
               send_error(res, e);
             } catch (const Error& e) {
               send_error(res, RequestError(400, e.what()));
             }
           });
  }
}

void HttpServer::start() {
  if (options_.port == 0) {
    port_ = server_->bind_to_any_port(options_.host);
  } else {
    port_ = server_->bind_to_port(options_.host, options_.port) ? options_.port : -1;
  }
  if (port_ <= 0) {
    throw Error(ErrorKind::ERROR_KIND_IO, "cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                                              " (address in use, or not an address of this machine)");
  }
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    listening_done_.store(true);
  });
}

void HttpServer::set_ready(const ServeContext* ctx, int32_t max_model_len, int64_t created) {
  max_model_len_ = max_model_len;
  created_ = created;
  ctx_.store(ctx);
}

void HttpServer::stop() {
  if (!thread_.joinable()) return;
  // httplib's stop() does nothing until listen has begun, which may be just after start() returned: repeat it.
  while (!listening_done_.load()) {
    server_->stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  thread_.join();
}

}  // namespace lcllm
