// HTTP/1.1 messages as lcllm's own front end sees them (RFC 9110 semantics, RFC 9112 framing): a parsed request,
// a response (whole, or streamed as server-sent events), and the response head's serialization. No sockets here.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lcllm {

struct HttpRequest {
  std::string method;     // as sent (methods are case-sensitive, RFC 9110 §9.1)
  std::string target;     // request-target as sent, e.g. "/v1/models?x=1"
  std::string path;       // target up to '?'
  int minor_version = 1;  // HTTP/1.<minor_version>: 0 or 1
  std::vector<std::pair<std::string, std::string>> headers;  // [n_fields] (lower-case name, value without OWS)
  size_t content_length = 0;  // body bytes announced (0 without Content-Length)
  bool expect_continue = false;  // "Expect: 100-continue"
  std::string body;           // [content_length] bytes, once read
  // True once the client has closed the connection (set by the listener for handlers that run long: a non-streamed
  // completion polls it and cancels its request, E11 item 5). Null: never asked.
  std::function<bool()> client_gone;

  // The first value of a field (lower-case name), or nullptr.
  const std::string* header(std::string_view lower_name) const;
  size_t header_count(std::string_view lower_name) const;
  // HTTP/1.1 without "Connection: close". HTTP/1.0 connections always close after one response (simpler than
  // its keep-alive extension, and no current client needs it).
  bool keep_alive() const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // [n] extra fields
  std::string body;
  // A streamed body (server-sent events): called until it returns false; each call appends the next piece to
  // `out` (possibly nothing while it waits for tokens). Sent with the chunked transfer coding on HTTP/1.1 and
  // delimited by closing the connection on HTTP/1.0. Destroying the response drops the producer (and with it the
  // request it streams, which the scheduler then cancels).
  std::function<bool(std::string& out)> stream;
  bool close = false;  // "Connection: close" and close after sending
};

// "OK", "Not Found", ...; "Unknown" for codes lcllm never sends.
const char* http_reason_phrase(int status);

// Status line and header fields up to and including the empty line: Content-Length for a whole body, chunked
// transfer coding for a stream on HTTP/1.1 (none on HTTP/1.0, where closing ends the body). The caller leaves the
// body out for HEAD.
std::string http_response_head(const HttpResponse& r, int minor_version, bool close);

}  // namespace lcllm
