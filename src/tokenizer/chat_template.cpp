#include "tokenizer/chat_template.h"

#include "lcllm/error.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_parser.h"
#include "tokenizer/jinja_render.h"

namespace lcllm {

namespace {

using jinja::Value;

// transformers' _alias_reasoning_fields: {"thinking": r, **message, "reasoning_content": r}.
Value alias_reasoning(const Value& message) {
  const Value* reasoning = nullptr;
  for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
    const Value* v = message.dict->find(key);
    if (v && !v->is_none()) {
      reasoning = v;
      break;
    }
  }
  if (!reasoning) return message;
  std::vector<std::pair<std::string, Value>> items;
  items.emplace_back("thinking", *reasoning);
  for (const auto& kv : message.dict->items) {
    if (kv.first == "thinking") continue;  // keeps its first position, value from the message
    items.push_back(kv);
  }
  if (const Value* t = message.dict->find("thinking")) items[0].second = *t;
  Value r = *reasoning;
  Value out = Value::make_dict(std::move(items));
  out.dict->set("reasoning_content", r);  // in place when the message had it, else appended
  return out;
}

std::vector<std::pair<std::string, Value>> make_context(const nlohmann::ordered_json& messages,
                                                         bool add_generation_prompt,
                                                         const nlohmann::ordered_json& extra) {
  if (!messages.is_array())
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "chat template: messages must be a JSON array");
  if (!extra.is_object() && !extra.is_null())
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "chat template: extra variables must be a JSON object");
  if (messages.empty())
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "Cannot apply chat template to an empty conversation. Provide at least one message.");
  std::vector<std::pair<std::string, Value>> vars;
  try {
    std::vector<Value> msgs;
    for (std::size_t k = 0; k < messages.size(); ++k) {
      if (!messages[k].is_object())
        throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                    "chat template: messages[" + std::to_string(k) + "] must be an object, got " +
                        std::string(messages[k].type_name()));
      // transformers drops the keys whose value is None (`content=None` from OpenAI-style clients), then aliases
      Value m = Value::from_json(messages[k], 1);
      std::vector<std::pair<std::string, Value>> kept;
      for (const auto& kv : m.dict->items)
        if (!kv.second.is_none()) kept.push_back(kv);
      msgs.push_back(alias_reasoning(Value::make_dict(std::move(kept))));
    }
    vars.emplace_back("messages", Value::make_list(std::move(msgs)));
    vars.emplace_back("tools", Value::none());
    vars.emplace_back("documents", Value::none());
    vars.emplace_back("add_generation_prompt", Value::boolean(add_generation_prompt));
    if (extra.is_object()) {
      for (auto it = extra.begin(); it != extra.end(); ++it) {
        if (it.key() == "messages" || it.key() == "add_generation_prompt")
          throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                      "chat template: extra variables must not contain '" + it.key() + "'");
        Value v = Value::from_json(it.value());
        bool replaced = false;
        for (auto& kv : vars) {
          if (kv.first == it.key()) {
            kv.second = v;
            replaced = true;
          }
        }
        if (!replaced) vars.emplace_back(it.key(), std::move(v));
      }
    }
  } catch (const jinja::RenderFault& f) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "chat template input: " + f.message);
  }
  return vars;
}

}  // namespace

ChatTemplate::ChatTemplate(const std::string& source) {
  auto t = std::make_shared<jinja::Template>(jinja::jinja_parse(source));
  jinja::jinja_check_names(*t);
  tmpl_ = std::move(t);
}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                 const nlohmann::ordered_json& extra, const TemplateLimits& limits) const {
  return jinja::jinja_render(*tmpl_, make_context(messages, add_generation_prompt, extra), limits);
}

std::string ChatTemplate::render(const nlohmann::json& messages, bool add_generation_prompt,
                                 const nlohmann::json& extra, const TemplateLimits& limits) const {
  return render(nlohmann::ordered_json(messages), add_generation_prompt, nlohmann::ordered_json(extra), limits);
}

std::string ChatTemplate::render_variables(const nlohmann::ordered_json& variables,
                                           const TemplateLimits& limits) const {
  if (!variables.is_object())
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "chat template: variables must be a JSON object");
  std::vector<std::pair<std::string, Value>> vars;
  try {
    for (auto it = variables.begin(); it != variables.end(); ++it) vars.emplace_back(it.key(), Value::from_json(it.value()));
  } catch (const jinja::RenderFault& f) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "chat template input: " + f.message);
  }
  return jinja::jinja_render(*tmpl_, vars, limits);
}

std::string chat_template_render(const std::string& template_source, const nlohmann::ordered_json& messages,
                                 bool add_generation_prompt, const nlohmann::ordered_json& extra,
                                 const TemplateLimits& limits) {
  return ChatTemplate(template_source).render(messages, add_generation_prompt, extra, limits);
}

std::string chat_template_render(const std::string& template_source, const nlohmann::json& messages,
                                 bool add_generation_prompt, const nlohmann::json& extra,
                                 const TemplateLimits& limits) {
  return ChatTemplate(template_source).render(messages, add_generation_prompt, extra, limits);
}

}  // namespace lcllm
