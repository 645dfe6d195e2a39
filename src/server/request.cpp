#include "server/request.h"

#include <cmath>
#include <limits>

namespace lcllm {

std::string error_excerpt(std::string_view value, size_t max_bytes) {
  if (value.size() <= max_bytes) return std::string(value);
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 sequence
  return std::string(value.substr(0, cut)) + "... (" + std::to_string(value.size()) + " bytes)";
}

using json = nlohmann::json;

std::string RequestError::default_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

int32_t json_nesting_depth(std::string_view text, int32_t cap) {
  int32_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest >= cap) return cap;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

namespace {

[[noreturn]] void fail(const std::string& param, const std::string& message) {
  throw RequestError(400, message, param, "invalid_value");
}

// A short rendering of a client value for messages (never the whole of a huge value).
std::string shown(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

const json* field(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<int64_t> get_int(const json& body, const char* key, int64_t lo, int64_t hi) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (v->is_number_unsigned()) {
    if (v->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
      fail(key, std::string(key) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                    "], got " + shown(*v));
    }
  } else if (!v->is_number_integer()) {
    fail(key, std::string(key) + " must be an integer, got " + shown(*v));
  }
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi) {
    fail(key, std::string(key) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                  std::to_string(x));
  }
  return x;
}

// Closed range [lo, hi] unless lo_open; NaN and infinities never pass.
std::optional<float> get_float(const json& body, const char* key, double lo, double hi, bool lo_open = false) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) fail(key, std::string(key) + " must be a number, got " + shown(*v));
  const double x = v->get<double>();
  const bool ok = std::isfinite(x) && (lo_open ? x > lo : x >= lo) && x <= hi;
  if (!ok) {
    char range[96];
    std::snprintf(range, sizeof range, "%s%g, %g]", lo_open ? "(" : "[", lo, hi);
    fail(key, std::string(key) + " must be a number in " + range + ", got " + shown(*v));
  }
  return float(x);
}

std::optional<bool> get_bool(const json& body, const char* key) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) fail(key, std::string(key) + " must be true or false, got " + shown(*v));
  return v->get<bool>();
}

std::vector<int32_t> token_ids(const json& v, const std::string& param, int32_t vocab) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < v.size(); ++i) {
    const json& t = v[i];
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= vocab) {
      fail(param, param + "[" + std::to_string(i) + "] must be a token id in [0, " + std::to_string(vocab) +
                      "), got " + shown(t));
    }
    ids.push_back(int32_t(t.get<int64_t>()));
  }
  return ids;
}

// "content": a string, or OpenAI's array of {"type": "text", "text": ...} parts (joined with no separator).
std::string message_content(const json& content, const std::string& param) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array() || content.empty()) {
    fail(param, param + " must be a string or a non-empty array of text parts, got " + shown(content));
  }
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string p = param + "[" + std::to_string(i) + "]";
    if (!part.is_object()) fail(p, p + " must be an object {\"type\": \"text\", \"text\": ...}, got " + shown(part));
    const json* type = field(part, "type");
    if (!type || !type->is_string() || type->get<std::string>() != "text") {
      fail(p + ".type", p + ".type must be \"text\" (only text content is supported), got " +
                            (type ? shown(*type) : std::string("nothing")));
    }
    const json* t = field(part, "text");
    if (!t || !t->is_string()) fail(p + ".text", p + ".text must be a string");
    text += t->get<std::string>();
  }
  return text;
}

void parse_messages(const json& body, CompletionRequest& r) {
  const json* msgs = field(body, "messages");
  if (!msgs) fail("messages", "messages is required");
  if (!msgs->is_array() || msgs->empty()) fail("messages", "messages must be a non-empty array, got " + shown(*msgs));
  static const char* kRoles[] = {"system", "developer", "user", "assistant", "tool"};
  r.messages = nlohmann::ordered_json::array();
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& m = (*msgs)[i];
    const std::string p = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) fail(p, p + " must be an object with role and content, got " + shown(m));
    const json* role = field(m, "role");
    if (!role || !role->is_string()) fail(p + ".role", p + ".role must be a string");
    const std::string rs = role->get<std::string>();
    bool known = false;
    for (const char* k : kRoles) known = known || rs == k;
    if (!known) fail(p + ".role", p + ".role must be system, developer, user, assistant or tool, got " + shown(*role));
    const json* content = field(m, "content");
    if (!content) fail(p + ".content", p + ".content is required (a string or an array of text parts)");
    nlohmann::ordered_json out = {{"role", rs}, {"content", message_content(*content, p + ".content")}};
    if (const json* name = field(m, "name")) {
      if (!name->is_string()) fail(p + ".name", p + ".name must be a string");
      out["name"] = name->get<std::string>();
    }
    r.messages.push_back(std::move(out));
  }
}

void parse_prompt(const json& body, CompletionRequest& r, int32_t vocab) {
  const json* p = field(body, "prompt");
  if (!p) fail("prompt", "prompt is required");
  const json* one = p;
  // A batch of one prompt is accepted; several prompts per request are not (send one request each).
  if (p->is_array() && !p->empty() && (p->front().is_string() || p->front().is_array())) {
    if (p->size() != 1) {
      fail("prompt", "prompt: batches of " + std::to_string(p->size()) +
                         " prompts are not supported; send one prompt per request");
    }
    one = &p->front();
  }
  if (one->is_string()) {
    r.prompt = one->get<std::string>();
  } else if (one->is_array() && !one->empty()) {
    r.prompt_ids = token_ids(*one, "prompt", vocab);
    r.prompt_is_ids = true;
  } else {
    fail("prompt", "prompt must be a string, an array of token ids, or a one-element array of either, got " +
                       shown(*p));
  }
}

void parse_stop(const json& body, CompletionRequest& r, const RequestLimits& limits) {
  const json* s = field(body, "stop");
  if (!s) return;
  std::vector<std::string> stops;
  if (s->is_string()) {
    stops.push_back(s->get<std::string>());
  } else if (s->is_array()) {
    if (s->size() > size_t(limits.max_stop)) {
      fail("stop", "stop has " + std::to_string(s->size()) + " strings, at most " + std::to_string(limits.max_stop) +
                       " are allowed");
    }
    for (size_t i = 0; i < s->size(); ++i) {
      if (!(*s)[i].is_string()) fail("stop", "stop[" + std::to_string(i) + "] must be a string, got " + shown((*s)[i]));
      stops.push_back((*s)[i].get<std::string>());
    }
  } else {
    fail("stop", "stop must be a string or an array of strings, got " + shown(*s));
  }
  for (std::string& x : stops) {
    if (x.size() > limits.max_stop_bytes) {
      fail("stop", "a stop string has " + std::to_string(x.size()) + " bytes, at most " +
                       std::to_string(limits.max_stop_bytes) + " are allowed");
    }
    if (!x.empty()) r.stop.push_back(std::move(x));  // an empty stop string would end every output at once
  }
}

void parse_unsupported(const json& body) {
  for (const char* key : {"tools", "functions"}) {
    const json* v = field(body, key);
    if (v && !(v->is_array() && v->empty())) fail(key, std::string(key) + " (tool calling) is not supported");
  }
  if (const json* v = field(body, "logit_bias"); v && !(v->is_object() && v->empty())) {
    fail("logit_bias", "logit_bias is not supported");
  }
  if (const json* v = field(body, "response_format")) {
    const json* type = v->is_object() ? field(*v, "type") : nullptr;
    if (!type || !type->is_string() || type->get<std::string>() != "text") {
      fail("response_format", "response_format must be {\"type\": \"text\"}; structured output is not supported");
    }
  }
}

void parse_logprobs(const json& body, CompletionRequest& r, const RequestLimits& limits) {
  if (r.chat) {
    const bool on = get_bool(body, "logprobs").value_or(false);
    const auto top = get_int(body, "top_logprobs", 0, limits.max_top_logprobs);
    if (top && !on) fail("top_logprobs", "top_logprobs needs logprobs: true");
    if (on) r.logprobs = int32_t(top.value_or(0));
  } else {
    // The legacy completions API: logprobs is the number of alternatives per token.
    if (const auto k = get_int(body, "logprobs", 0, limits.max_top_logprobs)) r.logprobs = int32_t(*k);
  }
}

}  // namespace

CompletionRequest parse_completion_request(std::string_view text, bool chat, const RequestLimits& limits) {
  if (json_nesting_depth(text, limits.max_json_depth + 1) > limits.max_json_depth) {
    throw RequestError(400, "the request body nests arrays/objects deeper than " +
                                std::to_string(limits.max_json_depth) + " levels", "", "json_too_deep");
  }
  json body = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    throw RequestError(400, "the request body is not valid JSON (it must be UTF-8 JSON text)", "", "invalid_json");
  }
  if (!body.is_object()) throw RequestError(400, "the request body must be a JSON object", "", "invalid_json");

  CompletionRequest r;
  r.chat = chat;
  if (const json* m = field(body, "model")) {
    if (!m->is_string()) fail("model", "model must be a string, got " + shown(*m));
    r.model = m->get<std::string>();
  }
  if (chat) parse_messages(body, r);
  else parse_prompt(body, r, limits.vocab_size);
  parse_unsupported(body);

  // max_completion_tokens is the current name, max_tokens the deprecated one; the newer wins when both are given.
  const int64_t max_len = limits.max_model_len;
  auto mt = get_int(body, "max_tokens", 1, std::numeric_limits<int64_t>::max());
  if (auto mct = get_int(body, "max_completion_tokens", 1, std::numeric_limits<int64_t>::max())) mt = mct;
  if (mt && *mt > max_len) {
    fail("max_tokens", "max_tokens " + std::to_string(*mt) + " exceeds the maximum context length " +
                           std::to_string(max_len) + " of this model (prompt + max_tokens must fit)");
  }
  if (mt) r.max_tokens = int32_t(*mt);

  SamplingParams& s = r.sampling;
  s.temperature = get_float(body, "temperature", 0, 2).value_or(1.0f);
  s.top_p = get_float(body, "top_p", 0, 1, /*lo_open=*/true).value_or(1.0f);
  if (auto k = get_int(body, "top_k", -1, std::numeric_limits<int32_t>::max())) s.top_k = *k < 0 ? 0 : int32_t(*k);
  s.min_p = get_float(body, "min_p", 0, 1).value_or(0.0f);
  s.frequency_penalty = get_float(body, "frequency_penalty", -2, 2).value_or(0.0f);
  s.presence_penalty = get_float(body, "presence_penalty", -2, 2).value_or(0.0f);
  s.repetition_penalty = get_float(body, "repetition_penalty", 0, 10, /*lo_open=*/true).value_or(1.0f);
  if (auto seed = get_int(body, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max())) {
    s.seed = uint64_t(*seed);
    r.seed_given = true;
  }
  for (const std::string& problem : validate_sampling_params(s)) fail("", problem);  // belt and braces

  parse_stop(body, r, limits);
  if (const json* ids = field(body, "stop_token_ids")) {
    if (!ids->is_array() || ids->size() > size_t(limits.max_stop)) {
      fail("stop_token_ids", "stop_token_ids must be an array of at most " + std::to_string(limits.max_stop) +
                                 " token ids");
    }
    r.stop_token_ids = token_ids(*ids, "stop_token_ids", limits.vocab_size);
  }
  r.ignore_eos = get_bool(body, "ignore_eos").value_or(false);
  r.n = int32_t(get_int(body, "n", 1, limits.max_n).value_or(1));
  parse_logprobs(body, r, limits);
  r.stream = get_bool(body, "stream").value_or(false);
  if (const json* so = field(body, "stream_options")) {
    if (!r.stream) fail("stream_options", "stream_options is only allowed with stream: true");
    if (!so->is_object()) fail("stream_options", "stream_options must be an object, got " + shown(*so));
    r.include_usage = get_bool(*so, "include_usage").value_or(false);
  }
  if (!chat) r.echo = get_bool(body, "echo").value_or(false);
  if (const json* p = field(body, "attention_policy")) {
    if (!p->is_string()) fail("attention_policy", "attention_policy must be a string, got " + shown(*p));
    const std::string name = p->get<std::string>();
    bool known = false;
    std::string list;
    for (const std::string& k : limits.policies) {
      known = known || k == name;
      list += (list.empty() ? "" : ", ") + k;
    }
    if (!known) fail("attention_policy", "attention_policy " + shown(*p) + " is not one of: " + list);
    r.policy = name;
  }
  return r;
}

}  // namespace lcllm
