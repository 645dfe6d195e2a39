// The HTTP request head parser (server/http_request_parser.h): RFC 9112 framing, limits, and incremental input
// fed a byte at a time. The live-server side of the same rules is tests/server/test_http_front_end.py.
#include <catch2/catch.hpp>

#include "server/http_request_parser.h"

using namespace lcllm;

namespace {

HttpParseLimits small_limits() {
  HttpParseLimits l;
  l.max_request_line = 64;
  l.max_head_bytes = 256;
  l.max_fields = 4;
  l.max_body_bytes = 1000;
  return l;
}

// Status of a complete head (0 when it parses).
int status_of(const std::string& head) {
  HttpHeadParser p(small_limits());
  const HttpHeadParser::Result r = p.parse(head);
  if (r == HttpHeadParser::Result::kNeedMore) return -1;
  return r == HttpHeadParser::Result::kDone ? 0 : p.error().status;
}

}  // namespace

TEST_CASE("a request head parses into method, path, version, fields and the body length", "[http]") {
  HttpHeadParser p(small_limits());
  const std::string in = "\r\nPOST /v1/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length:  12 \r\n"
                         "X-Y:\tv w\t\r\n\r\n{\"prompt\":1}GET";
  REQUIRE(p.parse(in) == HttpHeadParser::Result::kDone);
  const HttpRequest& r = p.request();
  CHECK(r.method == "POST");
  CHECK(r.target == "/v1/completions?x=1");
  CHECK(r.path == "/v1/completions");
  CHECK(r.minor_version == 1);
  CHECK(r.content_length == 12);
  CHECK(*r.header("x-y") == "v w");
  CHECK(r.keep_alive());
  CHECK(in.substr(p.head_bytes(), 12) == "{\"prompt\":1}");  // the body starts right after the head
}

TEST_CASE("an absolute-form target is served by its path", "[http]") {
  HttpHeadParser p(small_limits());
  REQUIRE(p.parse("GET HTTP://example.com/v1/models?a=b HTTP/1.1\r\nHost: a\r\n\r\n") ==
          HttpHeadParser::Result::kDone);
  CHECK(p.request().path == "/v1/models");
  p.reset();
  REQUIRE(p.parse("GET http://example.com HTTP/1.1\r\nHost: a\r\n\r\n") == HttpHeadParser::Result::kDone);
  CHECK(p.request().path == "/");
}

TEST_CASE("a head fed one byte at a time needs more until its empty line", "[http]") {
  const std::string in = "GET /health HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n";
  HttpHeadParser p(small_limits());
  std::string buffer;
  for (size_t i = 0; i + 1 < in.size(); ++i) {
    buffer += in[i];
    REQUIRE(p.parse(buffer) == HttpHeadParser::Result::kNeedMore);
  }
  buffer += in.back();
  REQUIRE(p.parse(buffer) == HttpHeadParser::Result::kDone);
  CHECK(p.head_bytes() == in.size());
  CHECK_FALSE(p.request().keep_alive());
  p.reset();
  REQUIRE(p.parse("GET / HTTP/1.0\r\n\r\n") == HttpHeadParser::Result::kDone);
  CHECK_FALSE(p.request().keep_alive());  // HTTP/1.0 answers once and closes
}

TEST_CASE("framing errors get the status RFC 9112 and the limits call for", "[http]") {
  CHECK(status_of("GET / HTTP/1.1\r\n\r\n") == 400);                                 // no Host
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == 400);           // two Host
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n") == 400);          // obs-fold
  CHECK(status_of("GET / HTTP/1.1\r\nHost : a\r\n\r\n") == 400);                    // space before the colon
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n") == 400);               // bare LF
  CHECK(status_of("GET  / HTTP/1.1\r\nHost: a\r\n\r\n") == 400);                    // two spaces
  CHECK(status_of("G(T / HTTP/1.1\r\nHost: a\r\n\r\n") == 400);                     // method not a token
  CHECK(status_of("GET / HTTP/2.0\r\nHost: a\r\n\r\n") == 505);
  CHECK(status_of("GET ?x HTTP/1.1\r\nHost: a\r\n\r\n") == 400);                     // no path
  CHECK(status_of("GET host:80 HTTP/1.1\r\nHost: a\r\n\r\n") == 400);                // authority-form
  CHECK(status_of("GET * HTTP/1.1\r\nHost: a\r\n\r\n") == 400);                      // '*' is OPTIONS only
  CHECK(status_of("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n") == 0);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n") == 411);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n") == 0);  // same value twice: fine
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n") == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n") == 413);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nContent-Encoding: gzip\r\n\r\n") == 415);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nContent-Encoding: Identity\r\n\r\n") == 0);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n") == 0);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nExpect: x\r\n\r\n") == 417);
  CHECK(status_of("GET /" + std::string(100, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n") == 414);
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n") == 431);  // 5 fields
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nA: " + std::string(300, 'v') + "\r\n\r\n") == 431);
}

TEST_CASE("an endless head is refused at the limit, before its end arrives", "[http]") {
  CHECK(status_of("GET /" + std::string(100, 'a')) == 414);                            // no CRLF yet
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\nA: " + std::string(300, 'v')) == 431);  // no empty line yet
  CHECK(status_of("GET / HTTP/1.1\r\nHost: a\r\n") == -1);
}
