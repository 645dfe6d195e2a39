// libFuzzer target: the input is an HTTP request body for POST /v1/chat/completions or /v1/completions (the first
// byte picks which). parse_completion_request must turn it into validated sampling parameters or throw
// RequestError with a 4xx status; any other exception, a crash, UB, a leak or a hang is a bug. Accepted requests
// must satisfy every rule the scheduler relies on, and their sampling parameters must construct a Sampler.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "runtime/sampler.h"
#include "server/request.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();  // a validated request broke a rule: make libFuzzer report it
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0 || size > 256 * 1024) return 0;
  const bool chat = (data[0] & 1) != 0;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  lcllm::RequestLimits limits;
  limits.max_model_len = 2048;
  limits.vocab_size = 32000;
  limits.policies = {"full", "streaming", "tidal"};
  try {
    const lcllm::CompletionRequest r = lcllm::parse_completion_request(body, chat, limits);
    check(r.chat == chat);
    check(!r.max_tokens || (*r.max_tokens >= 1 && *r.max_tokens <= limits.max_model_len));
    check(r.n >= 1 && r.n <= limits.max_n);
    check(r.logprobs >= -1 && r.logprobs <= limits.max_top_logprobs);
    check(r.stop.size() <= size_t(limits.max_stop));
    for (const std::string& s : r.stop) check(!s.empty() && s.size() <= limits.max_stop_bytes);
    for (int32_t id : r.prompt_ids) check(id >= 0 && id < limits.vocab_size);
    for (int32_t id : r.stop_token_ids) check(id >= 0 && id < limits.vocab_size);
    check(!chat || (r.messages.is_array() && !r.messages.empty()));
    check(!r.include_usage || r.stream);
    check(lcllm::validate_sampling_params(r.sampling).empty());
    lcllm::Sampler sampler(r.sampling);  // must not throw for a validated request
    (void)sampler;
  } catch (const lcllm::RequestError& e) {
    check(e.status >= 400 && e.status < 500);
  }
  return 0;
}
