// Values of the Jinja template language as chat templates see them: Python's data model reduced to what
// JSON-shaped inputs and template literals can produce (None, bool, int, float, str, list/tuple, dict), plus
// Jinja's Undefined, namespace() objects and callables (macros, globals, bound string/dict methods).
//
// Lists, tuples and dicts are immutable once built (the sandbox transformers uses forbids mutating methods), so
// they are shared by pointer; only a namespace is mutable, and it has reference semantics as in Python.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace lcllm::jinja {

// Thrown by value operations and builtins that do not know where in the template they run; the renderer adds
// the template line and turns it into lcllm::Error.
struct RenderFault {
  std::string message;
  bool raised = false;  // from raise_exception(): the message is the template's own
};

[[noreturn]] void fault(std::string message);

enum class ValueKind {
  VALUE_KIND_UNDEFINED,
  VALUE_KIND_NONE,
  VALUE_KIND_BOOL,
  VALUE_KIND_INT,
  VALUE_KIND_FLOAT,
  VALUE_KIND_STRING,
  VALUE_KIND_LIST,       // list or tuple (ListData::is_tuple)
  VALUE_KIND_DICT,
  VALUE_KIND_NAMESPACE,  // namespace(...): a mutable dict reached by attribute
  VALUE_KIND_CALLABLE,
};

struct Value;
struct ListData;
struct DictData;
struct Callable;

// Deepest nesting of lists/dicts a value may have: keeps repr/tojson/compare/destruction recursion bounded.
inline constexpr std::size_t kMaxValueDepth = 256;

struct Value {
  ValueKind kind = ValueKind::VALUE_KIND_UNDEFINED;
  bool b = false;
  std::int64_t i = 0;
  double f = 0.0;
  std::shared_ptr<const std::string> s;  // STRING: the text; UNDEFINED: why (the error to give on use), may be null
  std::shared_ptr<const ListData> list;
  std::shared_ptr<DictData> dict;  // DICT (never mutated after construction) and NAMESPACE (mutable)
  std::shared_ptr<const Callable> fn;

  Value() = default;
  static Value undefined(std::string why = {});
  static Value none();
  static Value boolean(bool v);
  static Value integer(std::int64_t v);
  static Value floating(double v);
  static Value string(std::string v);
  static Value make_list(std::vector<Value> items, bool is_tuple = false);
  static Value make_dict(std::vector<std::pair<std::string, Value>> items);
  static Value make_namespace(std::vector<std::pair<std::string, Value>> items);
  static Value callable(std::string name, std::function<Value(struct CallArgs&)> fn);
  static Value from_json(const nlohmann::ordered_json& j, std::size_t depth = 0);

  bool is_undefined() const { return kind == ValueKind::VALUE_KIND_UNDEFINED; }
  bool is_none() const { return kind == ValueKind::VALUE_KIND_NONE; }
  bool is_string() const { return kind == ValueKind::VALUE_KIND_STRING; }
  bool is_number() const {  // Python: bool is an int
    return kind == ValueKind::VALUE_KIND_INT || kind == ValueKind::VALUE_KIND_FLOAT || kind == ValueKind::VALUE_KIND_BOOL;
  }
  bool is_list() const { return kind == ValueKind::VALUE_KIND_LIST; }
  bool is_dict() const { return kind == ValueKind::VALUE_KIND_DICT; }
  bool is_mapping_like() const { return kind == ValueKind::VALUE_KIND_DICT || kind == ValueKind::VALUE_KIND_NAMESPACE; }
  const std::string& str() const { return *s; }  // only for STRING
  std::size_t depth() const;                     // nesting depth of containers (0 for scalars)
  // Whether this is or contains a namespace; a namespace never stores such a value, so no reference cycle forms.
  bool holds_namespace() const;
};

struct ListData {
  std::vector<Value> items;
  bool is_tuple = false;
  std::size_t depth = 1;
  bool holds_namespace = false;  // some element is (or holds) a namespace
};

struct DictData {
  std::vector<std::pair<std::string, Value>> items;  // insertion order, as Python dicts keep it
  std::size_t depth = 1;
  bool holds_namespace = false;
  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value v);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  // Take the argument at `index` or named `name` (removing the keyword), else `fallback`.
  Value take(std::size_t index, std::string_view name, Value fallback = Value::undefined());
  // Fault when arguments were given that the callee does not take.
  void expect_no_more(std::string_view callee, std::size_t max_positional) const;
};

struct Callable {
  std::string name;
  std::function<Value(CallArgs&)> fn;
};

// Python semantics.
bool value_truthy(const Value& v);
std::string value_to_str(const Value& v);   // str(v); Undefined -> "" (Jinja's default Undefined)
std::string value_repr(const Value& v);     // repr(v)
std::string value_type_name(const Value& v);  // "str", "int", "dict", ... for messages
bool value_equal(const Value& a, const Value& b);
int value_compare(const Value& a, const Value& b);  // <0, 0, >0; faults on unorderable types
std::string py_float_repr(double d);

struct TojsonOptions {
  bool ensure_ascii = false;
  bool has_indent = false;
  std::string indent;  // used when has_indent
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
// json.dumps(v, ...) as transformers' tojson filter calls it.
std::string value_tojson(const Value& v, const TojsonOptions& opts);

}  // namespace lcllm::jinja
