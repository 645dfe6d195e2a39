#include "tokenizer/jinja_lexer.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

#include "lcllm/error.h"
#include "tokenizer/jinja_pystr.h"

namespace lcllm::jinja {

namespace {

class Lexer {
 public:
  explicit Lexer(std::string_view source) {
    src_.reserve(source.size());
    for (std::size_t k = 0; k < source.size(); ++k) {
      if (source[k] == '\r') {
        src_.push_back('\n');
        if (k + 1 < source.size() && source[k + 1] == '\n') ++k;
      } else {
        src_.push_back(source[k]);
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();  // keep_trailing_newline=False
    line_starts_.push_back(0);
    for (std::size_t k = 0; k < src_.size(); ++k)
      if (src_[k] == '\n') line_starts_.push_back(k + 1);
  }

  std::vector<Token> run() {
    std::size_t pos = 0;
    bool line_starting = true;
    const std::size_t n = src_.size();
    while (pos < n) {
      std::size_t tag = find_tag(pos);
      if (tag == std::string::npos) {
        emit_text(pos, src_.substr(pos));
        break;
      }
      char kind = src_[tag + 1];
      std::size_t p = tag + 2;
      char sign = 0;
      if (p < n && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      std::size_t raw_after = kind == '%' ? match_raw_begin(p) : std::string::npos;
      std::string text = src_.substr(pos, tag - pos);
      apply_strip(text, sign, kind != '{', line_starting);
      emit_text(pos, std::move(text));
      if (raw_after != std::string::npos) {
        pos = lex_raw(tag, raw_after, line_starting);
      } else if (kind == '#') {
        pos = lex_comment(tag, p, line_starting);
      } else {
        pos = lex_tag(tag, p, kind == '%', line_starting);
      }
    }
    Token eof;
    eof.kind = TokenKind::TOKEN_KIND_EOF;
    set_location(eof, n);
    tokens_.push_back(std::move(eof));
    return std::move(tokens_);
  }

 private:
  std::string src_;
  std::vector<std::size_t> line_starts_;
  std::vector<Token> tokens_;

  void set_location(Token& t, std::size_t pos) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), pos);
    std::size_t line = static_cast<std::size_t>(it - line_starts_.begin());
    t.line = static_cast<int>(line);
    t.column = static_cast<int>(pos - line_starts_[line - 1] + 1);
  }

  [[noreturn]] void error(std::size_t pos, const std::string& msg) const {
    Token t;
    set_location(t, std::min(pos, src_.size()));
    throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, "chat template syntax error at line " + std::to_string(t.line) +
                                                        ", column " + std::to_string(t.column) + ": " + msg);
  }

  bool starts_with(std::size_t pos, std::string_view s) const {
    return pos <= src_.size() && std::string_view(src_).substr(pos).starts_with(s);
  }

  std::size_t find_tag(std::size_t pos) const {
    for (std::size_t k = src_.find('{', pos); k != std::string::npos; k = src_.find('{', k + 1)) {
      if (k + 1 < src_.size() && (src_[k + 1] == '{' || src_[k + 1] == '%' || src_[k + 1] == '#')) return k;
    }
    return std::string::npos;
  }

  std::size_t skip_space(std::size_t pos) const {
    return pos + py_space_prefix(std::string_view(src_).substr(pos));
  }

  // `-` strips all whitespace before the tag; otherwise lstrip_blocks removes the spaces and tabs between the
  // line start and a block or comment tag when nothing else is on that line before it.
  static void apply_strip(std::string& text, char sign, bool lstrip_kind, bool line_starting) {
    if (sign == '-') {
      text.resize(text.size() - py_space_suffix(text));
    } else if (sign != '+' && lstrip_kind) {
      std::size_t nl = text.rfind('\n');
      std::size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting) && text.size() > l_pos &&
          py_space_prefix(std::string_view(text).substr(l_pos)) == text.size() - l_pos)
        text.resize(l_pos);
    }
  }

  void emit_text(std::size_t pos, std::string text) {
    if (text.empty()) return;
    Token t;
    t.kind = TokenKind::TOKEN_KIND_TEXT;
    t.text = std::move(text);
    set_location(t, pos);
    tokens_.push_back(std::move(t));
  }

  void emit(TokenKind kind, std::size_t pos, std::string text = {}) {
    Token t;
    t.kind = kind;
    t.text = std::move(text);
    set_location(t, pos);
    tokens_.push_back(std::move(t));
  }

  // After "{%" and its sign: `\s*raw\s*(-%}\s*|%})`. Returns the position after the match or npos.
  std::size_t match_raw_begin(std::size_t p) const {
    std::size_t q = skip_space(p);
    if (!starts_with(q, "raw")) return std::string::npos;
    q = skip_space(q + 3);
    if (starts_with(q, "-%}")) return skip_space(q + 3);
    if (starts_with(q, "%}")) return q + 2;
    return std::string::npos;
  }

  std::size_t lex_raw(std::size_t tag, std::size_t body, bool& line_starting) {
    line_starting = body > 0 && src_[body - 1] == '\n';
    for (std::size_t k = src_.find("{%", body); k != std::string::npos; k = src_.find("{%", k + 1)) {
      std::size_t q = k + 2;
      char sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) sign = src_[q++];
      q = skip_space(q);
      if (!starts_with(q, "endraw")) continue;
      q = skip_space(q + 6);
      std::size_t after;
      if (starts_with(q, "+%}")) {
        after = q + 3;
      } else if (starts_with(q, "-%}")) {
        after = skip_space(q + 3);
      } else if (starts_with(q, "%}")) {
        after = q + 2;
        if (after < src_.size() && src_[after] == '\n') ++after;
      } else {
        continue;
      }
      std::string text = src_.substr(body, k - body);
      apply_strip(text, sign, true, line_starting);
      emit_text(body, std::move(text));
      line_starting = src_[after - 1] == '\n';
      return after;
    }
    error(tag, "missing end of raw directive ({% endraw %})");
  }

  std::size_t lex_comment(std::size_t tag, std::size_t p, bool& line_starting) {
    for (std::size_t q = p; q < src_.size(); ++q) {
      std::size_t after = std::string::npos;
      if (starts_with(q, "+#}")) {
        after = q + 3;
      } else if (starts_with(q, "-#}")) {
        after = skip_space(q + 3);
      } else if (starts_with(q, "#}")) {
        after = q + 2;
        if (after < src_.size() && src_[after] == '\n') ++after;
      }
      if (after != std::string::npos) {
        line_starting = src_[after - 1] == '\n';
        return after;
      }
    }
    error(tag, "missing end of comment tag ('#}')");
  }

  // Expression tokens up to the closing delimiter at bracket depth 0.
  std::size_t lex_tag(std::size_t tag, std::size_t p, bool block, bool& line_starting) {
    emit(block ? TokenKind::TOKEN_KIND_BLOCK_BEGIN : TokenKind::TOKEN_KIND_VAR_BEGIN, tag);
    std::vector<char> brackets;
    std::size_t q = p;
    const std::size_t n = src_.size();
    while (true) {
      if (q >= n) error(tag, block ? "unclosed '{%' tag (missing '%}')" : "unclosed '{{' (missing '}}')");
      if (brackets.empty()) {
        std::size_t after = std::string::npos;
        if (block) {
          if (starts_with(q, "+%}")) {
            after = q + 3;
          } else if (starts_with(q, "-%}")) {
            after = skip_space(q + 3);
          } else if (starts_with(q, "%}")) {
            after = q + 2;
            if (after < n && src_[after] == '\n') ++after;
          }
        } else {
          if (starts_with(q, "-}}")) {
            after = skip_space(q + 3);
          } else if (starts_with(q, "}}")) {
            after = q + 2;
          }
        }
        if (after != std::string::npos) {
          emit(block ? TokenKind::TOKEN_KIND_BLOCK_END : TokenKind::TOKEN_KIND_VAR_END, q);
          line_starting = src_[after - 1] == '\n';
          return after;
        }
      }
      unsigned char c = static_cast<unsigned char>(src_[q]);
      std::size_t ws = py_space_prefix(std::string_view(src_).substr(q));
      if (ws > 0) {
        q += ws;
      } else if (c >= '0' && c <= '9') {
        q = lex_number(q);
      } else if (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        std::size_t e = q;
        while (e < n && (src_[e] == '_' || std::isalnum(static_cast<unsigned char>(src_[e])))) ++e;
        emit(TokenKind::TOKEN_KIND_NAME, q, src_.substr(q, e - q));
        q = e;
      } else if (c == '\'' || c == '"') {
        q = lex_string(q);
      } else {
        q = lex_operator(q, brackets);
      }
    }
  }

  // `(\d+_)*\d+`: digits with single underscores between them. Returns the end or `pos` when no digit.
  std::size_t scan_digits(std::size_t pos, bool (*is_digit)(char)) const {
    std::size_t q = pos;
    if (q >= src_.size() || !is_digit(src_[q])) return pos;
    while (q < src_.size()) {
      if (is_digit(src_[q])) {
        ++q;
      } else if (src_[q] == '_' && q + 1 < src_.size() && is_digit(src_[q + 1])) {
        ++q;
      } else {
        break;
      }
    }
    return q;
  }

  static bool dec(char c) { return c >= '0' && c <= '9'; }
  static bool bin(char c) { return c == '0' || c == '1'; }
  static bool oct(char c) { return c >= '0' && c <= '7'; }
  static bool hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

  std::size_t lex_number(std::size_t pos) {
    const std::size_t n = src_.size();
    std::size_t int_end = scan_digits(pos, dec);
    bool after_dot = pos > 0 && src_[pos - 1] == '.';
    if (!after_dot) {
      std::size_t q = int_end;
      bool has_frac = false;
      if (q < n && src_[q] == '.') {
        std::size_t f = scan_digits(q + 1, dec);
        if (f > q + 1) q = f, has_frac = true;
      }
      bool has_exp = false;
      if (q < n && (src_[q] == 'e' || src_[q] == 'E')) {
        std::size_t e = q + 1;
        if (e < n && (src_[e] == '+' || src_[e] == '-')) ++e;
        std::size_t x = scan_digits(e, dec);
        if (x > e) q = x, has_exp = true;
      }
      if (has_frac || has_exp) {
        std::string text;
        for (std::size_t k = pos; k < q; ++k)
          if (src_[k] != '_') text.push_back(src_[k]);
        Token t;
        t.kind = TokenKind::TOKEN_KIND_FLOAT;
        auto res = std::from_chars(text.data(), text.data() + text.size(), t.float_value);
        if (res.ec == std::errc::result_out_of_range) t.float_value = text.find("e-") != std::string::npos ? 0.0 : std::numeric_limits<double>::infinity();
        t.text = text;
        set_location(t, pos);
        tokens_.push_back(std::move(t));
        return q;
      }
    }
    int base = 10;
    std::size_t start = pos, end = int_end;
    if (src_[pos] == '0' && pos + 1 < n) {
      char x = static_cast<char>(std::tolower(static_cast<unsigned char>(src_[pos + 1])));
      bool (*pred)(char) = x == 'b' ? bin : x == 'o' ? oct : x == 'x' ? hex : nullptr;
      if (pred) {
        // 0x(_?[\da-f])+
        std::size_t q = pos + 2;
        while (q < n) {
          if (pred(src_[q])) {
            ++q;
          } else if (src_[q] == '_' && q + 1 < n && pred(src_[q + 1])) {
            q += 2;
          } else {
            break;
          }
        }
        if (q > pos + 2) {
          base = x == 'b' ? 2 : x == 'o' ? 8 : 16;
          start = pos + 2, end = q;
        }
      }
      if (base == 10) {  // 0(_?0)*
        end = pos + 1;
        while (end < n) {
          if (src_[end] == '0') {
            ++end;
          } else if (src_[end] == '_' && end + 1 < n && src_[end + 1] == '0') {
            end += 2;
          } else {
            break;
          }
        }
      }
    }
    std::string digits;
    for (std::size_t k = start; k < end; ++k)
      if (src_[k] != '_') digits.push_back(src_[k]);
    Token t;
    t.kind = TokenKind::TOKEN_KIND_INT;
    auto res = std::from_chars(digits.data(), digits.data() + digits.size(), t.int_value, base);
    if (res.ec != std::errc()) error(pos, "integer literal " + src_.substr(pos, end - pos) + " is too large");
    t.text = src_.substr(pos, end - pos);
    set_location(t, pos);
    tokens_.push_back(std::move(t));
    return end;
  }

  std::size_t lex_string(std::size_t pos) {
    const char quote = src_[pos];
    const std::size_t n = src_.size();
    std::size_t q = pos + 1;
    while (q < n && src_[q] != quote) q += src_[q] == '\\' ? 2 : 1;
    if (q >= n) error(pos, std::string("unterminated string literal (unexpected char '") + quote + "')");
    std::string_view body = std::string_view(src_).substr(pos + 1, q - pos - 1);
    std::string out;
    for (std::size_t k = 0; k < body.size(); ++k) {
      if (body[k] != '\\' || k + 1 >= body.size()) {
        out.push_back(body[k]);
        continue;
      }
      char e = body[++k];
      auto hex_escape = [&](std::size_t digits) {
        std::uint32_t v = 0;
        for (std::size_t d = 1; d <= digits; ++d) {
          if (k + d >= body.size() || !hex(body[k + d]))
            error(pos, "truncated \\" + std::string(1, e) + " escape in string literal");
          char h = static_cast<char>(std::tolower(static_cast<unsigned char>(body[k + d])));
          v = v * 16 + static_cast<std::uint32_t>(h <= '9' ? h - '0' : h - 'a' + 10);
        }
        if (v > 0x10FFFF) error(pos, "illegal Unicode character in string literal escape");
        k += digits;
        utf8_append(out, static_cast<char32_t>(v));
      };
      switch (e) {
        case '\n': break;
        case '\\': out.push_back('\\'); break;
        case '\'': out.push_back('\''); break;
        case '"': out.push_back('"'); break;
        case 'a': out.push_back('\a'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'v': out.push_back('\v'); break;
        case 'x': hex_escape(2); break;
        case 'u': hex_escape(4); break;
        case 'U': hex_escape(8); break;
        case 'N': error(pos, "\\N{...} escapes are not supported");
        default:
          if (oct(e)) {
            std::uint32_t v = static_cast<std::uint32_t>(e - '0');
            for (int d = 0; d < 2 && k + 1 < body.size() && oct(body[k + 1]); ++d)
              v = v * 8 + static_cast<std::uint32_t>(body[++k] - '0');
            utf8_append(out, static_cast<char32_t>(v));
          } else {
            out.push_back('\\');
            out.push_back(e);
          }
      }
    }
    Token t;
    t.kind = TokenKind::TOKEN_KIND_STRING;
    t.text = std::move(out);
    set_location(t, pos);
    tokens_.push_back(std::move(t));
    return q + 1;
  }

  std::size_t lex_operator(std::size_t pos, std::vector<char>& brackets) {
    static const char* const kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : kTwo) {
      if (starts_with(pos, op)) {
        emit(TokenKind::TOKEN_KIND_OP, pos, op);
        return pos + 2;
      }
    }
    char c = src_[pos];
    if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos) {
      std::size_t len = utf8_char_len(src_, pos);
      error(pos, "unexpected char '" + src_.substr(pos, len) + "'");
    }
    if (c == '(' || c == '[' || c == '{') {
      if (brackets.size() >= 1024) error(pos, "brackets nested too deeply");
      brackets.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (brackets.empty()) error(pos, std::string("unexpected '") + c + "'");
      if (brackets.back() != c) error(pos, std::string("unexpected '") + c + "', expected '" + brackets.back() + "'");
      brackets.pop_back();
    }
    emit(TokenKind::TOKEN_KIND_OP, pos, std::string(1, c));
    return pos + 1;
  }
};

}  // namespace

std::vector<Token> jinja_tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace lcllm::jinja
