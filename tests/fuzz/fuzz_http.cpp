// libFuzzer target: the bytes a client sends on a connection. The head parser must answer kNeedMore, kDone or
// kError (with a 4xx/5xx status) for every prefix it is fed (the input is split where its first byte says, as a
// connection's reads would split it), never crash, and on kDone report a head that lies inside the input and a
// body length within the limit (E12).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/http_request_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t split = data[0];
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  lcllm::HttpParseLimits limits;
  limits.max_head_bytes = 4096;
  limits.max_request_line = 1024;
  limits.max_body_bytes = 1 << 20;
  lcllm::HttpHeadParser p(limits);
  for (const size_t n : {std::min(split, in.size()), in.size()}) {
    const auto r = p.parse(in.substr(0, n));
    if (r == lcllm::HttpHeadParser::Result::kError) {
      if (p.error().status < 400 || p.error().status > 505 || p.error().message.empty()) std::abort();
      return 0;
    }
    if (r == lcllm::HttpHeadParser::Result::kDone) {
      const lcllm::HttpRequest& req = p.request();
      if (p.head_bytes() > n || req.content_length > limits.max_body_bytes || req.method.empty() ||
          req.path.empty() || (req.minor_version != 0 && req.minor_version != 1)) {
        std::abort();
      }
      return 0;
    }
  }
  return 0;
}
