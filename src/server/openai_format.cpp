#include "server/openai_format.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>

namespace lcllm {

using ojson = nlohmann::ordered_json;

std::string json_dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

ojson openai_error(const RequestError& e) {
  ojson err = {{"message", e.what()},
               {"type", e.type},
               {"param", e.param.empty() ? ojson(nullptr) : ojson(e.param)},
               {"code", e.code.empty() ? ojson(nullptr) : ojson(e.code)}};
  return ojson{{"error", err}};
}

std::string sse_event(const ojson& j) { return "data: " + json_dump(j) + "\n\n"; }

ojson usage_json(int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

namespace {

ojson bytes_of(const std::string& s) {
  ojson b = ojson::array();
  for (unsigned char c : s) b.push_back(int(c));
  return b;
}

}  // namespace

ojson chat_logprob_entry(const StepLogprobs& lp, const TokenTextFn& text) {
  const std::string t = text(lp.chosen.id);
  ojson top = ojson::array();
  for (const TokenLogprob& x : lp.top) {
    const std::string s = text(x.id);
    top.push_back({{"token", s}, {"logprob", x.logprob}, {"bytes", bytes_of(s)}});
  }
  return {{"token", t}, {"logprob", lp.chosen.logprob}, {"bytes", bytes_of(t)}, {"top_logprobs", top}};
}

void CompletionLogprobs::add(const StepLogprobs& lp, const TokenTextFn& text, int64_t offset) {
  tokens.push_back(text(lp.chosen.id));
  token_logprobs.push_back(lp.chosen.logprob);
  ojson top = ojson::object();
  for (const TokenLogprob& x : lp.top) top[text(x.id)] = x.logprob;
  top_logprobs.push_back(top);
  text_offset.push_back(offset);
}

ojson CompletionLogprobs::to_json() const {
  return {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top_logprobs},
          {"text_offset", text_offset}};
}

std::string response_id(bool chat) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}();
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s%016llx%08llx", chat ? "chatcmpl-" : "cmpl-", (unsigned long long)salt,
                (unsigned long long)counter.fetch_add(1));
  return buf;
}

ojson models_list(const std::string& model, int64_t created, int32_t max_model_len) {
  ojson m = {{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "lcllm"},
             {"max_model_len", max_model_len}};
  return {{"object", "list"}, {"data", ojson::array({m})}};
}

}  // namespace lcllm
