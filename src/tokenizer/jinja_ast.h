// Syntax tree of a parsed Jinja template: expressions and statements, each with the line/column it starts at.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace lcllm::jinja {

enum class ExprKind {
  EXPR_KIND_LITERAL,   // value
  EXPR_KIND_NAME,      // name
  EXPR_KIND_LIST,      // children
  EXPR_KIND_TUPLE,     // children
  EXPR_KIND_DICT,      // children: key0, value0, key1, value1, ...
  EXPR_KIND_GETATTR,   // children[0] . name
  EXPR_KIND_GETITEM,   // children[0] [ children[1] ]
  EXPR_KIND_SLICE,     // children[0] [ children[1] : children[2] : children[3] ] (null where omitted)
  EXPR_KIND_CALL,      // children[0] ( args, kwargs )
  EXPR_KIND_FILTER,    // children[0] | name ( args, kwargs )
  EXPR_KIND_TEST,      // children[0] is [not] name ( args )   (negated)
  EXPR_KIND_NOT,       // not children[0]
  EXPR_KIND_NEG,       // -children[0]
  EXPR_KIND_POS,       // +children[0]
  EXPR_KIND_BINARY,    // children[0] op children[1]; op in + - * / // % ** ~
  EXPR_KIND_COMPARE,   // children[0] ops[0] children[1] ops[1] children[2] ...
  EXPR_KIND_AND,
  EXPR_KIND_OR,
  EXPR_KIND_CONDITIONAL,  // children[1] if children[0] else children[2] (children[2] null when no else)
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind = ExprKind::EXPR_KIND_LITERAL;
  int line = 0;
  int column = 0;
  Value value;
  std::string name;  // NAME, GETATTR attribute, FILTER/TEST name, BINARY operator
  bool negated = false;
  std::vector<ExprPtr> children;
  std::vector<std::string> ops;  // COMPARE: "==", "!=", "<", "<=", ">", ">=", "in", "notin"
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

enum class StmtKind {
  STMT_KIND_TEXT,      // text
  STMT_KIND_OUTPUT,    // {{ expr }}
  STMT_KIND_IF,        // conds[k] -> bodies[k]; bodies[conds.size()] is the else body when present
  STMT_KIND_FOR,       // for targets in expr [if cond] body [else else_body]
  STMT_KIND_SET,       // set targets = expr   (or namespace attribute: target_ns.target_attr = expr)
  STMT_KIND_SET_BLOCK, // set target %} body {% endset  (filters applied through `expr` with a hole)
  STMT_KIND_MACRO,     // macro name(params) body
  STMT_KIND_CALL_BLOCK,  // call(params) expr %} body {% endcall
  STMT_KIND_FILTER_BLOCK,  // filter f %} body {% endfilter
  STMT_KIND_WITH,      // with targets = exprs body
  STMT_KIND_BREAK,
  STMT_KIND_CONTINUE,
  STMT_KIND_BLOCK,     // a plain body (generation blocks)
};

struct Stmt;
using StmtList = std::vector<std::unique_ptr<Stmt>>;

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // null when required
};

struct Stmt {
  StmtKind kind = StmtKind::STMT_KIND_TEXT;
  int line = 0;
  int column = 0;
  std::string text;
  ExprPtr expr;                      // OUTPUT, FOR iterable, SET value, CALL_BLOCK call, FILTER_BLOCK filter
  ExprPtr cond;                      // FOR filter
  std::vector<ExprPtr> conds;        // IF conditions, WITH values
  std::vector<StmtList> bodies;      // IF bodies
  StmtList body;
  StmtList else_body;
  std::vector<std::string> targets;  // FOR/SET/WITH names (more than one: tuple unpacking)
  std::string target_ns;             // SET ns.attr: the namespace variable (target_attr in targets[0])
  bool has_else = false;
  std::string name;                  // MACRO
  std::vector<MacroParam> params;    // MACRO, CALL_BLOCK caller params
};

struct Template {
  StmtList body;
};

}  // namespace lcllm::jinja
