#include "tokenizer/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "tokenizer/jinja_pystr.h"

namespace lcllm::jinja {

void fault(std::string message) { throw RenderFault{std::move(message)}; }

namespace {

std::size_t child_depth(const Value& v) { return v.depth(); }

void check_depth(std::size_t depth) {
  if (depth > kMaxValueDepth)
    fault("value nested deeper than " + std::to_string(kMaxValueDepth) + " lists/dicts");
}

}  // namespace

Value Value::undefined(std::string why) {
  Value v;
  if (!why.empty()) v.s = std::make_shared<const std::string>(std::move(why));
  return v;
}
Value Value::none() {
  Value v;
  v.kind = ValueKind::VALUE_KIND_NONE;
  return v;
}
Value Value::boolean(bool x) {
  Value v;
  v.kind = ValueKind::VALUE_KIND_BOOL;
  v.b = x;
  return v;
}
Value Value::integer(std::int64_t x) {
  Value v;
  v.kind = ValueKind::VALUE_KIND_INT;
  v.i = x;
  return v;
}
Value Value::floating(double x) {
  Value v;
  v.kind = ValueKind::VALUE_KIND_FLOAT;
  v.f = x;
  return v;
}
Value Value::string(std::string x) {
  Value v;
  v.kind = ValueKind::VALUE_KIND_STRING;
  v.s = std::make_shared<const std::string>(std::move(x));
  return v;
}
Value Value::make_list(std::vector<Value> items, bool is_tuple) {
  auto data = std::make_shared<ListData>();
  std::size_t d = 0;
  for (const Value& item : items) {
    d = std::max(d, child_depth(item));
    data->holds_namespace = data->holds_namespace || item.holds_namespace();
  }
  check_depth(d + 1);
  data->depth = d + 1;
  data->items = std::move(items);
  data->is_tuple = is_tuple;
  Value v;
  v.kind = ValueKind::VALUE_KIND_LIST;
  v.list = std::move(data);
  return v;
}
Value Value::make_dict(std::vector<std::pair<std::string, Value>> items) {
  auto data = std::make_shared<DictData>();
  for (auto& [k, item] : items) data->set(k, std::move(item));
  Value v;
  v.kind = ValueKind::VALUE_KIND_DICT;
  v.dict = std::move(data);
  return v;
}
Value Value::make_namespace(std::vector<std::pair<std::string, Value>> items) {
  Value v = make_dict(std::move(items));
  v.kind = ValueKind::VALUE_KIND_NAMESPACE;
  return v;
}
Value Value::callable(std::string name, std::function<Value(CallArgs&)> fn) {
  Value v;
  v.kind = ValueKind::VALUE_KIND_CALLABLE;
  v.fn = std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& j, std::size_t depth) {
  check_depth(depth);
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return none();
    case nlohmann::ordered_json::value_t::boolean: return boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return integer(j.get<std::int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      std::uint64_t u = j.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(INT64_MAX)) fault("integer " + std::to_string(u) + " is out of range");
      return integer(static_cast<std::int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return floating(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from_json(e, depth + 1));
      return make_list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      std::vector<std::pair<std::string, Value>> items;
      items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) items.emplace_back(it.key(), from_json(it.value(), depth + 1));
      return make_dict(std::move(items));
    }
    default: fault("unsupported JSON value (binary or discarded)");
  }
}

std::size_t Value::depth() const {
  if (kind == ValueKind::VALUE_KIND_LIST) return list->depth;
  if (kind == ValueKind::VALUE_KIND_DICT || kind == ValueKind::VALUE_KIND_NAMESPACE) return dict->depth;
  return 0;
}

bool Value::holds_namespace() const {
  if (kind == ValueKind::VALUE_KIND_NAMESPACE) return true;
  if (kind == ValueKind::VALUE_KIND_LIST) return list->holds_namespace;
  if (kind == ValueKind::VALUE_KIND_DICT) return dict->holds_namespace;
  return false;
}

const Value* DictData::find(std::string_view key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

void DictData::set(const std::string& key, Value v) {
  check_depth(v.depth() + 1);
  depth = std::max(depth, v.depth() + 1);
  holds_namespace = holds_namespace || v.holds_namespace();
  for (auto& [k, old] : items) {
    if (k == key) {
      old = std::move(v);
      return;
    }
  }
  items.emplace_back(key, std::move(v));
}

Value CallArgs::take(std::size_t index, std::string_view name, Value fallback) {
  auto kw = std::find_if(keyword.begin(), keyword.end(), [&](const auto& p) { return p.first == name; });
  if (index < positional.size()) {
    if (kw != keyword.end()) fault("got multiple values for argument '" + std::string(name) + "'");
    return positional[index];
  }
  if (kw != keyword.end()) {
    Value v = std::move(kw->second);
    keyword.erase(kw);
    return v;
  }
  return fallback;
}

void CallArgs::expect_no_more(std::string_view callee, std::size_t max_positional) const {
  if (positional.size() > max_positional)
    fault(std::string(callee) + "() takes at most " + std::to_string(max_positional) + " positional arguments (" +
          std::to_string(positional.size()) + " given)");
  if (!keyword.empty())
    fault(std::string(callee) + "() got an unexpected keyword argument '" + keyword.front().first + "'");
}

bool value_truthy(const Value& v) {
  switch (v.kind) {
    case ValueKind::VALUE_KIND_UNDEFINED:
    case ValueKind::VALUE_KIND_NONE: return false;
    case ValueKind::VALUE_KIND_BOOL: return v.b;
    case ValueKind::VALUE_KIND_INT: return v.i != 0;
    case ValueKind::VALUE_KIND_FLOAT: return v.f != 0.0;
    case ValueKind::VALUE_KIND_STRING: return !v.s->empty();
    case ValueKind::VALUE_KIND_LIST: return !v.list->items.empty();
    case ValueKind::VALUE_KIND_DICT: return !v.dict->items.empty();
    default: return true;
  }
}

std::string py_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // e.g. "-1.2345e+02"
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  std::size_t e = sci.find('e');
  std::string digits;
  for (std::size_t k = 0; k < e; ++k)
    if (sci[k] != '.') digits.push_back(sci[k]);
  int exp = std::atoi(sci.c_str() + e + 1);
  std::string out = neg ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out += "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + digits;
    } else {
      std::size_t point = static_cast<std::size_t>(exp) + 1;
      if (digits.size() <= point) {
        out += digits + std::string(point - digits.size(), '0') + ".0";
      } else {
        out += digits.substr(0, point) + "." + digits.substr(point);
      }
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  out += exp < 0 ? "e-" : "e+";
  int a = exp < 0 ? -exp : exp;
  if (a < 10) out += "0";
  out += std::to_string(a);
  return out;
}

std::string value_type_name(const Value& v) {
  switch (v.kind) {
    case ValueKind::VALUE_KIND_UNDEFINED: return "Undefined";
    case ValueKind::VALUE_KIND_NONE: return "NoneType";
    case ValueKind::VALUE_KIND_BOOL: return "bool";
    case ValueKind::VALUE_KIND_INT: return "int";
    case ValueKind::VALUE_KIND_FLOAT: return "float";
    case ValueKind::VALUE_KIND_STRING: return "str";
    case ValueKind::VALUE_KIND_LIST: return v.list->is_tuple ? "tuple" : "list";
    case ValueKind::VALUE_KIND_DICT: return "dict";
    case ValueKind::VALUE_KIND_NAMESPACE: return "Namespace";
    case ValueKind::VALUE_KIND_CALLABLE: return "function";
  }
  return "object";
}

namespace {

void repr_append(std::string& out, const Value& v);

void dict_repr_append(std::string& out, const DictData& d) {
  out += "{";
  bool first = true;
  for (const auto& [k, item] : d.items) {
    if (!first) out += ", ";
    first = false;
    out += py_str_repr(k);
    out += ": ";
    repr_append(out, item);
  }
  out += "}";
}

void repr_append(std::string& out, const Value& v) {
  switch (v.kind) {
    case ValueKind::VALUE_KIND_UNDEFINED: out += "Undefined"; return;
    case ValueKind::VALUE_KIND_STRING: out += py_str_repr(*v.s); return;
    case ValueKind::VALUE_KIND_LIST: {
      const ListData& l = *v.list;
      out += l.is_tuple ? "(" : "[";
      for (std::size_t k = 0; k < l.items.size(); ++k) {
        if (k) out += ", ";
        repr_append(out, l.items[k]);
      }
      if (l.is_tuple && l.items.size() == 1) out += ",";
      out += l.is_tuple ? ")" : "]";
      return;
    }
    case ValueKind::VALUE_KIND_DICT: dict_repr_append(out, *v.dict); return;
    case ValueKind::VALUE_KIND_NAMESPACE:
      out += "<Namespace ";
      dict_repr_append(out, *v.dict);
      out += ">";
      return;
    default: out += value_to_str(v); return;
  }
}

}  // namespace

std::string value_to_str(const Value& v) {
  switch (v.kind) {
    case ValueKind::VALUE_KIND_UNDEFINED: return "";
    case ValueKind::VALUE_KIND_NONE: return "None";
    case ValueKind::VALUE_KIND_BOOL: return v.b ? "True" : "False";
    case ValueKind::VALUE_KIND_INT: return std::to_string(v.i);
    case ValueKind::VALUE_KIND_FLOAT: return py_float_repr(v.f);
    case ValueKind::VALUE_KIND_STRING: return *v.s;
    case ValueKind::VALUE_KIND_CALLABLE: return "<function " + v.fn->name + ">";
    default: {
      std::string out;
      repr_append(out, v);
      return out;
    }
  }
}

std::string value_repr(const Value& v) {
  std::string out;
  repr_append(out, v);
  return out;
}

namespace {

bool numeric(const Value& v) { return v.is_number(); }
double as_double(const Value& v) {
  if (v.kind == ValueKind::VALUE_KIND_FLOAT) return v.f;
  if (v.kind == ValueKind::VALUE_KIND_BOOL) return v.b ? 1.0 : 0.0;
  return static_cast<double>(v.i);
}
bool integral(const Value& v) { return v.kind == ValueKind::VALUE_KIND_INT || v.kind == ValueKind::VALUE_KIND_BOOL; }
std::int64_t as_int(const Value& v) { return v.kind == ValueKind::VALUE_KIND_BOOL ? (v.b ? 1 : 0) : v.i; }

}  // namespace

bool value_equal(const Value& a, const Value& b) {
  if (numeric(a) && numeric(b)) {
    if (integral(a) && integral(b)) return as_int(a) == as_int(b);
    return as_double(a) == as_double(b);
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case ValueKind::VALUE_KIND_UNDEFINED:
    case ValueKind::VALUE_KIND_NONE: return true;
    case ValueKind::VALUE_KIND_STRING: return *a.s == *b.s;
    case ValueKind::VALUE_KIND_LIST: {
      const auto& x = *a.list;
      const auto& y = *b.list;
      if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
      for (std::size_t k = 0; k < x.items.size(); ++k)
        if (!value_equal(x.items[k], y.items[k])) return false;
      return true;
    }
    case ValueKind::VALUE_KIND_DICT: {
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (const auto& [k, item] : a.dict->items) {
        const Value* other = b.dict->find(k);
        if (!other || !value_equal(item, *other)) return false;
      }
      return true;
    }
    case ValueKind::VALUE_KIND_NAMESPACE: return a.dict == b.dict;
    case ValueKind::VALUE_KIND_CALLABLE: return a.fn == b.fn;
    default: return false;
  }
}

int value_compare(const Value& a, const Value& b) {
  if (numeric(a) && numeric(b)) {
    if (integral(a) && integral(b)) return as_int(a) < as_int(b) ? -1 : (as_int(a) > as_int(b) ? 1 : 0);
    double x = as_double(a), y = as_double(b);
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    int c = a.s->compare(*b.s);  // UTF-8 byte order is code point order
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.list->is_tuple == b.list->is_tuple) {
    const auto& x = a.list->items;
    const auto& y = b.list->items;
    for (std::size_t k = 0; k < x.size() && k < y.size(); ++k) {
      if (value_equal(x[k], y[k])) continue;
      return value_compare(x[k], y[k]);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  if (a.is_undefined() || b.is_undefined()) fault(a.is_undefined() && a.s ? *a.s : "comparison with an undefined value");
  fault("TypeError: '<' not supported between instances of '" + value_type_name(a) + "' and '" + value_type_name(b) +
        "'");
}

namespace {

void tojson_append(std::string& out, const Value& v, const TojsonOptions& o, std::size_t level) {
  auto newline_indent = [&](std::size_t lvl) {
    out.push_back('\n');
    for (std::size_t k = 0; k < lvl; ++k) out += o.indent;
  };
  switch (v.kind) {
    case ValueKind::VALUE_KIND_NONE: out += "null"; return;
    case ValueKind::VALUE_KIND_BOOL: out += v.b ? "true" : "false"; return;
    case ValueKind::VALUE_KIND_INT: out += std::to_string(v.i); return;
    case ValueKind::VALUE_KIND_FLOAT:
      if (std::isnan(v.f)) {
        out += "NaN";
      } else if (std::isinf(v.f)) {
        out += v.f < 0 ? "-Infinity" : "Infinity";
      } else {
        out += py_float_repr(v.f);
      }
      return;
    case ValueKind::VALUE_KIND_STRING: json_escape_append(out, *v.s, o.ensure_ascii); return;
    case ValueKind::VALUE_KIND_LIST: {
      const auto& items = v.list->items;
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += "[";
      for (std::size_t k = 0; k < items.size(); ++k) {
        if (k) out += o.item_separator;
        if (o.has_indent) newline_indent(level + 1);
        tojson_append(out, items[k], o, level + 1);
      }
      if (o.has_indent) newline_indent(level);
      out += "]";
      return;
    }
    case ValueKind::VALUE_KIND_DICT: {
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : v.dict->items) items.push_back(&kv);
      if (items.empty()) {
        out += "{}";
        return;
      }
      if (o.sort_keys)
        std::stable_sort(items.begin(), items.end(), [](auto* x, auto* y) { return x->first < y->first; });
      out += "{";
      for (std::size_t k = 0; k < items.size(); ++k) {
        if (k) out += o.item_separator;
        if (o.has_indent) newline_indent(level + 1);
        json_escape_append(out, items[k]->first, o.ensure_ascii);
        out += o.key_separator;
        tojson_append(out, items[k]->second, o, level + 1);
      }
      if (o.has_indent) newline_indent(level);
      out += "}";
      return;
    }
    default: fault("TypeError: Object of type " + value_type_name(v) + " is not JSON serializable");
  }
}

}  // namespace

std::string value_tojson(const Value& v, const TojsonOptions& opts) {
  std::string out;
  tojson_append(out, v, opts, 0);
  return out;
}

}  // namespace lcllm::jinja
