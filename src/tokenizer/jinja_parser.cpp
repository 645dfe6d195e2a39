#include "tokenizer/jinja_parser.h"

#include <algorithm>
#include <initializer_list>

#include "lcllm/error.h"
#include "tokenizer/jinja_lexer.h"

namespace lcllm::jinja {

namespace {

constexpr int kMaxParseDepth = 400;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Template parse_template() {
    Template t;
    std::string end;
    t.body = parse_body({}, &end);
    return t;
  }

 private:
  std::vector<Token> toks_;
  std::size_t pos_ = 0;
  int depth_ = 0;

  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxParseDepth) p.fail(p.cur(), "template nested too deeply (more than " +
                                                           std::to_string(kMaxParseDepth) + " levels)");
    }
    ~DepthGuard() { --p.depth_; }
  };

  // Left-assoc chains (a + b + c, x.y.z, a|f|g) build trees as deep as they are long: each link counts as a level.
  struct ChainGuard {
    Parser& p;
    int links = 0;
    explicit ChainGuard(Parser& parser) : p(parser) {}
    void link() {
      ++links;
      if (++p.depth_ > kMaxParseDepth) p.fail(p.cur(), "expression nested too deeply (more than " +
                                                           std::to_string(kMaxParseDepth) + " levels)");
    }
    ~ChainGuard() { p.depth_ -= links; }
  };

  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(std::size_t k = 1) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  const Token& advance() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }

  [[noreturn]] void fail(const Token& t, const std::string& msg) const {
    throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, "chat template syntax error at line " + std::to_string(t.line) +
                                                        ", column " + std::to_string(t.column) + ": " + msg);
  }

  static std::string describe(const Token& t) {
    switch (t.kind) {
      case TokenKind::TOKEN_KIND_EOF: return "end of template";
      case TokenKind::TOKEN_KIND_BLOCK_END: return "end of statement block ('%}')";
      case TokenKind::TOKEN_KIND_VAR_END: return "end of print statement ('}}')";
      case TokenKind::TOKEN_KIND_STRING: return "string";
      case TokenKind::TOKEN_KIND_INT:
      case TokenKind::TOKEN_KIND_FLOAT: return "number " + t.text;
      default: return "'" + t.text + "'";
    }
  }

  bool is_op(std::string_view op) const { return cur().kind == TokenKind::TOKEN_KIND_OP && cur().text == op; }
  bool is_name(std::string_view name) const {
    return cur().kind == TokenKind::TOKEN_KIND_NAME && cur().text == name;
  }
  bool accept_op(std::string_view op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool accept_name(std::string_view name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }
  void expect_op(std::string_view op) {
    if (!accept_op(op)) fail(cur(), "expected '" + std::string(op) + "', got " + describe(cur()));
  }
  std::string expect_name() {
    if (cur().kind != TokenKind::TOKEN_KIND_NAME) fail(cur(), "expected a name, got " + describe(cur()));
    return advance().text;
  }
  void expect_block_end() {
    if (cur().kind != TokenKind::TOKEN_KIND_BLOCK_END)
      fail(cur(), "expected end of statement block ('%}'), got " + describe(cur()));
    advance();
  }

  ExprPtr node(ExprKind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->column = at.column;
    return e;
  }

  // ---- statements ----------------------------------------------------------------------------------------

  // Parses until a `{% name %}` with name in `ends` (left unconsumed after the name; *end receives it), or EOF
  // when `ends` is empty.
  StmtList parse_body(std::initializer_list<std::string_view> ends, std::string* end) {
    DepthGuard guard(*this);
    StmtList out;
    while (true) {
      const Token& t = cur();
      switch (t.kind) {
        case TokenKind::TOKEN_KIND_EOF:
          if (ends.size() == 0) return out;
          fail(t, "unexpected end of template; expected " + list_ends(ends));
        case TokenKind::TOKEN_KIND_TEXT: {
          auto s = stmt(StmtKind::STMT_KIND_TEXT, t);
          s->text = t.text;
          advance();
          out.push_back(std::move(s));
          break;
        }
        case TokenKind::TOKEN_KIND_VAR_BEGIN: {
          auto s = stmt(StmtKind::STMT_KIND_OUTPUT, t);
          advance();
          s->expr = parse_tuple(true);
          if (cur().kind != TokenKind::TOKEN_KIND_VAR_END)
            fail(cur(), "expected end of print statement ('}}'), got " + describe(cur()));
          advance();
          out.push_back(std::move(s));
          break;
        }
        case TokenKind::TOKEN_KIND_BLOCK_BEGIN: {
          const Token& name = peek();
          if (name.kind == TokenKind::TOKEN_KIND_NAME &&
              std::find(ends.begin(), ends.end(), name.text) != ends.end()) {
            advance();
            *end = advance().text;
            return out;
          }
          advance();
          out.push_back(parse_statement(t));
          break;
        }
        default: fail(t, "unexpected " + describe(t));
      }
    }
  }

  static std::string list_ends(std::initializer_list<std::string_view> ends) {
    std::string s;
    for (auto e : ends) s += (s.empty() ? "'" : " or '") + std::string(e) + "'";
    return s;
  }

  std::unique_ptr<Stmt> stmt(StmtKind kind, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = at.line;
    s->column = at.column;
    return s;
  }

  std::unique_ptr<Stmt> parse_statement(const Token& begin) {
    const Token& t = cur();
    if (t.kind != TokenKind::TOKEN_KIND_NAME) fail(t, "expected a statement name, got " + describe(t));
    std::string name = advance().text;
    if (name == "if") return parse_if(begin);
    if (name == "for") return parse_for(begin);
    if (name == "set") return parse_set(begin);
    if (name == "macro") return parse_macro(begin);
    if (name == "call") return parse_call_block(begin);
    if (name == "filter") return parse_filter_block(begin);
    if (name == "with") return parse_with(begin);
    if (name == "generation") {
      auto s = stmt(StmtKind::STMT_KIND_BLOCK, begin);
      expect_block_end();
      std::string end;
      s->body = parse_body({"endgeneration"}, &end);
      expect_block_end();
      return s;
    }
    if (name == "break" || name == "continue") {
      auto s = stmt(name == "break" ? StmtKind::STMT_KIND_BREAK : StmtKind::STMT_KIND_CONTINUE, begin);
      expect_block_end();
      return s;
    }
    static const char* const kUnsupported[] = {"include", "import", "from", "extends", "block", "do", "autoescape",
                                               "trans"};
    for (const char* u : kUnsupported)
      if (name == u) fail(t, "statement '" + name + "' is not supported in chat templates");
    fail(t, "unknown statement '" + name + "'");
  }

  std::unique_ptr<Stmt> parse_if(const Token& begin) {
    auto s = stmt(StmtKind::STMT_KIND_IF, begin);
    s->conds.push_back(parse_tuple(false));
    expect_block_end();
    while (true) {
      std::string end;
      s->bodies.push_back(parse_body({"elif", "else", "endif"}, &end));
      if (end == "elif") {
        s->conds.push_back(parse_tuple(false));
        expect_block_end();
        continue;
      }
      if (end == "else") {
        expect_block_end();
        s->bodies.push_back(parse_body({"endif"}, &end));
        s->has_else = true;
      }
      expect_block_end();
      return s;
    }
  }

  // Names, optionally comma separated and parenthesised: `x`, `a, b`, `(a, b)`.
  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    bool paren = accept_op("(");
    do {
      if (paren && is_op(")")) break;
      names.push_back(expect_name());
    } while (accept_op(","));
    if (paren) expect_op(")");
    return names;
  }

  std::unique_ptr<Stmt> parse_for(const Token& begin) {
    auto s = stmt(StmtKind::STMT_KIND_FOR, begin);
    s->targets = parse_targets();
    if (!accept_name("in")) fail(cur(), "expected 'in' in for loop, got " + describe(cur()));
    s->expr = parse_tuple(false, true);
    if (accept_name("if")) s->cond = parse_expression(true);
    if (accept_name("recursive")) fail(cur(), "recursive for loops are not supported");
    expect_block_end();
    std::string end;
    s->body = parse_body({"endfor", "else"}, &end);
    if (end == "else") {
      expect_block_end();
      s->else_body = parse_body({"endfor"}, &end);
      s->has_else = true;
    }
    expect_block_end();
    return s;
  }

  std::unique_ptr<Stmt> parse_set(const Token& begin) {
    const Token& at = cur();
    if (at.kind == TokenKind::TOKEN_KIND_NAME && peek().kind == TokenKind::TOKEN_KIND_OP && peek().text == ".") {
      auto s = stmt(StmtKind::STMT_KIND_SET, begin);
      s->target_ns = advance().text;
      advance();
      s->targets.push_back(expect_name());
      expect_op("=");
      s->expr = parse_tuple(true);
      expect_block_end();
      return s;
    }
    std::vector<std::string> targets = parse_targets();
    if (accept_op("=")) {
      auto s = stmt(StmtKind::STMT_KIND_SET, begin);
      s->targets = std::move(targets);
      s->expr = parse_tuple(true);
      expect_block_end();
      return s;
    }
    if (targets.size() != 1) fail(at, "block set needs a single name");
    auto s = stmt(StmtKind::STMT_KIND_SET_BLOCK, begin);
    s->targets = std::move(targets);
    if (is_op("|")) s->expr = parse_filter_chain(nullptr);
    expect_block_end();
    std::string end;
    s->body = parse_body({"endset"}, &end);
    expect_block_end();
    return s;
  }

  std::vector<MacroParam> parse_params() {
    std::vector<MacroParam> params;
    expect_op("(");
    while (!is_op(")")) {
      if (!params.empty()) expect_op(",");
      if (is_op(")")) break;
      MacroParam p;
      p.name = expect_name();
      if (accept_op("=")) p.default_value = parse_expression(true);
      params.push_back(std::move(p));
    }
    expect_op(")");
    return params;
  }

  std::unique_ptr<Stmt> parse_macro(const Token& begin) {
    auto s = stmt(StmtKind::STMT_KIND_MACRO, begin);
    s->name = expect_name();
    s->params = parse_params();
    expect_block_end();
    std::string end;
    s->body = parse_body({"endmacro"}, &end);
    if (cur().kind == TokenKind::TOKEN_KIND_NAME) advance();  // {% endmacro name %}
    expect_block_end();
    return s;
  }

  std::unique_ptr<Stmt> parse_call_block(const Token& begin) {
    auto s = stmt(StmtKind::STMT_KIND_CALL_BLOCK, begin);
    if (is_op("(")) s->params = parse_params();
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::EXPR_KIND_CALL) fail(begin, "expected a call after 'call'");
    expect_block_end();
    std::string end;
    s->body = parse_body({"endcall"}, &end);
    expect_block_end();
    return s;
  }

  std::unique_ptr<Stmt> parse_filter_block(const Token& begin) {
    auto s = stmt(StmtKind::STMT_KIND_FILTER_BLOCK, begin);
    s->expr = parse_filter_chain(nullptr, false);
    expect_block_end();
    std::string end;
    s->body = parse_body({"endfilter"}, &end);
    expect_block_end();
    return s;
  }

  std::unique_ptr<Stmt> parse_with(const Token& begin) {
    auto s = stmt(StmtKind::STMT_KIND_WITH, begin);
    while (cur().kind != TokenKind::TOKEN_KIND_BLOCK_END) {
      if (!s->targets.empty()) expect_op(",");
      s->targets.push_back(expect_name());
      expect_op("=");
      s->conds.push_back(parse_expression(true));
    }
    expect_block_end();
    std::string end;
    s->body = parse_body({"endwith"}, &end);
    expect_block_end();
    return s;
  }

  // ---- expressions ---------------------------------------------------------------------------------------

  bool at_expression_end() const {
    const Token& t = cur();
    return t.kind == TokenKind::TOKEN_KIND_VAR_END || t.kind == TokenKind::TOKEN_KIND_BLOCK_END ||
           t.kind == TokenKind::TOKEN_KIND_EOF || (t.kind == TokenKind::TOKEN_KIND_OP && t.text == ")");
  }

  // `a, b` makes a tuple; a single expression stays itself.
  ExprPtr parse_tuple(bool with_condexpr, bool stop_at_keywords = false) {
    const Token& at = cur();
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) {
        if (!accept_op(",")) break;
        is_tuple = true;
        if (at_expression_end() || (stop_at_keywords && (is_name("if") || is_name("recursive")))) break;
      }
      items.push_back(parse_expression(with_condexpr));
    }
    if (!is_tuple) return std::move(items.front());
    auto t = node(ExprKind::EXPR_KIND_TUPLE, at);
    t->children = std::move(items);
    return t;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    if (!with_condexpr) return parse_or();
    ExprPtr e = parse_or();
    ChainGuard chain(*this);
    while (is_name("if")) {
      chain.link();
      const Token& at = advance();
      auto c = node(ExprKind::EXPR_KIND_CONDITIONAL, at);
      ExprPtr cond = parse_or();
      ExprPtr other = accept_name("else") ? parse_expression(true) : nullptr;
      c->children.push_back(std::move(cond));
      c->children.push_back(std::move(e));
      c->children.push_back(std::move(other));
      e = std::move(c);
    }
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    ChainGuard chain(*this);
    while (is_name("or")) {
      chain.link();
      auto e = node(ExprKind::EXPR_KIND_OR, advance());
      e->children.push_back(std::move(left));
      e->children.push_back(parse_and());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    ChainGuard chain(*this);
    while (is_name("and")) {
      chain.link();
      auto e = node(ExprKind::EXPR_KIND_AND, advance());
      e->children.push_back(std::move(left));
      e->children.push_back(parse_not());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      auto e = node(ExprKind::EXPR_KIND_NOT, advance());
      e->children.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const Token& at = cur();
    ExprPtr first = parse_math1();
    std::vector<std::string> ops;
    std::vector<ExprPtr> operands;
    while (true) {
      const Token& t = cur();
      std::string op;
      if (t.kind == TokenKind::TOKEN_KIND_OP &&
          (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == "<=" || t.text == ">" || t.text == ">=")) {
        op = advance().text;
      } else if (is_name("in")) {
        advance();
        op = "in";
      } else if (is_name("not") && peek().kind == TokenKind::TOKEN_KIND_NAME && peek().text == "in") {
        advance();
        advance();
        op = "notin";
      } else {
        break;
      }
      ops.push_back(op);
      operands.push_back(parse_math1());
    }
    if (ops.empty()) return first;
    auto e = node(ExprKind::EXPR_KIND_COMPARE, at);
    e->children.push_back(std::move(first));
    for (auto& o : operands) e->children.push_back(std::move(o));
    e->ops = std::move(ops);
    return e;
  }

  ExprPtr binary(const Token& at, std::string op, ExprPtr a, ExprPtr b) {
    auto e = node(ExprKind::EXPR_KIND_BINARY, at);
    e->name = std::move(op);
    e->children.push_back(std::move(a));
    e->children.push_back(std::move(b));
    return e;
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    ChainGuard chain(*this);
    while (is_op("+") || is_op("-")) {
      chain.link();
      const Token& at = advance();
      left = binary(at, at.text, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    ChainGuard chain(*this);
    while (is_op("~")) {
      chain.link();
      const Token& at = advance();
      left = binary(at, "~", std::move(left), parse_math2());
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    ChainGuard chain(*this);
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      chain.link();
      const Token& at = advance();
      left = binary(at, at.text, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    ChainGuard chain(*this);
    while (is_op("**")) {
      chain.link();
      const Token& at = advance();
      left = binary(at, "**", std::move(left), parse_unary(true));
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      const Token& at = advance();
      e = node(at.text == "-" ? ExprKind::EXPR_KIND_NEG : ExprKind::EXPR_KIND_POS, at);
      e->children.push_back(parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    switch (t.kind) {
      case TokenKind::TOKEN_KIND_NAME: {
        advance();
        auto e = node(ExprKind::EXPR_KIND_LITERAL, t);
        if (t.text == "true" || t.text == "True") {
          e->value = Value::boolean(true);
        } else if (t.text == "false" || t.text == "False") {
          e->value = Value::boolean(false);
        } else if (t.text == "none" || t.text == "None") {
          e->value = Value::none();
        } else {
          e->kind = ExprKind::EXPR_KIND_NAME;
          e->name = t.text;
        }
        return e;
      }
      case TokenKind::TOKEN_KIND_STRING: {
        auto e = node(ExprKind::EXPR_KIND_LITERAL, t);
        std::string s = advance().text;
        while (cur().kind == TokenKind::TOKEN_KIND_STRING) s += advance().text;  // 'a' 'b' == 'ab'
        e->value = Value::string(std::move(s));
        return e;
      }
      case TokenKind::TOKEN_KIND_INT: {
        auto e = node(ExprKind::EXPR_KIND_LITERAL, t);
        e->value = Value::integer(advance().int_value);
        return e;
      }
      case TokenKind::TOKEN_KIND_FLOAT: {
        auto e = node(ExprKind::EXPR_KIND_LITERAL, t);
        e->value = Value::floating(advance().float_value);
        return e;
      }
      case TokenKind::TOKEN_KIND_OP:
        if (t.text == "(") {
          advance();
          if (accept_op(")")) {
            auto e = node(ExprKind::EXPR_KIND_TUPLE, t);
            return e;
          }
          ExprPtr e = parse_tuple(true);
          expect_op(")");
          return e;
        }
        if (t.text == "[") {
          advance();
          auto e = node(ExprKind::EXPR_KIND_LIST, t);
          while (!is_op("]")) {
            if (!e->children.empty()) {
              expect_op(",");
              if (is_op("]")) break;
            }
            e->children.push_back(parse_expression(true));
          }
          expect_op("]");
          return e;
        }
        if (t.text == "{") {
          advance();
          auto e = node(ExprKind::EXPR_KIND_DICT, t);
          while (!is_op("}")) {
            if (!e->children.empty()) {
              expect_op(",");
              if (is_op("}")) break;
            }
            e->children.push_back(parse_expression(true));
            expect_op(":");
            e->children.push_back(parse_expression(true));
          }
          expect_op("}");
          return e;
        }
        break;
      default: break;
    }
    fail(t, "unexpected " + describe(t));
  }

  ExprPtr parse_postfix(ExprPtr e) {
    ChainGuard chain(*this);
    while (true) {
      chain.link();
      if (is_op(".")) {
        const Token& at = advance();
        auto g = node(ExprKind::EXPR_KIND_GETATTR, at);
        if (cur().kind == TokenKind::TOKEN_KIND_NAME) {
          g->name = advance().text;
        } else if (cur().kind == TokenKind::TOKEN_KIND_INT) {  // x.0 is x[0]
          g->kind = ExprKind::EXPR_KIND_GETITEM;
          auto idx = node(ExprKind::EXPR_KIND_LITERAL, cur());
          idx->value = Value::integer(advance().int_value);
          g->children.push_back(std::move(e));
          g->children.push_back(std::move(idx));
          e = std::move(g);
          continue;
        } else {
          fail(cur(), "expected an attribute name after '.', got " + describe(cur()));
        }
        g->children.push_back(std::move(e));
        e = std::move(g);
      } else if (is_op("[")) {
        e = parse_subscript(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr target) {
    const Token& at = advance();  // [
    ExprPtr parts[3];
    int colons = 0;
    for (int k = 0; k < 3; ++k) {
      if (!is_op(":") && !is_op("]")) parts[k] = parse_expression(true);
      if (k < 2 && accept_op(":")) {
        ++colons;
        continue;
      }
      break;
    }
    expect_op("]");
    if (colons == 0) {
      if (!parts[0]) fail(at, "expected an index inside '[]'");
      auto g = node(ExprKind::EXPR_KIND_GETITEM, at);
      g->children.push_back(std::move(target));
      g->children.push_back(std::move(parts[0]));
      return g;
    }
    auto s = node(ExprKind::EXPR_KIND_SLICE, at);
    s->children.push_back(std::move(target));
    for (auto& p : parts) s->children.push_back(std::move(p));
    return s;
  }

  void parse_call_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (!e.args.empty() || !e.kwargs.empty()) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*") || is_op("**")) fail(cur(), "*args/**kwargs in calls are not supported");
      if (cur().kind == TokenKind::TOKEN_KIND_NAME && peek().kind == TokenKind::TOKEN_KIND_OP && peek().text == "=") {
        std::string key = advance().text;
        advance();
        e.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!e.kwargs.empty()) fail(cur(), "positional argument follows keyword argument");
        e.args.push_back(parse_expression(true));
      }
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto c = node(ExprKind::EXPR_KIND_CALL, cur());
    c->children.push_back(std::move(callee));
    parse_call_args(*c);
    return c;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (is_op(".") && peek().kind == TokenKind::TOKEN_KIND_NAME) {
      advance();
      name += "." + advance().text;
    }
    return name;
  }

  // `| f(args) | g` applied to `input` (null: a hole filled by a block body).
  ExprPtr parse_filter_chain(ExprPtr input, bool first_has_pipe = true) {
    bool first = true;
    ChainGuard chain(*this);
    while ((first && !first_has_pipe) || is_op("|")) {
      chain.link();
      if (!(first && !first_has_pipe)) advance();
      first = false;
      const Token& at = cur();
      auto f = node(ExprKind::EXPR_KIND_FILTER, at);
      f->name = parse_dotted_name();
      if (is_op("(")) parse_call_args(*f);
      f->children.push_back(std::move(input));
      input = std::move(f);
    }
    return input;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    ChainGuard chain(*this);
    while (true) {
      chain.link();
      if (is_op("|")) {
        e = parse_filter_chain(std::move(e));
      } else if (is_name("is")) {
        e = parse_test(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_test(ExprPtr e) {
    const Token& at = advance();  // is
    auto t = node(ExprKind::EXPR_KIND_TEST, at);
    t->negated = accept_name("not");
    t->name = parse_dotted_name();
    if (is_op("(")) {
      parse_call_args(*t);
    } else {
      const Token& c = cur();
      bool arg_start = c.kind == TokenKind::TOKEN_KIND_NAME || c.kind == TokenKind::TOKEN_KIND_STRING ||
                       c.kind == TokenKind::TOKEN_KIND_INT || c.kind == TokenKind::TOKEN_KIND_FLOAT ||
                       (c.kind == TokenKind::TOKEN_KIND_OP && (c.text == "[" || c.text == "{"));
      if (arg_start && !is_name("else") && !is_name("or") && !is_name("and")) {
        if (is_name("is")) fail(c, "you cannot chain multiple tests with 'is'");
        t->args.push_back(parse_postfix(parse_primary()));
      }
    }
    t->children.push_back(std::move(e));
    return t;
  }
};

}  // namespace

Template jinja_parse(std::string_view source) { return Parser(jinja_tokenize(source)).parse_template(); }

}  // namespace lcllm::jinja
