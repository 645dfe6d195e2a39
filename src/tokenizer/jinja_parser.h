// Recursive-descent parser for the Jinja subset chat templates use (grammar and operator precedence as in
// jinja2's parser: conditional < or < and < not < compare < + - < ~ < * / // % < ** < unary < filters/tests).
#pragma once
#include <string_view>

#include "tokenizer/jinja_ast.h"

namespace lcllm::jinja {

// Throws lcllm::Error naming line and column on a syntax error, an unknown or unclosed statement, or nesting
// deeper than the parser allows (so no input can exhaust the stack).
Template jinja_parse(std::string_view source);

}  // namespace lcllm::jinja
