#include "tokenizer/jinja_render.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "lcllm/error.h"
#include "tokenizer/jinja_pystr.h"

namespace lcllm::jinja {

namespace {

// Bounds the C++ stack a render uses (statement nesting x expression depth x macro recursion), independent of
// the user-visible max_recursion_depth.
constexpr std::size_t kMaxEvalNesting = 3000;

struct Frame {
  std::vector<std::pair<std::string, Value>> vars;
  std::shared_ptr<Frame> parent;

  const Value* find(const std::string& name) const {
    for (const Frame* f = this; f; f = f->parent.get())
      for (const auto& [k, v] : f->vars)
        if (k == name) return &v;
    return nullptr;
  }
  void set(const std::string& name, Value v) {
    for (auto& [k, old] : vars) {
      if (k == name) {
        old = std::move(v);
        return;
      }
    }
    vars.emplace_back(name, std::move(v));
  }
};
using FramePtr = std::shared_ptr<Frame>;

enum class Flow { FLOW_NORMAL, FLOW_BREAK, FLOW_CONTINUE };

bool is_int_like(const Value& v) {
  return v.kind == ValueKind::VALUE_KIND_INT || v.kind == ValueKind::VALUE_KIND_BOOL;
}
std::int64_t int_of(const Value& v) { return v.kind == ValueKind::VALUE_KIND_BOOL ? (v.b ? 1 : 0) : v.i; }
double double_of(const Value& v) { return v.kind == ValueKind::VALUE_KIND_FLOAT ? v.f : static_cast<double>(int_of(v)); }

[[noreturn]] void fail_undefined(const Value& v) { fault(v.s ? *v.s : std::string("value is undefined")); }

[[noreturn]] void bad_operands(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  fault("TypeError: unsupported operand type(s) for " + op + ": '" + value_type_name(a) + "' and '" +
        value_type_name(b) + "'");
}

void check_overflow(bool overflow) {
  if (overflow) fault("integer overflow (integers beyond 64 bits are not supported)");
}

class Interp {
 public:
  explicit Interp(const TemplateLimits& limits) : budget_(limits) {}

  std::string run(const Template& tmpl, const std::vector<std::pair<std::string, Value>>& variables) {
    auto globals = std::make_shared<Frame>();
    globals->vars = jinja_builtin_globals(budget_);
    for (const auto& [k, v] : variables) globals->set(k, v);
    auto root = std::make_shared<Frame>();
    root->parent = globals;
    std::string out;
    exec_body(tmpl.body, root, out);
    return out;
  }

 private:
  RenderBudget budget_;
  std::size_t call_depth_ = 0;
  std::size_t nesting_ = 0;
  std::vector<Value> holes_;  // the body text a filter block / set block feeds to its filter chain

  struct Nest {
    std::size_t& n;
    explicit Nest(std::size_t& counter) : n(counter) {
      if (++n > kMaxEvalNesting) {
        --n;
        fault("template evaluation nested too deeply (more than " + std::to_string(kMaxEvalNesting) + " levels)");
      }
    }
    ~Nest() { --n; }
  };

  void emit(std::string& out, std::string_view s) {
    budget_.charge_output(out.size() + s.size(), s.size());
    out += s;
  }

  // ---- statements ----------------------------------------------------------------------------------------

  Flow exec_body(const StmtList& body, const FramePtr& frame, std::string& out) {
    for (const auto& s : body) {
      Flow f = exec(*s, frame, out);
      if (f != Flow::FLOW_NORMAL) return f;
    }
    return Flow::FLOW_NORMAL;
  }

  Flow exec(const Stmt& s, const FramePtr& frame, std::string& out) {
    try {
      Nest nest(nesting_);
      return exec_inner(s, frame, out);
    } catch (const RenderFault& f) {
      std::string where = "line " + std::to_string(s.line) + ", column " + std::to_string(s.column);
      if (f.raised)
        throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                    "chat template raised an exception at " + where + ": " + f.message);
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "chat template error at " + where + ": " + f.message);
    }
  }

  Flow exec_inner(const Stmt& s, const FramePtr& frame, std::string& out) {
    switch (s.kind) {
      case StmtKind::STMT_KIND_TEXT: emit(out, s.text); return Flow::FLOW_NORMAL;
      case StmtKind::STMT_KIND_OUTPUT: emit(out, value_to_str(eval(*s.expr, frame))); return Flow::FLOW_NORMAL;
      case StmtKind::STMT_KIND_IF:
        for (std::size_t k = 0; k < s.conds.size(); ++k)
          if (value_truthy(eval(*s.conds[k], frame))) return exec_body(s.bodies[k], frame, out);
        if (s.has_else) return exec_body(s.bodies.back(), frame, out);
        return Flow::FLOW_NORMAL;
      case StmtKind::STMT_KIND_FOR: exec_for(s, frame, out); return Flow::FLOW_NORMAL;
      case StmtKind::STMT_KIND_SET: exec_set(s, frame); return Flow::FLOW_NORMAL;
      case StmtKind::STMT_KIND_SET_BLOCK: {
        std::string text;
        exec_body(s.body, frame, text);
        Value v = Value::string(std::move(text));
        if (s.expr) v = apply_hole(*s.expr, frame, std::move(v));
        frame->set(s.targets[0], std::move(v));
        return Flow::FLOW_NORMAL;
      }
      case StmtKind::STMT_KIND_MACRO:
        frame->set(s.name, make_macro(s.name, &s.params, &s.body, frame));
        return Flow::FLOW_NORMAL;
      case StmtKind::STMT_KIND_CALL_BLOCK: {
        const Expr& call = *s.expr;
        Value callee = eval(*call.children[0], frame);
        CallArgs args = eval_args(call, frame);
        args.keyword.emplace_back("caller", make_macro("caller", &s.params, &s.body, frame));
        emit(out, value_to_str(call_value(callee, args)));
        return Flow::FLOW_NORMAL;
      }
      case StmtKind::STMT_KIND_FILTER_BLOCK: {
        std::string text;
        exec_body(s.body, frame, text);
        emit(out, value_to_str(apply_hole(*s.expr, frame, Value::string(std::move(text)))));
        return Flow::FLOW_NORMAL;
      }
      case StmtKind::STMT_KIND_WITH: {
        auto inner = std::make_shared<Frame>();
        inner->parent = frame;
        for (std::size_t k = 0; k < s.targets.size(); ++k) inner->set(s.targets[k], eval(*s.conds[k], frame));
        return exec_body(s.body, inner, out);
      }
      case StmtKind::STMT_KIND_BREAK: return Flow::FLOW_BREAK;
      case StmtKind::STMT_KIND_CONTINUE: return Flow::FLOW_CONTINUE;
      case StmtKind::STMT_KIND_BLOCK: return exec_body(s.body, frame, out);
    }
    return Flow::FLOW_NORMAL;
  }

  Value apply_hole(const Expr& chain, const FramePtr& frame, Value body) {
    holes_.push_back(std::move(body));
    struct Pop {
      std::vector<Value>& h;
      ~Pop() { h.pop_back(); }
    } pop{holes_};
    return eval(chain, frame);
  }

  static void assign_targets(Frame& frame, const std::vector<std::string>& targets, const Value& v) {
    if (targets.size() == 1) {
      frame.set(targets[0], v);
      return;
    }
    if (v.is_undefined()) fail_undefined(v);
    std::vector<Value> parts = jinja_iterate(v);
    if (parts.size() > targets.size())
      fault("ValueError: too many values to unpack (expected " + std::to_string(targets.size()) + ")");
    if (parts.size() < targets.size())
      fault("ValueError: not enough values to unpack (expected " + std::to_string(targets.size()) + ", got " +
            std::to_string(parts.size()) + ")");
    for (std::size_t k = 0; k < targets.size(); ++k) frame.set(targets[k], parts[k]);
  }

  void exec_set(const Stmt& s, const FramePtr& frame) {
    Value v = eval(*s.expr, frame);
    if (s.target_ns.empty()) {
      assign_targets(*frame, s.targets, v);
      return;
    }
    const Value* ns = frame->find(s.target_ns);
    if (!ns || ns->kind != ValueKind::VALUE_KIND_NAMESPACE)
      fault("cannot assign attribute on non-namespace object '" + s.target_ns + "'");
    const std::string& attr = s.targets[0];
    if (!attr.empty() && attr[0] == '_')
      fault("SecurityError: Chat templates cannot store underscore-prefixed attributes on a namespace, but got '" +
            attr + "'. Please rename the attribute.");
    if (v.holds_namespace()) fault("a namespace cannot hold another namespace");
    ns->dict->set(attr, std::move(v));
  }

  void exec_for(const Stmt& s, const FramePtr& frame, std::string& out) {
    Value iterable = eval(*s.expr, frame);
    std::vector<Value> items = jinja_iterate(iterable);
    if (s.cond) {
      std::vector<Value> kept;
      for (const Value& item : items) {
        budget_.charge_iterations(1);
        auto tmp = std::make_shared<Frame>();
        tmp->parent = frame;
        assign_targets(*tmp, s.targets, item);
        if (value_truthy(eval(*s.cond, tmp))) kept.push_back(item);
      }
      items = std::move(kept);
    }
    // jinja2 runs the else block unless some iteration reached the end of its body (break and continue skip it)
    bool completed = false;
    for (std::size_t k = 0; k < items.size(); ++k) {
      budget_.charge_iterations(1);
      auto it = std::make_shared<Frame>();
      it->parent = frame;
      it->set("loop", make_loop(items, k));
      assign_targets(*it, s.targets, items[k]);
      Flow flow = exec_body(s.body, it, out);
      if (flow == Flow::FLOW_NORMAL) completed = true;
      if (flow == Flow::FLOW_BREAK) break;
    }
    if (!completed && s.has_else) exec_body(s.else_body, frame, out);
  }

  static Value make_loop(const std::vector<Value>& items, std::size_t k) {
    const auto n = static_cast<std::int64_t>(items.size());
    const auto i = static_cast<std::int64_t>(k);
    std::vector<std::pair<std::string, Value>> loop;
    loop.reserve(13);
    loop.emplace_back("index", Value::integer(i + 1));
    loop.emplace_back("index0", Value::integer(i));
    loop.emplace_back("revindex", Value::integer(n - i));
    loop.emplace_back("revindex0", Value::integer(n - i - 1));
    loop.emplace_back("first", Value::boolean(k == 0));
    loop.emplace_back("last", Value::boolean(i == n - 1));
    loop.emplace_back("length", Value::integer(n));
    loop.emplace_back("depth", Value::integer(1));
    loop.emplace_back("depth0", Value::integer(0));
    loop.emplace_back("previtem", k > 0 ? items[k - 1] : Value::undefined("there is no previous item"));
    loop.emplace_back("nextitem", i + 1 < n ? items[k + 1] : Value::undefined("there is no next item"));
    loop.emplace_back("cycle", Value::callable("loop.cycle", [k](CallArgs& a) -> Value {
                        if (!a.keyword.empty()) fault("loop.cycle() takes no keyword arguments");
                        if (a.positional.empty()) fault("no items for cycling given");
                        return a.positional[k % a.positional.size()];
                      }));
    return Value::make_dict(std::move(loop));
  }

  Value make_macro(const std::string& name, const std::vector<MacroParam>* params, const StmtList* body,
                   const FramePtr& frame) {
    std::weak_ptr<Frame> def = frame;
    Interp* self = this;
    return Value::callable(name, [self, name, params, body, def](CallArgs& args) -> Value {
      return self->invoke_macro(name, *params, *body, def, args);
    });
  }

  Value invoke_macro(const std::string& name, const std::vector<MacroParam>& params, const StmtList& body,
                     const std::weak_ptr<Frame>& def, CallArgs& args) {
    FramePtr parent = def.lock();
    if (!parent) fault("macro '" + name + "' called after the scope that defined it ended");
    if (call_depth_ >= budget_.limits().max_recursion_depth)
      fault("template exceeded max_recursion_depth (" + std::to_string(budget_.limits().max_recursion_depth) +
            ") in macro '" + name + "'");
    ++call_depth_;
    struct Restore {
      std::size_t& d;
      ~Restore() { --d; }
    } restore{call_depth_};
    auto frame = std::make_shared<Frame>();
    frame->parent = parent;
    for (std::size_t k = 0; k < params.size(); ++k) {
      const MacroParam& p = params[k];
      auto kw = std::find_if(args.keyword.begin(), args.keyword.end(), [&](auto& e) { return e.first == p.name; });
      if (k < args.positional.size()) {
        if (kw != args.keyword.end()) fault("macro '" + name + "' got multiple values for argument '" + p.name + "'");
        frame->set(p.name, args.positional[k]);
      } else if (kw != args.keyword.end()) {
        frame->set(p.name, kw->second);
        args.keyword.erase(kw);
      } else if (p.default_value) {
        frame->set(p.name, eval(*p.default_value, frame));
      } else {
        frame->set(p.name, Value::undefined("parameter '" + p.name + "' was not provided"));
      }
    }
    std::vector<Value> extra;
    for (std::size_t k = params.size(); k < args.positional.size(); ++k) extra.push_back(args.positional[k]);
    frame->set("varargs", Value::make_list(std::move(extra), true));
    std::vector<std::pair<std::string, Value>> kwargs;
    for (auto& [k, v] : args.keyword) {
      if (k == "caller") {
        frame->set("caller", v);
      } else {
        kwargs.emplace_back(k, v);
      }
    }
    frame->set("kwargs", Value::make_dict(std::move(kwargs)));
    std::string out;
    exec_body(body, frame, out);
    return Value::string(std::move(out));
  }

  // ---- expressions ---------------------------------------------------------------------------------------

  CallArgs eval_args(const Expr& e, const FramePtr& frame) {
    CallArgs args;
    for (const auto& a : e.args) args.positional.push_back(eval(*a, frame));
    for (const auto& [k, a] : e.kwargs) {
      for (const auto& seen : args.keyword)
        if (seen.first == k) fault("keyword argument repeated: " + k);
      args.keyword.emplace_back(k, eval(*a, frame));
    }
    return args;
  }

  Value call_value(const Value& callee, CallArgs& args) {
    if (callee.is_undefined()) fail_undefined(callee);
    if (callee.kind != ValueKind::VALUE_KIND_CALLABLE)
      fault("TypeError: '" + value_type_name(callee) + "' object is not callable");
    return callee.fn->fn(args);
  }

  Value eval(const Expr& e, const FramePtr& frame) {
    Nest nest(nesting_);
    budget_.charge_step();
    switch (e.kind) {
      case ExprKind::EXPR_KIND_LITERAL: return e.value;
      case ExprKind::EXPR_KIND_NAME: {
        if (const Value* v = frame->find(e.name)) return *v;
        return Value::undefined("'" + e.name + "' is undefined");
      }
      case ExprKind::EXPR_KIND_LIST:
      case ExprKind::EXPR_KIND_TUPLE: {
        std::vector<Value> items;
        items.reserve(e.children.size());
        for (const auto& c : e.children) items.push_back(eval(*c, frame));
        return Value::make_list(std::move(items), e.kind == ExprKind::EXPR_KIND_TUPLE);
      }
      case ExprKind::EXPR_KIND_DICT: {
        std::vector<std::pair<std::string, Value>> items;
        for (std::size_t k = 0; k + 1 < e.children.size(); k += 2) {
          Value key = eval(*e.children[k], frame);
          if (!key.is_string()) fault("dict literal keys must be strings, not " + value_type_name(key));
          items.emplace_back(key.str(), eval(*e.children[k + 1], frame));
        }
        return Value::make_dict(std::move(items));
      }
      case ExprKind::EXPR_KIND_GETATTR: return jinja_get_attr(eval(*e.children[0], frame), e.name);
      case ExprKind::EXPR_KIND_GETITEM: {
        Value obj = eval(*e.children[0], frame);
        return jinja_get_item(obj, eval(*e.children[1], frame));
      }
      case ExprKind::EXPR_KIND_SLICE: {
        Value obj = eval(*e.children[0], frame);
        Value parts[3];
        for (int k = 0; k < 3; ++k)
          if (e.children[static_cast<std::size_t>(k) + 1])
            parts[k] = eval(*e.children[static_cast<std::size_t>(k) + 1], frame);
        return jinja_slice(obj, parts[0], parts[1], parts[2], budget_);
      }
      case ExprKind::EXPR_KIND_CALL: {
        Value callee = eval(*e.children[0], frame);
        CallArgs args = eval_args(e, frame);
        return call_value(callee, args);
      }
      case ExprKind::EXPR_KIND_FILTER: {
        Value input = e.children[0] ? eval(*e.children[0], frame) : holes_.back();
        CallArgs args = eval_args(e, frame);
        return jinja_apply_filter(e.name, input, args, budget_);
      }
      case ExprKind::EXPR_KIND_TEST: {
        Value input = eval(*e.children[0], frame);
        CallArgs args = eval_args(e, frame);
        return Value::boolean(jinja_apply_test(e.name, input, args, budget_) != e.negated);
      }
      case ExprKind::EXPR_KIND_NOT: return Value::boolean(!value_truthy(eval(*e.children[0], frame)));
      case ExprKind::EXPR_KIND_NEG:
      case ExprKind::EXPR_KIND_POS: {
        Value v = eval(*e.children[0], frame);
        bool neg = e.kind == ExprKind::EXPR_KIND_NEG;
        if (v.kind == ValueKind::VALUE_KIND_FLOAT) return Value::floating(neg ? -v.f : v.f);
        if (is_int_like(v)) {
          std::int64_t x = int_of(v);
          if (neg && x == INT64_MIN) fault("integer overflow (integers beyond 64 bits are not supported)");
          return Value::integer(neg ? -x : x);
        }
        if (v.is_undefined()) fail_undefined(v);
        fault(std::string("TypeError: bad operand type for unary ") + (neg ? "-" : "+") + ": '" +
              value_type_name(v) + "'");
      }
      case ExprKind::EXPR_KIND_BINARY: {
        Value a = eval(*e.children[0], frame);
        Value b = eval(*e.children[1], frame);
        return binary(e.name, a, b);
      }
      case ExprKind::EXPR_KIND_COMPARE: {
        Value left = eval(*e.children[0], frame);
        for (std::size_t k = 0; k < e.ops.size(); ++k) {
          Value right = eval(*e.children[k + 1], frame);
          if (!compare(e.ops[k], left, right)) return Value::boolean(false);
          left = std::move(right);
        }
        return Value::boolean(true);
      }
      case ExprKind::EXPR_KIND_AND: {
        Value a = eval(*e.children[0], frame);
        return value_truthy(a) ? eval(*e.children[1], frame) : a;
      }
      case ExprKind::EXPR_KIND_OR: {
        Value a = eval(*e.children[0], frame);
        return value_truthy(a) ? a : eval(*e.children[1], frame);
      }
      case ExprKind::EXPR_KIND_CONDITIONAL: {
        if (value_truthy(eval(*e.children[0], frame))) return eval(*e.children[1], frame);
        if (e.children[2]) return eval(*e.children[2], frame);
        return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
      }
    }
    fault("unknown expression");
  }

  static bool compare(const std::string& op, const Value& a, const Value& b) {
    if (op == "==") return value_equal(a, b);
    if (op == "!=") return !value_equal(a, b);
    if (op == "in") return jinja_contains(b, a);
    if (op == "notin") return !jinja_contains(b, a);
    int c = value_compare(a, b);
    if (op == "<") return c < 0;
    if (op == "<=") return c <= 0;
    if (op == ">") return c > 0;
    return c >= 0;
  }

  Value repeat(const Value& seq, std::int64_t times) {
    if (times <= 0) return seq.is_string() ? Value::string("") : Value::make_list({}, seq.list->is_tuple);
    auto t = static_cast<std::size_t>(times);
    if (seq.is_string()) {
      if (!seq.str().empty()) budget_.check_bytes(seq.str().size() > SIZE_MAX / t ? SIZE_MAX : seq.str().size() * t);
      std::string out;
      for (std::size_t k = 0; k < t && !seq.str().empty(); ++k) out += seq.str();
      return Value::string(std::move(out));
    }
    const auto& items = seq.list->items;
    if (!items.empty()) check_items(items.size() > SIZE_MAX / t ? SIZE_MAX : items.size() * t);
    std::vector<Value> out;
    for (std::size_t k = 0; k < t && !items.empty(); ++k) out.insert(out.end(), items.begin(), items.end());
    return Value::make_list(std::move(out), seq.list->is_tuple);
  }

  void check_items(std::size_t n) const {
    if (n > budget_.limits().max_loop_iterations)
      fault("list of " + std::to_string(n) + " items exceeds max_loop_iterations (" +
            std::to_string(budget_.limits().max_loop_iterations) + ")");
  }

  Value binary(const std::string& op, const Value& a, const Value& b) {
    if (op == "~") {
      std::string s = value_to_str(a);
      std::string t = value_to_str(b);
      budget_.check_bytes(s.size() + t.size());
      return Value::string(s + t);
    }
    const bool nums = a.is_number() && b.is_number();
    const bool ints = is_int_like(a) && is_int_like(b);
    if (op == "+") {
      if (ints) {
        std::int64_t r = 0;
        check_overflow(__builtin_add_overflow(int_of(a), int_of(b), &r));
        return Value::integer(r);
      }
      if (nums) return Value::floating(double_of(a) + double_of(b));
      if (a.is_string() && b.is_string()) {
        budget_.check_bytes(a.str().size() + b.str().size());
        return Value::string(a.str() + b.str());
      }
      if (a.is_list() && b.is_list() && a.list->is_tuple == b.list->is_tuple) {
        check_items(a.list->items.size() + b.list->items.size());
        std::vector<Value> items = a.list->items;
        items.insert(items.end(), b.list->items.begin(), b.list->items.end());
        return Value::make_list(std::move(items), a.list->is_tuple);
      }
      if (a.is_string() && !b.is_undefined() && !a.is_undefined())
        fault("TypeError: can only concatenate str (not \"" + value_type_name(b) + "\") to str");
      bad_operands("+", a, b);
    }
    if (op == "-") {
      if (ints) {
        std::int64_t r = 0;
        check_overflow(__builtin_sub_overflow(int_of(a), int_of(b), &r));
        return Value::integer(r);
      }
      if (nums) return Value::floating(double_of(a) - double_of(b));
      bad_operands("-", a, b);
    }
    if (op == "*") {
      if (ints) {
        std::int64_t r = 0;
        check_overflow(__builtin_mul_overflow(int_of(a), int_of(b), &r));
        return Value::integer(r);
      }
      if (nums) return Value::floating(double_of(a) * double_of(b));
      if ((a.is_string() || a.is_list()) && is_int_like(b)) return repeat(a, int_of(b));
      if ((b.is_string() || b.is_list()) && is_int_like(a)) return repeat(b, int_of(a));
      bad_operands("*", a, b);
    }
    if (op == "/") {
      if (!nums) bad_operands("/", a, b);
      if (double_of(b) == 0.0) fault("ZeroDivisionError: division by zero");
      return Value::floating(double_of(a) / double_of(b));
    }
    if (op == "//" || op == "%") {
      if (op == "%" && a.is_string()) return Value::string(jinja_percent_format(a.str(), b, budget_));
      if (!nums) bad_operands(op, a, b);
      if (ints) {
        std::int64_t x = int_of(a), y = int_of(b);
        if (y == 0) fault("ZeroDivisionError: integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) {
          if (op == "%") return Value::integer(0);
          fault("integer overflow (integers beyond 64 bits are not supported)");
        }
        std::int64_t q = x / y, r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) {
          q -= 1;
          r += y;
        }
        return Value::integer(op == "//" ? q : r);
      }
      double x = double_of(a), y = double_of(b);
      if (y == 0.0) fault(op == "%" ? "ZeroDivisionError: float modulo" : "ZeroDivisionError: float floor division by zero");
      // CPython's float_divmod
      double mod = std::fmod(x, y);
      double div = (x - mod) / y;
      if (mod != 0.0) {
        if ((y < 0) != (mod < 0)) {
          mod += y;
          div -= 1.0;
        }
      } else {
        mod = std::copysign(0.0, y);
      }
      double floordiv;
      if (div != 0.0) {
        floordiv = std::floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
      } else {
        floordiv = std::copysign(0.0, x / y);
      }
      return Value::floating(op == "%" ? mod : floordiv);
    }
    if (op == "**") {
      if (!nums) bad_operands("**", a, b);
      if (ints && int_of(b) >= 0) {
        std::int64_t base = int_of(a), exp = int_of(b), r = 1;
        while (exp > 0) {
          if (exp & 1) check_overflow(__builtin_mul_overflow(r, base, &r));
          exp >>= 1;
          if (exp > 0) check_overflow(__builtin_mul_overflow(base, base, &base));
        }
        return Value::integer(r);
      }
      if (double_of(a) == 0.0 && double_of(b) < 0)
        fault("ZeroDivisionError: 0.0 cannot be raised to a negative power");
      return Value::floating(std::pow(double_of(a), double_of(b)));
    }
    fault("unknown operator " + op);
  }
};

void check_expr(const Expr& e) {
  auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, "chat template syntax error at line " + std::to_string(e.line) +
                                                        ", column " + std::to_string(e.column) + ": " + what);
  };
  if (e.kind == ExprKind::EXPR_KIND_FILTER && !jinja_filter_exists(e.name)) fail("no filter named '" + e.name + "'");
  if (e.kind == ExprKind::EXPR_KIND_TEST && !jinja_test_exists(e.name)) fail("no test named '" + e.name + "'");
  for (const auto& c : e.children)
    if (c) check_expr(*c);
  for (const auto& c : e.args) check_expr(*c);
  for (const auto& kv : e.kwargs) check_expr(*kv.second);
}

void check_body(const StmtList& body) {
  for (const auto& s : body) {
    if (s->expr) check_expr(*s->expr);
    if (s->cond) check_expr(*s->cond);
    for (const auto& c : s->conds) check_expr(*c);
    for (const auto& p : s->params)
      if (p.default_value) check_expr(*p.default_value);
    for (const auto& b : s->bodies) check_body(b);
    check_body(s->body);
    check_body(s->else_body);
  }
}

}  // namespace

std::string jinja_render(const Template& tmpl, const std::vector<std::pair<std::string, Value>>& variables,
                         const TemplateLimits& limits) {
  try {
    return Interp(limits).run(tmpl, variables);
  } catch (const RenderFault& f) {  // from code outside any statement (never expected, but never escape)
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "chat template error: " + f.message);
  }
}

void jinja_check_names(const Template& tmpl) { check_body(tmpl.body); }

}  // namespace lcllm::jinja
