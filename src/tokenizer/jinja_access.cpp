// Attribute and item access, slicing, iteration, and the str/dict/list methods templates call.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_pystr.h"

namespace lcllm::jinja {

namespace {

bool is_int_like(const Value& v) {
  return v.kind == ValueKind::VALUE_KIND_INT || v.kind == ValueKind::VALUE_KIND_BOOL;
}
std::int64_t int_of(const Value& v) { return v.kind == ValueKind::VALUE_KIND_BOOL ? (v.b ? 1 : 0) : v.i; }

[[noreturn]] void fail_undefined(const Value& v) {
  fault(v.s ? *v.s : std::string("value is undefined"));
}

std::optional<std::string> opt_str(const Value& v, const char* what) {
  if (v.is_undefined() || v.is_none()) return std::nullopt;
  if (!v.is_string()) fault(std::string(what) + " must be a string or None, not " + value_type_name(v));
  return v.str();
}

std::int64_t opt_int(const Value& v, std::int64_t fallback, const char* what) {
  if (v.is_undefined() || v.is_none()) return fallback;
  if (!is_int_like(v)) fault(std::string(what) + " must be an integer, not " + value_type_name(v));
  return int_of(v);
}

Value string_list(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (auto& p : parts) items.push_back(Value::string(std::move(p)));
  return Value::make_list(std::move(items));
}

bool affix_match(const std::string& s, const Value& affix, bool prefix) {
  auto one = [&](const Value& a) {
    if (!a.is_string())
      fault(std::string(prefix ? "startswith" : "endswith") + " first arg must be str or a tuple of str, not " +
            value_type_name(a));
    return prefix ? std::string_view(s).starts_with(a.str()) : std::string_view(s).ends_with(a.str());
  };
  if (affix.is_list() && affix.list->is_tuple) {
    for (const Value& a : affix.list->items)
      if (one(a)) return true;
    return false;
  }
  return one(affix);
}

// str.format: {} {0} {name} with optional !r/!s; format specs are not supported.
std::string str_format(const std::string& fmt, CallArgs& args) {
  std::string out;
  std::size_t auto_index = 0;
  for (std::size_t k = 0; k < fmt.size(); ++k) {
    char c = fmt[k];
    if (c == '}') {
      if (k + 1 < fmt.size() && fmt[k + 1] == '}') {
        out.push_back('}');
        ++k;
        continue;
      }
      fault("ValueError: single '}' encountered in format string");
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (k + 1 < fmt.size() && fmt[k + 1] == '{') {
      out.push_back('{');
      ++k;
      continue;
    }
    std::size_t close = fmt.find('}', k);
    if (close == std::string::npos) fault("ValueError: single '{' encountered in format string");
    std::string field = fmt.substr(k + 1, close - k - 1);
    k = close;
    char conv = 0;
    if (std::size_t bang = field.find('!'); bang != std::string::npos) {
      if (bang + 2 != field.size()) fault("ValueError: bad conversion in format string");
      conv = field[bang + 1];
      field.resize(bang);
    }
    if (field.find(':') != std::string::npos) fault("str.format specs (':...') are not supported");
    Value v;
    if (field.empty()) {
      if (auto_index >= args.positional.size()) fault("IndexError: Replacement index out of range for format");
      v = args.positional[auto_index++];
    } else if (std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      std::size_t idx = field.size() > 6 ? SIZE_MAX : std::stoul(field);
      if (idx >= args.positional.size()) fault("IndexError: Replacement index out of range for format");
      v = args.positional[idx];
    } else {
      auto it = std::find_if(args.keyword.begin(), args.keyword.end(), [&](auto& p) { return p.first == field; });
      if (it == args.keyword.end()) fault("KeyError: '" + field + "'");
      v = it->second;
    }
    out += conv == 'r' ? value_repr(v) : value_to_str(v);
  }
  return out;
}

Value call_str_method(const std::string& s, const std::string& name, CallArgs& args) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    Value chars = args.take(0, "chars");
    args.expect_no_more(name, 1);
    return Value::string(py_strip(s, opt_str(chars, "chars"), name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    Value sep = args.take(0, "sep");
    Value maxsplit = args.take(1, "maxsplit");
    args.expect_no_more(name, 2);
    return string_list(py_split(s, opt_str(sep, "sep"), opt_int(maxsplit, -1, "maxsplit"), name == "rsplit"));
  }
  if (name == "splitlines") {
    Value keep = args.take(0, "keepends");
    args.expect_no_more(name, 1);
    return string_list(py_splitlines(s, value_truthy(keep)));
  }
  if (name == "startswith" || name == "endswith") {
    Value affix = args.take(0, "prefix");
    args.expect_no_more(name, 1);
    if (affix.is_undefined()) fault(name + "() takes at least 1 argument (0 given)");
    return Value::boolean(affix_match(s, affix, name == "startswith"));
  }
  if (name == "lower" || name == "upper" || name == "title" || name == "capitalize" || name == "casefold" ||
      name == "swapcase") {
    args.expect_no_more(name, 0);
    if (name == "upper") return Value::string(py_upper(s));
    if (name == "title") return Value::string(py_title(s));
    if (name == "capitalize") return Value::string(py_capitalize(s));
    if (name == "swapcase") fault("str.swapcase is not supported");
    return Value::string(py_lower(s));
  }
  if (name == "replace") {
    Value old_v = args.take(0, "old"), new_v = args.take(1, "new"), count = args.take(2, "count");
    args.expect_no_more(name, 3);
    if (!old_v.is_string() || !new_v.is_string()) fault("replace() arguments must be str");
    return Value::string(py_replace(s, old_v.str(), new_v.str(), opt_int(count, -1, "count"), 1u << 30));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    Value sub = args.take(0, "sub");
    args.expect_no_more(name, 1);
    if (!sub.is_string()) fault("must be str, not " + value_type_name(sub));
    if (name == "count") return Value::integer(py_count(s, sub.str()));
    std::int64_t at = py_find(s, sub.str(), name[0] == 'r');
    if (at < 0 && name.find("index") != std::string::npos) fault("ValueError: substring not found");
    return Value::integer(at);
  }
  if (name == "join") {
    Value seq = args.take(0, "iterable");
    args.expect_no_more(name, 1);
    std::string out;
    bool first = true;
    for (const Value& item : jinja_iterate(seq)) {
      if (!item.is_string()) fault("TypeError: sequence item: expected str instance, " + value_type_name(item) + " found");
      if (!first) out += s;
      first = false;
      out += item.str();
    }
    return Value::string(std::move(out));
  }
  static const char* const kClasses[] = {"isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper"};
  for (int c = 0; c < 6; ++c) {
    if (name == kClasses[c]) {
      args.expect_no_more(name, 0);
      return Value::boolean(py_is_class(s, c));
    }
  }
  if (name == "format") return Value::string(str_format(s, args));
  fault("str." + name + "() is not supported");
}

const char* const kStrMethods[] = {"strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith",
                                   "endswith", "lower", "upper", "title", "capitalize", "casefold", "swapcase",
                                   "replace", "find", "rfind", "index", "rindex", "count", "join", "isdigit",
                                   "isalpha", "isalnum", "isspace", "islower", "isupper", "format", "center",
                                   "ljust", "rjust", "zfill", "partition", "rpartition", "encode", "expandtabs",
                                   "isnumeric", "isdecimal", "isidentifier", "isprintable", "istitle",
                                   "removeprefix", "removesuffix", "translate", "maketrans", "format_map"};
const char* const kDictSafe[] = {"items", "keys", "values", "get", "copy"};
const char* const kDictUnsafe[] = {"pop", "popitem", "update", "setdefault", "clear", "fromkeys"};
const char* const kListSafe[] = {"index", "count", "copy"};
const char* const kListUnsafe[] = {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"};

template <std::size_t N>
bool in_names(const char* const (&names)[N], const std::string& name) {
  return std::find_if(std::begin(names), std::end(names), [&](const char* n) { return name == n; }) != std::end(names);
}

Value unsafe(const std::string& name, const char* type) {
  return Value::undefined("SecurityError: access to attribute '" + name + "' of '" + type + "' object is unsafe.");
}

Value call_dict_method(const Value& d, const std::string& name, CallArgs& args) {
  const auto& items = d.dict->items;
  if (name == "get") {
    Value key = args.take(0, "key");
    Value fallback = args.take(1, "default", Value::none());
    args.expect_no_more(name, 2);
    if (key.is_string())
      if (const Value* v = d.dict->find(key.str())) return *v;
    return fallback;
  }
  args.expect_no_more(name, 0);
  if (name == "copy") return d;
  std::vector<Value> out;
  out.reserve(items.size());
  for (const auto& [k, v] : items) {
    if (name == "keys") {
      out.push_back(Value::string(k));
    } else if (name == "values") {
      out.push_back(v);
    } else {
      out.push_back(Value::make_list({Value::string(k), v}, true));
    }
  }
  return Value::make_list(std::move(out));
}

Value call_list_method(const Value& l, const std::string& name, CallArgs& args) {
  if (name == "copy") {
    args.expect_no_more(name, 0);
    return l;
  }
  Value x = args.take(0, "value");
  args.expect_no_more(name, 1);
  const auto& items = l.list->items;
  std::int64_t count = 0;
  for (std::size_t k = 0; k < items.size(); ++k) {
    if (!value_equal(items[k], x)) continue;
    if (name == "index") return Value::integer(static_cast<std::int64_t>(k));
    ++count;
  }
  if (name == "index") fault("ValueError: " + value_repr(x) + " is not in list");
  return Value::integer(count);
}

Value bound_method(const Value& receiver, const std::string& name) {
  std::string qual = value_type_name(receiver) + "." + name;
  return Value::callable(qual, [receiver, name](CallArgs& args) -> Value {
    if (receiver.is_string()) return call_str_method(receiver.str(), name, args);
    if (receiver.is_dict()) return call_dict_method(receiver, name, args);
    return call_list_method(receiver, name, args);
  });
}

// jinja2's object_type_repr: "None" or "<type> object".
std::string object_type_repr(const Value& obj) {
  if (obj.is_none()) return "None";
  std::string s = value_type_name(obj);
  s += " object";
  return s;
}

// The messages jinja2's Undefined gives when used.
Value missing_attr(const Value& obj, const std::string& name) {
  std::string msg = "'";  // built by appends: GCC 12 warns (-Wrestrict, falsely) on the operator+ chain
  msg += object_type_repr(obj);
  msg += "' has no attribute ";
  msg += py_str_repr(name);
  return Value::undefined(std::move(msg));
}

Value missing_element(const Value& obj, const Value& key) {
  if (key.is_string()) return missing_attr(obj, key.str());
  std::string msg = object_type_repr(obj);
  msg += " has no element ";
  msg += value_repr(key);
  return Value::undefined(std::move(msg));
}

// Python attribute lookup only (no item fallback): methods of str/dict/list.
Value python_attr(const Value& obj, const std::string& name, bool* found) {
  *found = true;
  if (obj.is_string() && in_names(kStrMethods, name)) return bound_method(obj, name);
  if (obj.is_dict()) {
    if (in_names(kDictSafe, name)) return bound_method(obj, name);
    if (in_names(kDictUnsafe, name)) return unsafe(name, "dict");
  }
  if (obj.is_list()) {
    if (in_names(kListSafe, name)) return bound_method(obj, name);
    if (in_names(kListUnsafe, name)) return unsafe(name, obj.list->is_tuple ? "tuple" : "list");
  }
  *found = false;
  return Value::undefined();
}

}  // namespace

Value jinja_get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.kind == ValueKind::VALUE_KIND_NAMESPACE) {
    if (const Value* v = obj.dict->find(name)) return *v;
    return missing_attr(obj, name);
  }
  bool found = false;
  Value attr = python_attr(obj, name, &found);
  if (found) return attr;
  if (obj.is_dict())
    if (const Value* v = obj.dict->find(name)) return *v;
  return missing_attr(obj, name);
}

Value jinja_get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_dict() || obj.kind == ValueKind::VALUE_KIND_NAMESPACE) {
    if (key.is_string()) {
      if (const Value* v = obj.dict->find(key.str())) return *v;
      if (obj.is_dict()) return jinja_get_attr(obj, key.str());
    }
    return missing_element(obj, key);
  }
  if ((obj.is_list() || obj.is_string()) && is_int_like(key)) {
    std::int64_t idx = int_of(key);
    if (obj.is_list()) {
      auto n = static_cast<std::int64_t>(obj.list->items.size());
      if (idx < 0) idx += n;
      if (idx >= 0 && idx < n) return obj.list->items[static_cast<std::size_t>(idx)];
    } else {
      std::vector<std::size_t> offs = utf8_offsets(obj.str());
      auto n = static_cast<std::int64_t>(offs.size() - 1);
      if (idx < 0) idx += n;
      if (idx >= 0 && idx < n) {
        auto u = static_cast<std::size_t>(idx);
        return Value::string(obj.str().substr(offs[u], offs[u + 1] - offs[u]));
      }
    }
    return missing_element(obj, key);
  }
  if (key.is_string()) {
    bool found = false;
    Value attr = python_attr(obj, key.str(), &found);
    if (found) return attr;
  }
  return missing_element(obj, key);
}

Value jinja_slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v,
                  RenderBudget& budget) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (!obj.is_list() && !obj.is_string()) fault("'" + value_type_name(obj) + "' object is not subscriptable");
  auto bound = [](const Value& v, const char* what) -> std::optional<std::int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!is_int_like(v)) fault(std::string("slice ") + what + " must be an integer or None");
    return int_of(v);
  };
  std::optional<std::int64_t> start = bound(start_v, "start"), stop = bound(stop_v, "stop"),
                              step_o = bound(step_v, "step");
  std::int64_t step = step_o.value_or(1);
  if (step == 0) fault("ValueError: slice step cannot be zero");
  std::vector<std::size_t> offs;
  std::int64_t n;
  if (obj.is_list()) {
    n = static_cast<std::int64_t>(obj.list->items.size());
  } else {
    offs = utf8_offsets(obj.str());
    n = static_cast<std::int64_t>(offs.size() - 1);
  }
  // Python's slice.indices()
  auto clamp = [&](std::optional<std::int64_t> v, std::int64_t dflt) {
    if (!v) return dflt;
    std::int64_t x = *v;
    if (x < 0) {
      x += n;
      if (x < 0) x = step < 0 ? -1 : 0;
    } else if (x >= n) {
      x = step < 0 ? n - 1 : n;
    }
    return x;
  };
  std::int64_t lo = clamp(start, step < 0 ? n - 1 : 0);
  std::int64_t hi = clamp(stop, step < 0 ? -1 : n);
  std::vector<std::int64_t> idx;
  if (step > 0) {
    for (std::int64_t k = lo; k < hi; k += step) idx.push_back(k);
  } else {
    for (std::int64_t k = lo; k > hi; k += step) idx.push_back(k);
  }
  if (obj.is_list()) {
    std::vector<Value> items;
    items.reserve(idx.size());
    for (std::int64_t k : idx) items.push_back(obj.list->items[static_cast<std::size_t>(k)]);
    return Value::make_list(std::move(items), obj.list->is_tuple);
  }
  std::string out;
  for (std::int64_t k : idx) {
    auto u = static_cast<std::size_t>(k);
    out.append(obj.str(), offs[u], offs[u + 1] - offs[u]);
  }
  budget.check_bytes(out.size());
  return Value::string(std::move(out));
}

std::vector<Value> jinja_iterate(const Value& v) {
  switch (v.kind) {
    case ValueKind::VALUE_KIND_UNDEFINED: return {};
    case ValueKind::VALUE_KIND_LIST: return v.list->items;
    case ValueKind::VALUE_KIND_DICT: {
      std::vector<Value> keys;
      keys.reserve(v.dict->items.size());
      for (const auto& kv : v.dict->items) keys.push_back(Value::string(kv.first));
      return keys;
    }
    case ValueKind::VALUE_KIND_STRING: {
      std::vector<Value> chars;
      const std::string& s = v.str();
      for (std::size_t pos = 0; pos < s.size();) {
        std::size_t len = utf8_char_len(s, pos);
        chars.push_back(Value::string(s.substr(pos, len)));
        pos += len;
      }
      return chars;
    }
    default: fault("TypeError: '" + value_type_name(v) + "' object is not iterable");
  }
}

std::int64_t jinja_length(const Value& v) {
  switch (v.kind) {
    case ValueKind::VALUE_KIND_UNDEFINED: return 0;
    case ValueKind::VALUE_KIND_LIST: return static_cast<std::int64_t>(v.list->items.size());
    case ValueKind::VALUE_KIND_DICT: return static_cast<std::int64_t>(v.dict->items.size());
    case ValueKind::VALUE_KIND_STRING: return static_cast<std::int64_t>(utf8_count(v.str()));
    default: fault("TypeError: object of type '" + value_type_name(v) + "' has no len()");
  }
}

bool jinja_contains(const Value& container, const Value& item) {
  switch (container.kind) {
    case ValueKind::VALUE_KIND_UNDEFINED: return false;
    case ValueKind::VALUE_KIND_STRING:
      if (!item.is_string())
        fault("TypeError: 'in <string>' requires string as left operand, not " + value_type_name(item));
      return container.str().find(item.str()) != std::string::npos;
    case ValueKind::VALUE_KIND_LIST:
      for (const Value& x : container.list->items)
        if (value_equal(x, item)) return true;
      return false;
    case ValueKind::VALUE_KIND_DICT: return item.is_string() && container.dict->find(item.str()) != nullptr;
    default: fault("TypeError: argument of type '" + value_type_name(container) + "' is not iterable");
  }
}

std::string jinja_percent_format(const std::string& fmt, const Value& args, RenderBudget& budget) {
  std::vector<Value> values;
  if (args.is_list() && args.list->is_tuple) {
    values = args.list->items;
  } else {
    values.push_back(args);
  }
  std::size_t next = 0;
  std::string out;
  for (std::size_t k = 0; k < fmt.size(); ++k) {
    if (fmt[k] != '%') {
      out.push_back(fmt[k]);
      continue;
    }
    if (++k >= fmt.size()) fault("ValueError: incomplete format");
    if (fmt[k] == '%') {
      out.push_back('%');
      continue;
    }
    if (fmt[k] == '(') fault("%(name) formatting is not supported");
    std::string flags;
    while (k < fmt.size() && std::string_view("-+ 0#").find(fmt[k]) != std::string_view::npos) flags += fmt[k++];
    int width = 0, precision = -1;
    while (k < fmt.size() && fmt[k] >= '0' && fmt[k] <= '9' && width < 1000) width = width * 10 + (fmt[k++] - '0');
    if (k < fmt.size() && fmt[k] == '.') {
      precision = 0;
      ++k;
      while (k < fmt.size() && fmt[k] >= '0' && fmt[k] <= '9' && precision < 1000)
        precision = precision * 10 + (fmt[k++] - '0');
    }
    if (k >= fmt.size()) fault("ValueError: incomplete format");
    char conv = fmt[k];
    if (next >= values.size()) fault("TypeError: not enough arguments for format string");
    const Value& v = values[next++];
    std::string piece;
    if (conv == 's' || conv == 'r' || conv == 'a') {
      piece = conv == 's' ? value_to_str(v) : value_repr(v);
      if (precision >= 0 && static_cast<std::size_t>(precision) < piece.size())
        piece.resize(static_cast<std::size_t>(precision));
    } else if (conv == 'd' || conv == 'i' || conv == 'x' || conv == 'X' || conv == 'o' || conv == 'f' ||
               conv == 'F' || conv == 'e' || conv == 'g') {
      if (!v.is_number()) fault("TypeError: %" + std::string(1, conv) + " format: a real number is required, not " +
                                value_type_name(v));
      double d = v.kind == ValueKind::VALUE_KIND_FLOAT ? v.f : static_cast<double>(int_of(v));
      char buf[512];
      std::string spec = "%" + flags + (width > 0 ? std::to_string(width) : "");
      width = 0;  // applied by snprintf
      if (conv == 'd' || conv == 'i' || conv == 'x' || conv == 'X' || conv == 'o') {
        long long iv = v.kind == ValueKind::VALUE_KIND_FLOAT ? static_cast<long long>(std::trunc(d)) : int_of(v);
        if (v.kind == ValueKind::VALUE_KIND_FLOAT && !std::isfinite(d)) fault("OverflowError: cannot convert float");
        spec += "ll" + std::string(1, conv == 'i' ? 'd' : conv);
        std::snprintf(buf, sizeof(buf), spec.c_str(), iv);
      } else {
        spec += ".*" + std::string(1, conv);
        std::snprintf(buf, sizeof(buf), spec.c_str(), precision < 0 ? 6 : std::min(precision, 100), d);
      }
      piece = buf;
    } else {
      fault(std::string("ValueError: unsupported format character '") + conv + "'");
    }
    std::size_t len = utf8_count(piece);
    if (static_cast<std::size_t>(width) > len) {
      std::string pad(static_cast<std::size_t>(width) - len, ' ');
      piece = flags.find('-') != std::string::npos ? piece + pad : pad + piece;
    }
    out += piece;
    budget.check_bytes(out.size());
  }
  if (next < values.size() && args.is_list() && args.list->is_tuple)
    fault("TypeError: not all arguments converted during string formatting");
  return out;
}

}  // namespace lcllm::jinja
