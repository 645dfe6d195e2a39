// Jinja lexer with the settings transformers uses for chat templates: trim_blocks and lstrip_blocks on,
// keep_trailing_newline off, `\r\n`/`\r` normalised to `\n`. Whitespace control (`{%-`, `-%}`, `{{-`, `-}}`,
// `{#-`, `-#}`, and `+` to opt out of lstrip/trim) is applied here, so the parser sees final text.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lcllm::jinja {

enum class TokenKind {
  TOKEN_KIND_TEXT,         // literal template text (after whitespace control)
  TOKEN_KIND_VAR_BEGIN,    // {{
  TOKEN_KIND_VAR_END,      // }}
  TOKEN_KIND_BLOCK_BEGIN,  // {%
  TOKEN_KIND_BLOCK_END,    // %}
  TOKEN_KIND_NAME,
  TOKEN_KIND_STRING,  // text holds the decoded value
  TOKEN_KIND_INT,
  TOKEN_KIND_FLOAT,
  TOKEN_KIND_OP,  // text holds the operator: + - * / // % ** ~ == != < <= > >= = . , : | ( ) [ ] { } ;
  TOKEN_KIND_EOF,
};

struct Token {
  TokenKind kind = TokenKind::TOKEN_KIND_EOF;
  std::string text;
  std::int64_t int_value = 0;
  double float_value = 0.0;
  int line = 1;
  int column = 1;
};

// Throws lcllm::Error (naming line and column) on a malformed template: unclosed tag or comment, bad string
// literal, unexpected character, unbalanced brackets.
std::vector<Token> jinja_tokenize(std::string_view source);

}  // namespace lcllm::jinja
