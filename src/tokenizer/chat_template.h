// Chat templates: a model's Jinja `chat_template` rendered as Hugging Face transformers renders it
// (`apply_chat_template(..., tokenize=False)`): jinja2 sandbox with trim_blocks + lstrip_blocks, loop controls,
// transformers' tojson (ensure_ascii=False, no HTML escaping), raise_exception, strftime_now, namespace, and the
// context transformers passes: messages, tools, documents, add_generation_prompt and the extra kwargs.
//
// Messages are prepared as transformers prepares them: an empty conversation is an error, keys whose value is
// null are dropped, and a message with `reasoning_content`, `thinking` or `reasoning` gets both `thinking` and
// `reasoning_content` set to it.
//
// Pass JSON as nlohmann::ordered_json to keep the caller's key order (it shows in `tojson` output and dict
// iteration, as Python dicts keep insertion order); nlohmann::json works too but its keys come sorted.
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/jinja_builtins.h"

namespace lcllm {

using TemplateLimits = jinja::TemplateLimits;

namespace jinja {
struct Template;
}

// A template parsed once and rendered many times (thread-safe: render() does not mutate it).
class ChatTemplate {
 public:
  // Throws lcllm::Error (ERROR_KIND_INVALID_FILE) naming line and column on a syntax error, an unsupported
  // statement, or an unknown filter or test.
  explicit ChatTemplate(const std::string& source);

  // `extra` is an object of further template variables: bos_token, eos_token (as the tokenizer's special tokens
  // map gives them), tools, documents, enable_thinking, ... `tools`/`documents` default to None.
  // Throws lcllm::Error (ERROR_KIND_INVALID_ARGUMENT) on bad messages, template errors, raise_exception() (the
  // message is the template's) and exceeded limits (the message names the limit).
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& extra = nlohmann::ordered_json::object(),
                     const TemplateLimits& limits = {}) const;
  std::string render(const nlohmann::json& messages, bool add_generation_prompt, const nlohmann::json& extra,
                     const TemplateLimits& limits = {}) const;

  // Renders with exactly these top-level variables (a JSON object) and nothing prepared: for tests, tools and
  // templates that are not chat templates.
  std::string render_variables(const nlohmann::ordered_json& variables, const TemplateLimits& limits = {}) const;

 private:
  std::shared_ptr<const jinja::Template> tmpl_;
};

std::string chat_template_render(const std::string& template_source, const nlohmann::ordered_json& messages,
                                 bool add_generation_prompt, const nlohmann::ordered_json& extra,
                                 const TemplateLimits& limits = {});
std::string chat_template_render(const std::string& template_source, const nlohmann::json& messages,
                                 bool add_generation_prompt, const nlohmann::json& extra,
                                 const TemplateLimits& limits = {});

}  // namespace lcllm
