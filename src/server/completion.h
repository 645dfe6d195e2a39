// One completion request end to end on the HTTP side: parse, render the chat template, tokenize, submit to the
// scheduler, then turn token events into text (incremental detokenizer + stop strings) and OpenAI JSON — whole
// (completion_collect) or as server-sent events (CompletionStream).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/openai_format.h"
#include "server/request.h"
#include "runtime/scheduler.h"
#include "server/stop_matcher.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace lcllm {

// What request handling needs once the model is loaded (read-only, shared by every HTTP thread).
struct ServeContext {
  const Tokenizer* tokenizer = nullptr;
  const ChatTemplate* chat_template = nullptr;  // null: /v1/chat/completions answers 400
  Scheduler* scheduler = nullptr;
  std::string model_name;
  RequestLimits limits;
  int32_t default_max_tokens = 256;  // when the request names none (capped by the context left)
  std::vector<int32_t> eos_ids;      // end-of-sequence ids (model config + tokenizer); off with ignore_eos
};

// Text state of one choice: detokenizer, stop strings, finish reason.
class ChoiceText {
 public:
  ChoiceText(const Tokenizer& tok, const std::vector<std::string>& stops) : detok_(tok, true), stop_(stops) {}
  // Returns the text that became final with this event.
  std::string on_event(const TokenEvent& e);
  bool finished() const { return !finish_reason_.empty(); }
  const std::string& finish_reason() const { return finish_reason_; }
  int32_t tokens() const { return tokens_; }

 private:
  IncrementalDetokenizer detok_;
  StopMatcher stop_;
  std::string finish_reason_;
  int32_t tokens_ = 0;
};

struct PreparedCompletion {
  CompletionRequest request;
  ResponseMeta meta;
  std::string prompt_text;  // for echo
  std::shared_ptr<RequestHandle> handle;
};

// Throws RequestError (4xx for anything the client sent, 429/503 from the scheduler).
PreparedCompletion completion_prepare(const ServeContext& ctx, std::string_view body, bool chat);

// Waits for every choice; the response body. Throws RequestError 500 if the engine failed, and 499 (after
// cancelling the request, so its pages are freed at the engine's next step) when `client_gone` says the client left.
nlohmann::ordered_json completion_collect(const ServeContext& ctx, PreparedCompletion& p,
                                          const std::function<bool()>& client_gone = {});

// The SSE body, produced piece by piece. The destructor cancels the request if it has not finished, so a client
// that goes away frees its sequences at the engine's next step.
class CompletionStream {
 public:
  CompletionStream(const ServeContext& ctx, PreparedCompletion p);
  ~CompletionStream();
  // Appends the next events (waits up to ~50 ms for tokens); false once the stream has ended with [DONE].
  bool next(std::string& out);

 private:
  nlohmann::ordered_json chunk(int32_t index) const;
  void emit(std::string& out, int32_t index, const std::string& text, const TokenEvent* ev, const std::string& reason);

  const ServeContext& ctx_;
  PreparedCompletion p_;
  std::vector<std::unique_ptr<ChoiceText>> choices_;
  std::vector<int64_t> text_bytes_;  // [n] bytes of text sent per choice (completions logprobs text_offset)
  bool started_ = false;
  bool done_ = false;
};

}  // namespace lcllm
