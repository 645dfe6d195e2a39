// The request head parser of lcllm's HTTP front end (RFC 9112 §2–§6), pure and incremental so that it can be
// fuzzed (tests/fuzz/fuzz_http.cpp) and fed a byte at a time by a slow client without rescanning.
//
// Framing rules, chosen for a server facing hostile clients (E12, docs/DECISIONS.md "Own HTTP front end"):
//   - bodies only with Content-Length; any Transfer-Encoding is refused (411, or 400 together with Content-Length,
//     RFC 9112 §6.1: a request smuggling signal), so the body limit holds before a body byte is read;
//   - differing Content-Length values (repeated fields or a list) are 400 (§6.3);
//   - Content-Encoding other than identity is 415: nothing is ever inflated;
//   - lines end in CRLF; a bare CR or LF, obs-fold (a line starting with whitespace), whitespace before a field's
//     colon or a field name that is not a token is 400 (§5.1, §5.2);
//   - HTTP/1.1 needs exactly one Host (§3.2); versions other than 1.0/1.1 are 505;
//   - limits: request line (414), head bytes and field count (431), announced body (413).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "server/http_message.h"

namespace lcllm {

struct HttpParseLimits {
  size_t max_request_line = 8 * 1024;  // bytes of "METHOD target HTTP/1.1"
  size_t max_head_bytes = 32 * 1024;   // request line + every field + the empty line
  size_t max_fields = 100;
  size_t max_body_bytes = 8u << 20;
};

struct HttpParseError {
  int status = 0;  // 0: no error
  std::string message;
};

class HttpHeadParser {
 public:
  enum class Result { kNeedMore, kDone, kError };
  explicit HttpHeadParser(const HttpParseLimits& limits) : limits_(limits) {}

  // Looks at `buffer` (everything received on the connection since the previous request ended); `buffer` may only
  // grow between calls until kDone/kError, then reset() before the next request. kDone: `request()` holds the head
  // (no body) and `head_bytes()` how many bytes of `buffer` it took; kError: `error()` says why.
  Result parse(std::string_view buffer);
  void reset();

  HttpRequest& request() { return request_; }
  size_t head_bytes() const { return head_bytes_; }
  const HttpParseError& error() const { return error_; }

 private:
  Result fail(int status, std::string message);
  Result parse_head(std::string_view head);  // the head without its final CRLF CRLF
  bool parse_request_line(std::string_view line);
  bool parse_field(std::string_view line);
  bool finish_framing();

  HttpParseLimits limits_;
  size_t scanned_ = 0;  // bytes of the buffer already searched for the end of the head
  size_t head_bytes_ = 0;
  HttpRequest request_;
  HttpParseError error_;
};

}  // namespace lcllm
