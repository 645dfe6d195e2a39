#include "server/http_request_parser.h"

#include <algorithm>
#include <cctype>

namespace lcllm {

namespace {

// tchar of RFC 9110 §5.6.2.
bool is_token_char(unsigned char c) {
  if (std::isalnum(c)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-': case '.': case '^':
    case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is_token_char((unsigned char)c); });
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower((unsigned char)c));
  return out;
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower((unsigned char)x) == std::tolower((unsigned char)y);
         });
}

// 1*DIGIT without overflow; false for anything else ("+1", "1 2", "", 21 digits).
bool parse_decimal(std::string_view s, size_t& out) {
  if (s.empty() || s.size() > 19) return false;
  size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + size_t(c - '0');
  }
  out = v;
  return true;
}

}  // namespace

void HttpHeadParser::reset() {
  scanned_ = 0;
  head_bytes_ = 0;
  request_ = HttpRequest{};
  error_ = HttpParseError{};
}

HttpHeadParser::Result HttpHeadParser::fail(int status, std::string message) {
  error_.status = status;
  error_.message = std::move(message);
  return Result::kError;
}

HttpHeadParser::Result HttpHeadParser::parse(std::string_view buffer) {
  // RFC 9112 §2.2: empty lines before the request line are ignored (clients that add CRLF after a POST body).
  size_t start = 0;
  while (start + 1 < buffer.size() && buffer[start] == '\r' && buffer[start + 1] == '\n') start += 2;
  // Only the bytes that arrived since the last call are searched (a client sending a byte at a time costs O(n)).
  const size_t from = std::max(start, scanned_ >= 3 ? scanned_ - 3 : 0);
  const size_t end = buffer.find("\r\n\r\n", from);
  if (end == std::string_view::npos) {
    scanned_ = buffer.size();
    const size_t first_line_end = buffer.find("\r\n", start);
    if (first_line_end == std::string_view::npos && buffer.size() - start > limits_.max_request_line) {
      return fail(414, "the request line is longer than " + std::to_string(limits_.max_request_line) + " bytes");
    }
    if (buffer.size() - start > limits_.max_head_bytes) {
      return fail(431, "the request head is larger than " + std::to_string(limits_.max_head_bytes) + " bytes");
    }
    return Result::kNeedMore;
  }
  if (end - start + 4 > limits_.max_head_bytes) {
    return fail(431, "the request head is larger than " + std::to_string(limits_.max_head_bytes) + " bytes");
  }
  head_bytes_ = end + 4;
  return parse_head(buffer.substr(start, end - start));
}

HttpHeadParser::Result HttpHeadParser::parse_head(std::string_view head) {
  size_t pos = 0;
  bool first = true;
  while (pos <= head.size()) {
    size_t eol = head.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = head.size();
    const std::string_view line = head.substr(pos, eol - pos);
    if (line.find('\r') != std::string_view::npos || line.find('\n') != std::string_view::npos) {
      return fail(400, "a bare CR or LF in the request head (lines end in CRLF)");
    }
    if (line.find('\0') != std::string_view::npos) return fail(400, "a NUL byte in the request head");
    if (first) {
      if (line.size() > limits_.max_request_line) {
        return fail(414, "the request line is longer than " + std::to_string(limits_.max_request_line) + " bytes");
      }
      if (!parse_request_line(line)) return Result::kError;
      first = false;
    } else {
      if (request_.headers.size() >= limits_.max_fields) {
        return fail(431, "more than " + std::to_string(limits_.max_fields) + " header fields");
      }
      if (!parse_field(line)) return Result::kError;
    }
    pos = eol + 2;
  }
  return finish_framing() ? Result::kDone : Result::kError;
}

bool HttpHeadParser::parse_request_line(std::string_view line) {
  // method SP request-target SP HTTP-version (RFC 9112 §3), single spaces.
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != line.npos) {
    fail(400, "malformed request line (want 'METHOD /path HTTP/1.1')");
    return false;
  }
  const std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                         version = line.substr(sp2 + 1);
  if (!is_token(method)) {
    fail(400, "malformed request method");
    return false;
  }
  if (target.empty() || !std::all_of(target.begin(), target.end(),
                                     [](char c) { return (unsigned char)c > 0x20 && (unsigned char)c < 0x7f; })) {
    fail(400, "malformed request target");
    return false;
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !std::isdigit((unsigned char)version[5]) ||
      version[6] != '.' || !std::isdigit((unsigned char)version[7])) {
    fail(400, "malformed HTTP version");
    return false;
  }
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) {
    fail(505, "HTTP version " + std::string(version.substr(5)) + " is not supported (use HTTP/1.1)");
    return false;
  }
  // origin-form "/path?query"; absolute-form "http://host/path" (RFC 9112 §3.2.2: servers must accept it);
  // asterisk-form "*" only for OPTIONS. Anything else (authority-form is for CONNECT) is 400.
  std::string_view path = target.substr(0, target.find('?'));
  const size_t scheme_end = path.find("://");
  if (scheme_end != std::string_view::npos &&
      (equals_ignore_case(path.substr(0, scheme_end), "http") ||
       equals_ignore_case(path.substr(0, scheme_end), "https"))) {
    const size_t slash = path.find('/', scheme_end + 3);
    path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
  } else if (!(path[0] == '/' || (target == "*" && method == "OPTIONS"))) {
    fail(400, "malformed request target (want an absolute path such as /v1/models)");
    return false;
  }
  request_.method = std::string(method);
  request_.target = std::string(target);
  request_.path = path.empty() ? "/" : std::string(path);
  request_.minor_version = version[7] - '0';
  return true;
}

bool HttpHeadParser::parse_field(std::string_view line) {
  if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
    fail(400, "obsolete line folding in a header field");
    return false;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
    // Also catches whitespace between the field name and the colon (RFC 9112 §5.1: must be rejected).
    fail(400, "malformed header field");
    return false;
  }
  request_.headers.emplace_back(lower(line.substr(0, colon)), std::string(trim_ows(line.substr(colon + 1))));
  return true;
}

bool HttpHeadParser::finish_framing() {
  HttpRequest& r = request_;
  if (r.minor_version == 1 && r.header_count("host") != 1) {
    fail(400, "an HTTP/1.1 request needs exactly one Host header");
    return false;
  }
  const bool has_length = r.header_count("content-length") > 0;
  if (r.header_count("transfer-encoding") > 0) {
    if (has_length) {
      fail(400, "Content-Length together with Transfer-Encoding");
      return false;
    }
    fail(411, "send the body with a Content-Length (chunked request bodies are not accepted)");
    return false;
  }
  // Every Content-Length value, repeated fields and comma lists alike, must be the same number (RFC 9112 §6.3).
  bool have = false;
  size_t length = 0;
  for (const auto& [name, value] : r.headers) {
    if (name != "content-length") continue;
    std::string_view rest = value;
    while (true) {
      const size_t comma = rest.find(',');
      size_t v = 0;
      if (!parse_decimal(trim_ows(rest.substr(0, comma)), v)) {
        fail(400, "malformed Content-Length");
        return false;
      }
      if (have && v != length) {
        fail(400, "conflicting Content-Length headers");
        return false;
      }
      have = true;
      length = v;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  if (length > limits_.max_body_bytes) {
    fail(413, "the request body is too large (" + std::to_string(length) + " bytes; the limit is " +
                  std::to_string(limits_.max_body_bytes) + ")");
    return false;
  }
  r.content_length = length;
  for (const auto& [name, value] : r.headers) {
    if (name == "content-encoding" && !equals_ignore_case(value, "identity")) {
      fail(415, "compressed request bodies (Content-Encoding: " + value.substr(0, 32) +
                    ") are not accepted; send the body uncompressed");
      return false;
    }
    if (name == "expect") {
      if (!equals_ignore_case(value, "100-continue")) {
        fail(417, "only 'Expect: 100-continue' is understood");
        return false;
      }
      r.expect_continue = true;
    }
  }
  return true;
}

}  // namespace lcllm
