// Renders a parsed template: statements, expressions, scoping (a fresh scope per loop iteration, macros that see
// their defining scope), loop controls and the `loop` object, with the limits of TemplateLimits enforced.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_builtins.h"

namespace lcllm::jinja {

// `variables` are the template's context (messages, add_generation_prompt, bos_token ...); builtins
// (raise_exception, strftime_now, namespace, range, dict) are added underneath them.
// Throws lcllm::Error naming the template line on any error, a raise_exception() call, or an exceeded limit.
std::string jinja_render(const Template& tmpl, const std::vector<std::pair<std::string, Value>>& variables,
                         const TemplateLimits& limits);

// Fails (lcllm::Error with line/column) on a filter or test name the renderer does not know, as jinja2 does
// when it compiles the template.
void jinja_check_names(const Template& tmpl);

}  // namespace lcllm::jinja
