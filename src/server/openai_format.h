// OpenAI response shapes: errors, completions and chat completions (whole and as SSE chunks), usage, logprobs,
// the model list. Output never fails on invalid UTF-8: strings are dumped with U+FFFD in place of bad bytes.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/logprobs.h"
#include "server/request.h"

namespace lcllm {

// JSON text with invalid UTF-8 replaced (never throws on string contents).
std::string json_dump(const nlohmann::ordered_json& j);

// {"error": {"message", "type", "param", "code"}}; param/code are null when empty.
nlohmann::ordered_json openai_error(const RequestError& e);

// "data: <json>\n\n": one server-sent event.
std::string sse_event(const nlohmann::ordered_json& j);
inline const char* sse_done() { return "data: [DONE]\n\n"; }

nlohmann::ordered_json usage_json(int64_t prompt_tokens, int64_t completion_tokens);

// Token text for logprobs: the id decoded alone (may be part of a UTF-8 character; replaced when dumped).
using TokenTextFn = std::function<std::string(int32_t)>;

// Chat: one entry of "logprobs.content".
nlohmann::ordered_json chat_logprob_entry(const StepLogprobs& lp, const TokenTextFn& text);

// Completions (legacy shape): per-token parallel arrays, appended to as tokens arrive.
struct CompletionLogprobs {
  nlohmann::ordered_json tokens = nlohmann::ordered_json::array();
  nlohmann::ordered_json token_logprobs = nlohmann::ordered_json::array();
  nlohmann::ordered_json top_logprobs = nlohmann::ordered_json::array();
  nlohmann::ordered_json text_offset = nlohmann::ordered_json::array();
  void add(const StepLogprobs& lp, const TokenTextFn& text, int64_t offset);
  nlohmann::ordered_json to_json() const;
};

// Fields every response and chunk share.
struct ResponseMeta {
  std::string id;       // chatcmpl-... / cmpl-...
  int64_t created = 0;  // unix seconds
  std::string model;
  bool chat = false;
};

// A unique response id with the API's prefix.
std::string response_id(bool chat);

nlohmann::ordered_json models_list(const std::string& model, int64_t created, int32_t max_model_len);

}  // namespace lcllm
