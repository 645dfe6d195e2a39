#include "server/completion.h"

#include <algorithm>
#include <chrono>

#include "lcllm/error.h"

namespace lcllm {

using ojson = nlohmann::ordered_json;

std::string ChoiceText::on_event(const TokenEvent& e) {
  if (finished()) return {};
  std::string piece;
  if (e.token >= 0) {
    ++tokens_;
    piece = stop_.push(detok_.push(e.token));
  }
  if (!stop_.stopped() && !e.finish_reason.empty()) {
    piece += stop_.push(detok_.finish());
    if (!stop_.stopped()) piece += stop_.finish();
  }
  if (stop_.stopped()) finish_reason_ = "stop";
  else if (!e.finish_reason.empty()) finish_reason_ = e.finish_reason;
  return piece;
}

namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

TokenTextFn token_text_fn(const Tokenizer& tok) {
  return [&tok](int32_t id) {
    const int32_t ids[1] = {id};
    return tok.decode(ids, false);
  };
}

}  // namespace

PreparedCompletion completion_prepare(const ServeContext& ctx, std::string_view body, bool chat) {
  PreparedCompletion p;
  p.request = parse_completion_request(body, chat, ctx.limits);
  CompletionRequest& r = p.request;
  if (!r.model.empty() && r.model != ctx.model_name) {
    throw RequestError(404, "the model '" + error_excerpt(r.model) + "' does not exist; this server serves '" +
                                ctx.model_name + "'",
                       "model", "model_not_found");
  }
  // Cheap checks first (E12 item 3): a prompt is tokenized only as far as twice the context (plus a margin), so
  // an over-long one is refused for the cost of that many tokens, not of the whole text; one that is only a little
  // too long is counted exactly, and the scheduler's message says by how much.
  const size_t count_bound = size_t(std::max(ctx.limits.max_model_len, 0)) * 2 + 4096;
  auto too_long = [&] {
    return RequestError(400, "this model's maximum context length is " + std::to_string(ctx.limits.max_model_len) +
                                 " tokens, and the prompt alone has more than " + std::to_string(count_bound) +
                                 "; shorten the prompt",
                        chat ? "messages" : "prompt", "context_length_exceeded");
  };
  std::vector<int32_t> prompt;
  try {
    if (chat) {
      if (!ctx.chat_template) {
        throw RequestError(400, "this model has no chat template; use /v1/completions", "messages");
      }
      const ojson extra = {{"bos_token", ctx.tokenizer->bos_token()}, {"eos_token", ctx.tokenizer->eos_token()}};
      p.prompt_text = ctx.chat_template->render(r.messages, true, extra);
      // The template wrote the special tokens itself.
      auto ids = ctx.tokenizer->encode_at_most(p.prompt_text, false, count_bound);
      if (!ids) throw too_long();
      prompt = std::move(*ids);
    } else if (r.prompt_is_ids) {
      prompt = r.prompt_ids;
      p.prompt_text = ctx.tokenizer->decode(prompt, false);
    } else {
      auto ids = ctx.tokenizer->encode_at_most(r.prompt, true, count_bound);
      if (!ids) throw too_long();
      prompt = std::move(*ids);
      p.prompt_text = r.prompt;
    }
  } catch (const Error& e) {  // template errors (raise_exception, limits) and tokenizer errors are the client's
    throw RequestError(400, e.what(), chat ? "messages" : "prompt");
  }
  GenerationRequest g;
  const int32_t room = ctx.limits.max_model_len - int32_t(std::min<size_t>(prompt.size(), INT32_MAX / 2));
  g.max_tokens = r.max_tokens ? *r.max_tokens : std::max(1, std::min(ctx.default_max_tokens, room));
  g.prompt = std::move(prompt);
  g.sampling = r.sampling;
  if (!r.seed_given) g.sampling.seed = std::chrono::steady_clock::now().time_since_epoch().count();
  if (!r.ignore_eos) g.stop_ids = ctx.eos_ids;
  g.stop_ids.insert(g.stop_ids.end(), r.stop_token_ids.begin(), r.stop_token_ids.end());
  g.n = r.n;
  g.logprobs = r.logprobs;
  g.policy = r.policy;
  p.meta = ResponseMeta{response_id(chat), unix_now(), ctx.model_name, chat};
  try {
    p.handle = ctx.scheduler->submit(std::move(g));
  } catch (const RequestRefused& e) {
    // The scheduler's plain kinds become HTTP statuses and OpenAI error codes here.
    const std::string param = e.field == "policy" ? "attention_policy" : e.field;
    switch (e.kind) {
      case RefusalKind::INVALID_REQUEST: throw RequestError(400, e.what(), param);
      case RefusalKind::CONTEXT_LENGTH_EXCEEDED: throw RequestError(400, e.what(), param, "context_length_exceeded");
      case RefusalKind::QUEUE_FULL: throw RequestError(429, e.what(), "", "queue_full");
      case RefusalKind::SHUTTING_DOWN: throw RequestError(503, e.what(), "", "shutting_down");
    }
    throw;
  }
  return p;
}

ojson completion_collect(const ServeContext& ctx, PreparedCompletion& p, const std::function<bool()>& client_gone) {
  const CompletionRequest& r = p.request;
  const TokenTextFn text_of = token_text_fn(*ctx.tokenizer);
  std::vector<std::unique_ptr<ChoiceText>> choices;
  std::vector<std::string> texts(size_t(r.n));
  std::vector<ojson> chat_lp(size_t(r.n), ojson::array());
  std::vector<CompletionLogprobs> cmpl_lp(size_t(r.n));
  for (int32_t i = 0; i < r.n; ++i) {
    choices.push_back(std::make_unique<ChoiceText>(*ctx.tokenizer, r.stop));
    if (r.echo) texts[size_t(i)] = p.prompt_text;
  }
  auto all_finished = [&] {
    return std::all_of(choices.begin(), choices.end(), [](const auto& c) { return c->finished(); });
  };
  // Whatever ends this function early (client gone, a detokenizer or JSON error) must not leave the request running.
  struct CancelUnlessFinished {
    RequestHandle& h;
    ~CancelUnlessFinished() {
      if (!h.finished()) h.cancel();
    }
  } guard{*p.handle};
  while (!all_finished()) {
    for (const TokenEvent& e : p.handle->wait(std::chrono::milliseconds(200))) {
      ChoiceText& c = *choices[size_t(e.choice)];
      if (c.finished()) continue;
      if (e.has_logprobs) {
        if (r.chat) chat_lp[size_t(e.choice)].push_back(chat_logprob_entry(e.logprobs, text_of));
        else cmpl_lp[size_t(e.choice)].add(e.logprobs, text_of, int64_t(texts[size_t(e.choice)].size()));
      }
      texts[size_t(e.choice)] += c.on_event(e);
      if (c.finished()) p.handle->stop_choice(e.choice);  // a stop string: free this choice's sequence now
    }
    if (!p.handle->cancelled() && all_finished()) p.handle->cancel();  // stop strings: free the pages now
    if (!all_finished() && client_gone && client_gone()) {
      p.handle->cancel();  // nobody will read the answer: free the sequences at the engine's next step
      throw RequestError(499, "the client closed the connection before the completion finished", "",
                         "client_closed_request");
    }
  }
  int64_t completion_tokens = 0;
  ojson out_choices = ojson::array();
  for (int32_t i = 0; i < r.n; ++i) {
    const ChoiceText& c = *choices[size_t(i)];
    if (c.finish_reason() == "error") throw RequestError(500, "the engine failed while generating", "", "engine_error");
    completion_tokens += c.tokens();
    ojson lp = nullptr;
    if (r.logprobs >= 0) lp = r.chat ? ojson{{"content", chat_lp[size_t(i)]}} : cmpl_lp[size_t(i)].to_json();
    if (r.chat) {
      out_choices.push_back({{"index", i},
                             {"message", {{"role", "assistant"}, {"content", texts[size_t(i)]}}},
                             {"logprobs", lp},
                             {"finish_reason", c.finish_reason()}});
    } else {
      out_choices.push_back(
          {{"index", i}, {"text", texts[size_t(i)]}, {"logprobs", lp}, {"finish_reason", c.finish_reason()}});
    }
  }
  return {{"id", p.meta.id},
          {"object", r.chat ? "chat.completion" : "text_completion"},
          {"created", p.meta.created},
          {"model", p.meta.model},
          {"choices", out_choices},
          {"usage", usage_json(p.handle->prompt_tokens(), completion_tokens)}};
}

CompletionStream::CompletionStream(const ServeContext& ctx, PreparedCompletion p) : ctx_(ctx), p_(std::move(p)) {
  for (int32_t i = 0; i < p_.request.n; ++i) {
    choices_.push_back(std::make_unique<ChoiceText>(*ctx_.tokenizer, p_.request.stop));
  }
  text_bytes_.assign(size_t(p_.request.n), 0);
}

CompletionStream::~CompletionStream() {
  if (p_.handle && !p_.handle->finished()) p_.handle->cancel();
}

ojson CompletionStream::chunk(int32_t index) const {
  ojson c = {{"id", p_.meta.id},
             {"object", p_.request.chat ? "chat.completion.chunk" : "text_completion"},
             {"created", p_.meta.created},
             {"model", p_.meta.model},
             {"choices", ojson::array({{{"index", index}}})}};
  if (p_.request.include_usage) c["usage"] = nullptr;
  return c;
}

void CompletionStream::emit(std::string& out, int32_t index, const std::string& text, const TokenEvent* ev,
                            const std::string& reason) {
  ojson c = chunk(index);
  ojson& choice = c["choices"][0];
  ojson lp = nullptr;
  if (ev && ev->has_logprobs) {
    const TokenTextFn text_of = token_text_fn(*ctx_.tokenizer);
    if (p_.request.chat) {
      lp = {{"content", ojson::array({chat_logprob_entry(ev->logprobs, text_of)})}};
    } else {
      CompletionLogprobs l;
      l.add(ev->logprobs, text_of, text_bytes_[size_t(index)]);
      lp = l.to_json();
    }
  }
  text_bytes_[size_t(index)] += int64_t(text.size());
  if (p_.request.chat) {
    choice["delta"] = text.empty() && reason.empty() && !ev ? ojson{{"role", "assistant"}, {"content", ""}}
                      : text.empty() && !reason.empty()     ? ojson::object()
                                                            : ojson{{"content", text}};
  } else {
    choice["text"] = text;
  }
  choice["logprobs"] = lp;
  choice["finish_reason"] = reason.empty() ? ojson(nullptr) : ojson(reason);
  out += sse_event(c);
}

bool CompletionStream::next(std::string& out) {
  if (done_) return false;
  const CompletionRequest& r = p_.request;
  if (!started_) {
    started_ = true;
    for (int32_t i = 0; i < r.n; ++i) {
      if (r.chat) emit(out, i, "", nullptr, "");             // the role chunk
      else if (r.echo) emit(out, i, p_.prompt_text, nullptr, "");
    }
    return true;
  }
  for (const TokenEvent& e : p_.handle->wait(std::chrono::milliseconds(50))) {
    ChoiceText& c = *choices_[size_t(e.choice)];
    if (c.finished()) continue;
    const std::string piece = c.on_event(e);
    if (!piece.empty() || e.has_logprobs) emit(out, e.choice, piece, &e, "");
    if (c.finished()) {
      p_.handle->stop_choice(e.choice);  // a stop string: free this choice's sequence now
      if (c.finish_reason() == "error") {
        RequestError err(500, "the engine failed while generating", "", "engine_error");
        out += sse_event(openai_error(err));
      }
      emit(out, e.choice, "", nullptr, c.finish_reason());
    }
  }
  const bool all = std::all_of(choices_.begin(), choices_.end(), [](const auto& c) { return c->finished(); });
  if (!all) return true;
  if (!p_.handle->finished()) p_.handle->cancel();  // every choice hit a stop string: free the pages now
  if (r.include_usage) {
    int64_t completion_tokens = 0;
    for (const auto& c : choices_) completion_tokens += c->tokens();
    ojson u = chunk(0);
    u["choices"] = ojson::array();
    u["usage"] = usage_json(p_.handle->prompt_tokens(), completion_tokens);
    out += sse_event(u);
  }
  out += sse_done();
  done_ = true;
  return true;
}

}  // namespace lcllm
