#include "server/http_server.h"

#include <cctype>

#include <spdlog/spdlog.h>

#include "lcllm/error.h"

namespace lcllm {

using ojson = nlohmann::ordered_json;

namespace {

HttpResponse error_response(const RequestError& e) {
  HttpResponse r;
  r.status = e.status;
  r.body = json_dump(openai_error(e));
  return r;
}

HttpResponse json_response(const ojson& j) {
  HttpResponse r;
  r.body = json_dump(j);
  return r;
}

// Compares every byte (no early exit), so response time does not tell how much of a key matched.
bool same_key(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= (unsigned char)(a[i] ^ b[i]);
  return diff == 0;
}

const char* kNoRoute = "no such route (see /v1/models, /v1/completions, /v1/chat/completions)";
const std::string kModelPrefix = "/v1/models/";

bool is_get(const HttpRequest& r) { return r.method == "GET" || r.method == "HEAD"; }

}  // namespace

HttpServer::HttpServer(const HttpServerOptions& options, ServerMetrics& metrics)
    : options_(options), metrics_(metrics) {
  HttpListenerOptions lo;
  lo.host = options_.host;
  lo.port = options_.port;
  lo.workers = std::max(4, options_.threads);
  lo.max_connections = options_.max_connections;
  lo.max_connections_per_client = options_.max_connections_per_client;
  lo.request_timeout_s = options_.read_timeout_s;
  lo.write_timeout_s = options_.read_timeout_s;
  lo.max_queued = size_t(lo.workers) * 4;
  lo.limits.max_body_bytes = options_.max_body_bytes;
  listener_ = std::make_unique<HttpListener>(lo, routes());
}

HttpServer::~HttpServer() { stop(); }

bool HttpServer::authorized(const std::string* header) const {
  if (options_.api_keys.empty()) return true;
  if (!header) return false;
  // RFC 6750 §2.1 / RFC 9110 §11.1: the scheme name is case-insensitive ("bearer", "BEARER" are "Bearer").
  static const std::string kBearer = "bearer ";
  if (header->size() <= kBearer.size()) return false;
  for (size_t i = 0; i < kBearer.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>((*header)[i])) != kBearer[i]) return false;
  }
  const std::string key = header->substr(kBearer.size());
  bool ok = false;
  for (const std::string& k : options_.api_keys) ok = same_key(key, k) || ok;
  return ok;
}

std::optional<HttpResponse> HttpServer::before_body(const HttpRequest& head) const {
  // Authentication before routing, so every /v1 route (unknown ones included) needs the key.
  if (head.path.rfind("/v1/", 0) == 0 && !authorized(head.header("authorization"))) {
    return error_response(RequestError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'", "",
                                       "invalid_api_key"));
  }
  const std::string& p = head.path;
  const bool get_route = p == "/health" || p == "/metrics" || p == "/v1/models" ||
                         (p.rfind(kModelPrefix, 0) == 0 && p.size() > kModelPrefix.size());
  const bool post_route = p == "/v1/completions" || p == "/v1/chat/completions";
  if (!get_route && !post_route) return error_response(RequestError(404, kNoRoute));
  if (head.method == "OPTIONS") return std::nullopt;
  if ((get_route && !is_get(head)) || (post_route && head.method != "POST")) {
    HttpResponse r = error_response(RequestError(405, "method " + error_excerpt(head.method, 16) +
                                                          " is not allowed on " + p));
    r.headers.emplace_back("Allow", get_route ? "GET, HEAD, OPTIONS" : "POST, OPTIONS");
    return r;
  }
  return std::nullopt;
}

std::optional<HttpResponse> HttpServer::not_ready() const {
  if (ctx_.load() && !draining_.load()) return std::nullopt;
  HttpResponse r = error_response(RequestError(
      503, draining_.load() ? "the server is shutting down" : "the model is loading", "", "unavailable"));
  r.headers.emplace_back("Retry-After", "5");
  return r;
}

HttpRoutes HttpServer::routes() {
  HttpRoutes r;
  r.before_body = [this](const HttpRequest& head) { return before_body(head); };
  // Everything but the completions is cheap and never waits: answered by the connection loop itself.
  r.answer_inline = [](const HttpRequest& req) { return req.method != "POST"; };
  r.handle = [this](HttpRequest& req) { return handle(req); };
  r.error = [](int status, const std::string& message) {
    std::string code;
    if (status == 411) code = "length_required";
    if (status == 415) code = "unsupported_media_type";
    if (status == 408) code = "request_timeout";
    return error_response(RequestError(status, message, "", code));
  };
  r.on_response = [this](int status) { metrics_.count_response(status); };
  r.on_dropped = [this](const char* reason) { metrics_.count_dropped_connection(reason); };
  return r;
}

HttpResponse HttpServer::handle(HttpRequest& req) {
  const std::string& p = req.path;
  if (req.method == "OPTIONS") {
    HttpResponse r;
    r.status = 204;
    r.content_type.clear();
    r.headers.emplace_back("Allow", p.rfind("/v1/c", 0) == 0 ? "POST, OPTIONS" : "GET, HEAD, OPTIONS");
    return r;
  }
  if (p == "/health") {
    const bool ready = ctx_.load() != nullptr && !draining_.load();
    const char* state = draining_.load() ? "shutting_down" : ready ? "ok" : "loading";
    HttpResponse r = json_response(ojson{{"status", state}});
    r.status = ready ? 200 : 503;
    return r;
  }
  if (p == "/metrics") {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    metrics_.set_open_connections(int64_t(listener_->open_connections()));
    r.body = metrics_.render();
    return r;
  }
  if (auto refusal = not_ready()) return *refusal;
  if (p == "/v1/models") return json_response(models_list(ctx_.load()->model_name, created_, max_model_len_));
  if (p.rfind(kModelPrefix, 0) == 0) {
    const std::string id = p.substr(kModelPrefix.size());
    if (id != ctx_.load()->model_name) {
      return error_response(RequestError(404, "the model '" + error_excerpt(id) + "' does not exist", "model",
                                         "model_not_found"));
    }
    return json_response(models_list(id, created_, max_model_len_)["data"][0]);
  }
  return completion(req, p == "/v1/chat/completions");
}

HttpResponse HttpServer::completion(const HttpRequest& req, bool chat) {
  const ServeContext& ctx = *ctx_.load();
  try {
    PreparedCompletion p = completion_prepare(ctx, req.body, chat);
    if (!p.request.stream) return json_response(completion_collect(ctx, p, req.client_gone));
    auto stream = std::make_shared<CompletionStream>(ctx, std::move(p));
    HttpResponse r;
    r.content_type = "text/event-stream";
    r.headers.emplace_back("Cache-Control", "no-cache");
    // The listener calls this until it returns false; dropping it (client gone, write timeout, end) destroys the
    // stream, whose destructor cancels the request if it has not finished.
    r.stream = [stream](std::string& out) { return stream->next(out); };
    return r;
  } catch (const RequestError& e) {
    HttpResponse r = error_response(e);
    if (e.status == 429) r.headers.emplace_back("Retry-After", std::to_string(ctx.scheduler->retry_after_seconds()));
    return r;
  } catch (const Error& e) {
    return error_response(RequestError(400, e.what()));
  }
}

void HttpServer::start() {
  listener_->start();
  port_ = listener_->port();
}

void HttpServer::set_ready(const ServeContext* ctx, int32_t max_model_len, int64_t created) {
  max_model_len_ = max_model_len;
  created_ = created;
  ctx_.store(ctx);
}

void HttpServer::stop() { listener_->stop(); }

}  // namespace lcllm
