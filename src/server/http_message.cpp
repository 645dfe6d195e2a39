#include "server/http_message.h"

#include <cctype>

namespace lcllm {

namespace {

bool contains_token_ignore_case(std::string_view list, std::string_view token) {
  // "Connection: keep-alive, close" style comma lists.
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view item = list.substr(pos, comma - pos);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item.size() == token.size()) {
      bool same = true;
      for (size_t i = 0; i < item.size() && same; ++i) {
        same = std::tolower((unsigned char)item[i]) == std::tolower((unsigned char)token[i]);
      }
      if (same) return true;
    }
    pos = comma + 1;
  }
  return false;
}

}  // namespace

const std::string* HttpRequest::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

size_t HttpRequest::header_count(std::string_view lower_name) const {
  size_t n = 0;
  for (const auto& h : headers) n += h.first == lower_name;
  return n;
}

bool HttpRequest::keep_alive() const {
  if (minor_version == 0) return false;
  for (const auto& [name, value] : headers) {
    if (name == "connection" && contains_token_ignore_case(value, "close")) return false;
  }
  return true;
}

const char* http_reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";  // nginx's code: the answer had no reader
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

std::string http_response_head(const HttpResponse& r, int minor_version, bool close) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + http_reason_phrase(r.status) + "\r\n";
  if (!r.content_type.empty()) out += "Content-Type: " + r.content_type + "\r\n";
  if (r.stream) {
    if (minor_version >= 1) out += "Transfer-Encoding: chunked\r\n";
  } else {
    out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  }
  for (const auto& [name, value] : r.headers) out += name + ": " + value + "\r\n";
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  return out;
}

}  // namespace lcllm
