// OpenAI request bodies -> a plain, validated struct (pure: no engine, no tokenizer, so it can be fuzzed).
//
// Both POST /v1/chat/completions and POST /v1/completions are parsed here. Every rule breaks with a RequestError
// carrying the HTTP status (400 for validation), the offending field in `param` and a message naming the value
// and the rule, in OpenAI's error shape (openai_format.h). Fields the server does not implement (tools,
// logit_bias, non-text response_format, multimodal content) are rejected rather than silently ignored; unknown
// fields are ignored, as OpenAI-compatible servers do, so clients that send `user` or `metadata` keep working.
// A JSON `null` means "not given" for every optional field (the openai Python client never sends nulls, but
// other clients do).
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lcllm/sampling_params.h"

namespace lcllm {

// A client-caused failure: HTTP status plus OpenAI's error fields.
class RequestError : public std::runtime_error {
 public:
  RequestError(int http_status, const std::string& message, std::string field = "", std::string reason = "",
               std::string error_type = "")
      : std::runtime_error(message), status(http_status), param(std::move(field)), code(std::move(reason)),
        type(error_type.empty() ? default_type(http_status) : std::move(error_type)) {}
  int status;
  std::string param;  // the request field at fault ("" when none)
  std::string code;   // machine-readable reason ("" when none)
  std::string type;   // invalid_request_error, authentication_error, ...

 private:
  static std::string default_type(int status);
};

// A client-supplied value quoted in an error message: at most max_bytes of it (cut at a UTF-8 boundary) and
// "... (N bytes)" after, so a 7 MB string is not echoed back in full (E12).
std::string error_excerpt(std::string_view value, size_t max_bytes = 128);

struct RequestLimits {
  int32_t max_n = 8;                  // choices per request (n)
  int32_t max_top_logprobs = 20;      // OpenAI's bound for top_logprobs
  int32_t max_stop = 16;              // stop strings per request
  size_t max_stop_bytes = 256;        // bytes per stop string
  int32_t max_json_depth = 64;        // nesting of arrays/objects in the body
  int32_t max_model_len = 4096;       // prompt + max_tokens of one sequence
  int32_t vocab_size = 32000;         // token ids in prompts and stop_token_ids must be below it
  std::vector<std::string> policies;  // attention policies a request may name (presets only, never file paths)
};

struct CompletionRequest {
  bool chat = false;
  std::string model;                  // as sent; "" when absent
  nlohmann::ordered_json messages;    // chat: [{"role", "content"(string)}], content parts joined
  std::string prompt;                 // completions: text prompt
  std::vector<int32_t> prompt_ids;    // completions: a prompt given as token ids
  bool prompt_is_ids = false;
  std::optional<int32_t> max_tokens;  // max_completion_tokens or max_tokens; unset: the server's default
  SamplingParams sampling;            // validated; temperature 0 = greedy
  bool seed_given = false;
  std::vector<std::string> stop;      // non-empty strings; output ends before the first match
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  int32_t n = 1;
  int32_t logprobs = -1;              // -1: no logprobs; k >= 0: the chosen token's logprob and k alternatives
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage
  bool echo = false;                  // completions: prepend the prompt to the text
  std::string policy;                 // extension "attention_policy": "" = the server's policy
};

// Throws RequestError (400) naming the field; never anything else for any input.
CompletionRequest parse_completion_request(std::string_view body, bool chat, const RequestLimits& limits);

// Deepest array/object nesting in a JSON text, counted without parsing (strings skipped); stops counting at `cap`.
int32_t json_nesting_depth(std::string_view text, int32_t cap);

}  // namespace lcllm
