// Filters, tests and global functions (jinja2's builtins as chat templates use them; tojson as transformers
// overrides it).
#include <algorithm>
#include <cfenv>
#include <cmath>
#include <ctime>
#include <optional>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_pystr.h"

namespace lcllm::jinja {

void RenderBudget::charge_iterations(std::size_t n) {
  iterations_ += n;
  if (iterations_ > limits_.max_loop_iterations || n > limits_.max_loop_iterations)
    fault("template exceeded max_loop_iterations (" + std::to_string(limits_.max_loop_iterations) + ")");
}

void RenderBudget::check_bytes(std::size_t n) {
  if (n > limits_.max_output_bytes)
    fault("template exceeded max_output_bytes (" + std::to_string(limits_.max_output_bytes) + ")");
  charge_total(n);
}

void RenderBudget::charge_output(std::size_t total, std::size_t appended) {
  if (total > limits_.max_output_bytes)
    fault("template exceeded max_output_bytes (" + std::to_string(limits_.max_output_bytes) + ")");
  charge_total(appended);
}

void RenderBudget::charge_total(std::size_t n) {
  total_bytes_ += std::min(n, limits_.max_total_bytes + 1);
  if (total_bytes_ > limits_.max_total_bytes)
    fault("template exceeded max_total_bytes (" + std::to_string(limits_.max_total_bytes) +
          " bytes of strings built in one render)");
}

void RenderBudget::fault_steps() const {
  fault("template exceeded max_steps (" + std::to_string(limits_.max_steps) + " expression evaluations)");
}

namespace {

using FilterFn = Value (*)(const Value&, CallArgs&, RenderBudget&);
using TestFn = bool (*)(const Value&, CallArgs&, RenderBudget&);

bool is_int_like(const Value& v) {
  return v.kind == ValueKind::VALUE_KIND_INT || v.kind == ValueKind::VALUE_KIND_BOOL;
}
std::int64_t int_of(const Value& v) { return v.kind == ValueKind::VALUE_KIND_BOOL ? (v.b ? 1 : 0) : v.i; }
double double_of(const Value& v) { return v.kind == ValueKind::VALUE_KIND_FLOAT ? v.f : static_cast<double>(int_of(v)); }

std::string soft_str(const Value& v) { return value_to_str(v); }

// Jinja's make_attrgetter: "a.b.0" looks up item by item.
Value get_path(const Value& item, const std::string& path) {
  Value cur = item;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool digits = !part.empty() && part.size() < 18 &&
                  std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    cur = jinja_get_item(cur, digits ? Value::integer(std::stoll(part)) : Value::string(part));
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

Value lower_if_string(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::string(py_lower(v.str()));
  return v;
}

std::string attribute_arg(const Value& v) {
  if (v.is_undefined() || v.is_none()) return {};
  if (v.is_string()) return v.str();
  if (is_int_like(v)) return std::to_string(int_of(v));
  fault("attribute must be a string");
}

// ---- filters ---------------------------------------------------------------------------------------------

Value f_abs(const Value& v, CallArgs& a, RenderBudget&) {
  a.expect_no_more("abs", 0);
  if (v.kind == ValueKind::VALUE_KIND_FLOAT) return Value::floating(std::fabs(v.f));
  if (!is_int_like(v)) fault("TypeError: bad operand type for abs(): '" + value_type_name(v) + "'");
  std::int64_t x = int_of(v);
  if (x == INT64_MIN) fault("integer overflow in abs");
  return Value::integer(x < 0 ? -x : x);
}

Value f_attr(const Value& v, CallArgs& a, RenderBudget&) {
  Value name = a.take(0, "name");
  a.expect_no_more("attr", 1);
  if (!name.is_string()) fault("attr name must be a string");
  return jinja_get_attr(v, name.str());
}

Value f_capitalize(const Value& v, CallArgs& a, RenderBudget&) {
  a.expect_no_more("capitalize", 0);
  return Value::string(py_capitalize(soft_str(v)));
}

Value f_default(const Value& v, CallArgs& a, RenderBudget&) {
  Value dflt = a.take(0, "default_value", Value::string(""));
  Value boolean = a.take(1, "boolean", Value::boolean(false));
  a.expect_no_more("default", 2);
  if (v.is_undefined() || (value_truthy(boolean) && !value_truthy(v))) return dflt;
  return v;
}

Value f_dictsort(const Value& v, CallArgs& a, RenderBudget&) {
  bool case_sensitive = value_truthy(a.take(0, "case_sensitive"));
  Value by = a.take(1, "by", Value::string("key"));
  bool reverse = value_truthy(a.take(2, "reverse"));
  a.expect_no_more("dictsort", 3);
  if (!v.is_dict()) fault("dictsort: can only sort a mapping");
  int pos = by.is_string() && by.str() == "value" ? 1 : 0;
  if (!by.is_string() || (by.str() != "key" && by.str() != "value"))
    fault("FilterArgumentError: You can only sort by either \"key\" or \"value\"");
  std::vector<Value> items;
  for (const auto& [k, x] : v.dict->items) items.push_back(Value::make_list({Value::string(k), x}, true));
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    int c = value_compare(lower_if_string(x.list->items[static_cast<std::size_t>(pos)], case_sensitive),
                          lower_if_string(y.list->items[static_cast<std::size_t>(pos)], case_sensitive));
    return reverse ? c > 0 : c < 0;
  });
  return Value::make_list(std::move(items));
}

Value f_escape(const Value& v, CallArgs& a, RenderBudget& b) {
  a.expect_no_more("escape", 0);
  std::string out;
  for (char c : soft_str(v)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  b.check_bytes(out.size());
  return Value::string(std::move(out));
}

Value f_first(const Value& v, CallArgs& a, RenderBudget&) {
  a.expect_no_more("first", 0);
  if (v.is_list()) {
    if (v.list->items.empty()) return Value::undefined("No first item, sequence was empty.");
    return v.list->items.front();
  }
  std::vector<Value> items = jinja_iterate(v);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value f_last(const Value& v, CallArgs& a, RenderBudget&) {
  a.expect_no_more("last", 0);
  std::vector<Value> items = v.is_undefined() ? std::vector<Value>{} : jinja_iterate(v);
  if (v.is_undefined()) fault("TypeError: 'Undefined' object is not reversible");
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

std::optional<std::int64_t> parse_py_int(std::string s, int base) {
  std::string t = py_strip(s, std::nullopt, true, true);
  std::string digits;
  std::size_t k = 0;
  bool neg = false;
  if (k < t.size() && (t[k] == '+' || t[k] == '-')) neg = t[k++] == '-';
  if (base == 16 && k + 1 < t.size() && t[k] == '0' && (t[k + 1] == 'x' || t[k + 1] == 'X')) k += 2;
  bool prev_digit = false;
  for (; k < t.size(); ++k) {
    char c = t[k];
    if (c == '_' && prev_digit && k + 1 < t.size() && t[k + 1] != '_') {
      prev_digit = false;
      continue;
    }
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'z') ? c - 'a' + 10 : (c >= 'A' && c <= 'Z') ? c - 'A' + 10 : 99;
    if (d >= base) return std::nullopt;
    digits.push_back(c);
    prev_digit = true;
  }
  if (digits.empty() || digits.size() > 60) return std::nullopt;
  std::int64_t value = 0;
  for (char c : digits) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c | 0x20) - 'a' + 10;
    if (__builtin_mul_overflow(value, base, &value) || __builtin_add_overflow(value, d, &value)) return std::nullopt;
  }
  return neg ? -value : value;
}

std::optional<double> parse_py_float(const std::string& s) {
  std::string t = py_strip(s, std::nullopt, true, true);
  std::string lower = py_lower(t);
  std::string body = lower;
  double sign = 1.0;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    sign = body[0] == '-' ? -1.0 : 1.0;
    body = body.substr(1);
  }
  if (body == "inf" || body == "infinity") return sign * HUGE_VAL;
  if (body == "nan") return std::nan("");
  if (body.empty() || body.find_first_not_of("0123456789._e+-") != std::string::npos) return std::nullopt;
  std::string clean;
  for (char c : t)
    if (c != '_') clean.push_back(c);
  char* end = nullptr;
  double d = std::strtod(clean.c_str(), &end);
  if (end == clean.c_str() || *end != '\0') return std::nullopt;
  return d;
}

Value f_int(const Value& v, CallArgs& a, RenderBudget&) {
  Value dflt = a.take(0, "default", Value::integer(0));
  Value base_v = a.take(1, "base", Value::integer(10));
  a.expect_no_more("int", 2);
  int base = is_int_like(base_v) ? static_cast<int>(std::clamp<std::int64_t>(int_of(base_v), 2, 36)) : 10;
  if (v.is_string()) {
    if (auto x = parse_py_int(v.str(), base)) return Value::integer(*x);
    if (auto d = parse_py_float(v.str()); d && std::isfinite(*d) && std::fabs(*d) < 9.2e18)
      return Value::integer(static_cast<std::int64_t>(*d));
    return dflt;
  }
  if (is_int_like(v)) return Value::integer(int_of(v));
  if (v.kind == ValueKind::VALUE_KIND_FLOAT && std::isfinite(v.f) && std::fabs(v.f) < 9.2e18)
    return Value::integer(static_cast<std::int64_t>(v.f));
  return dflt;
}

Value f_float(const Value& v, CallArgs& a, RenderBudget&) {
  Value dflt = a.take(0, "default", Value::floating(0.0));
  a.expect_no_more("float", 1);
  if (v.is_string()) {
    if (auto d = parse_py_float(v.str())) return Value::floating(*d);
    return dflt;
  }
  if (v.is_number()) return Value::floating(double_of(v));
  return dflt;
}

Value f_indent(const Value& v, CallArgs& a, RenderBudget& b) {
  Value width = a.take(0, "width", Value::integer(4));
  bool first = value_truthy(a.take(1, "first"));
  bool blank = value_truthy(a.take(2, "blank"));
  a.expect_no_more("indent", 3);
  std::string ind;
  if (width.is_string()) {
    ind = width.str();
  } else if (is_int_like(width)) {
    std::int64_t w = int_of(width);
    if (w > 0) {
      b.check_bytes(static_cast<std::size_t>(std::min<std::int64_t>(w, INT32_MAX)));
      ind.assign(static_cast<std::size_t>(w), ' ');
    }
  } else {
    fault("indent width must be an integer or a string");
  }
  std::string s = soft_str(v) + "\n";
  std::vector<std::string> lines = py_splitlines(s, false);
  std::string out;
  for (std::size_t k = 0; k < lines.size(); ++k) {
    if (k > 0) {
      out += "\n";
      if (blank || !lines[k].empty()) out += ind;
    }
    out += lines[k];
    b.check_bytes(out.size());
  }
  if (first) out = ind + out;
  b.check_bytes(out.size());
  return Value::string(std::move(out));
}

Value f_items(const Value& v, CallArgs& a, RenderBudget&) {
  a.expect_no_more("items", 0);
  if (v.is_undefined()) return Value::make_list({});
  if (!v.is_dict()) fault("Can only get item pairs from a mapping.");
  std::vector<Value> items;
  for (const auto& [k, x] : v.dict->items) items.push_back(Value::make_list({Value::string(k), x}, true));
  return Value::make_list(std::move(items));
}

Value f_join(const Value& v, CallArgs& a, RenderBudget& b) {
  Value sep = a.take(0, "d", Value::string(""));
  std::string attr = attribute_arg(a.take(1, "attribute"));
  a.expect_no_more("join", 2);
  std::string d = soft_str(sep);
  std::string out;
  bool first = true;
  for (const Value& item : jinja_iterate(v)) {
    if (!first) out += d;
    first = false;
    out += soft_str(attr.empty() ? item : get_path(item, attr));
    b.check_bytes(out.size());
  }
  return Value::string(std::move(out));
}

Value f_length(const Value& v, CallArgs& a, RenderBudget&) {
  a.expect_no_more("length", 0);
  return Value::integer(jinja_length(v));
}

Value f_list(const Value& v, CallArgs& a, RenderBudget&) {
  a.expect_no_more("list", 0);
  return Value::make_list(jinja_iterate(v));
}

Value f_lower(const Value& v, CallArgs& a, RenderBudget&) {
  a.expect_no_more("lower", 0);
  return Value::string(py_lower(soft_str(v)));
}

Value f_upper(const Value& v, CallArgs& a, RenderBudget&) {
  a.expect_no_more("upper", 0);
  return Value::string(py_upper(soft_str(v)));
}

Value f_title(const Value& v, CallArgs& a, RenderBudget&) {
  a.expect_no_more("title", 0);
  return Value::string(jinja_title(soft_str(v)));
}

Value f_map(const Value& v, CallArgs& a, RenderBudget& b) {
  std::vector<Value> out;
  auto attr_it = std::find_if(a.keyword.begin(), a.keyword.end(), [](auto& p) { return p.first == "attribute"; });
  if (a.positional.empty() && attr_it != a.keyword.end()) {
    std::string attr = attribute_arg(a.take(SIZE_MAX, "attribute"));
    Value dflt = a.take(SIZE_MAX, "default");
    a.expect_no_more("map", 0);
    for (const Value& item : jinja_iterate(v)) {
      Value x = get_path(item, attr);
      out.push_back(x.is_undefined() && !dflt.is_undefined() ? dflt : x);
    }
    return Value::make_list(std::move(out));
  }
  if (a.positional.empty() || !a.positional[0].is_string()) fault("map requires a filter name or attribute=");
  std::string name = a.positional[0].str();
  for (const Value& item : jinja_iterate(v)) {
    CallArgs rest;
    rest.positional.assign(a.positional.begin() + 1, a.positional.end());
    rest.keyword = a.keyword;
    out.push_back(jinja_apply_filter(name, item, rest, b));
  }
  return Value::make_list(std::move(out));
}

Value min_max(const Value& v, CallArgs& a, bool want_max) {
  bool case_sensitive = value_truthy(a.take(0, "case_sensitive"));
  std::string attr = attribute_arg(a.take(1, "attribute"));
  a.expect_no_more(want_max ? "max" : "min", 2);
  std::vector<Value> items = jinja_iterate(v);
  if (items.empty()) return Value::undefined(std::string("No aggregated item, sequence was empty."));
  std::size_t best = 0;
  auto key = [&](const Value& x) { return lower_if_string(attr.empty() ? x : get_path(x, attr), case_sensitive); };
  for (std::size_t k = 1; k < items.size(); ++k) {
    int c = value_compare(key(items[k]), key(items[best]));
    if (want_max ? c > 0 : c < 0) best = k;
  }
  return items[best];
}

Value f_max(const Value& v, CallArgs& a, RenderBudget&) { return min_max(v, a, true); }
Value f_min(const Value& v, CallArgs& a, RenderBudget&) { return min_max(v, a, false); }

Value f_replace(const Value& v, CallArgs& a, RenderBudget& b) {
  Value old_v = a.take(0, "old"), new_v = a.take(1, "new"), count = a.take(2, "count");
  a.expect_no_more("replace", 3);
  std::int64_t n = count.is_undefined() || count.is_none() ? -1 : (is_int_like(count) ? int_of(count) : -1);
  return Value::string(py_replace(soft_str(v), soft_str(old_v), soft_str(new_v), n, b.limits().max_output_bytes));
}

Value f_reverse(const Value& v, CallArgs& a, RenderBudget&) {
  a.expect_no_more("reverse", 0);
  if (v.is_string()) {
    std::vector<Value> chars = jinja_iterate(v);
    std::string out;
    for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += it->str();
    return Value::string(std::move(out));
  }
  std::vector<Value> items = jinja_iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::make_list(std::move(items));
}

Value f_round(const Value& v, CallArgs& a, RenderBudget&) {
  Value prec_v = a.take(0, "precision", Value::integer(0));
  Value method = a.take(1, "method", Value::string("common"));
  a.expect_no_more("round", 2);
  if (!v.is_number()) fault("round: a number is required, not " + value_type_name(v));
  std::int64_t prec = is_int_like(prec_v) ? std::clamp<std::int64_t>(int_of(prec_v), -300, 300) : 0;
  std::string m = method.is_string() ? method.str() : "";
  if (m != "common" && m != "ceil" && m != "floor") fault("method must be common, ceil or floor");
  double scale = std::pow(10.0, static_cast<double>(prec));
  double x = double_of(v) * scale;
  double r;
  if (m == "ceil") {
    r = std::ceil(x);
  } else if (m == "floor") {
    r = std::floor(x);
  } else {
    std::fesetround(FE_TONEAREST);
    r = std::nearbyint(x);  // Python's round() is round-half-even
  }
  double result = r / scale;
  if (m == "common" && is_int_like(v)) return Value::integer(int_of(v));
  return Value::floating(result);
}

Value f_safe(const Value& v, CallArgs& a, RenderBudget&) {
  a.expect_no_more("safe", 0);
  return v;
}

Value select_impl(const Value& v, CallArgs& a, RenderBudget& b, bool by_attr, bool keep_true) {
  std::string attr;
  std::size_t k = 0;
  if (by_attr) {
    if (a.positional.empty()) fault("selectattr/rejectattr need an attribute name");
    attr = attribute_arg(a.positional[0]);
    k = 1;
  }
  std::optional<std::string> test;
  if (k < a.positional.size()) {
    if (!a.positional[k].is_string()) fault("test name must be a string");
    test = a.positional[k].str();
    ++k;
  }
  std::vector<Value> out;
  for (const Value& item : jinja_iterate(v)) {
    Value x = by_attr ? get_path(item, attr) : item;
    bool ok;
    if (test) {
      CallArgs rest;
      rest.positional.assign(a.positional.begin() + static_cast<std::ptrdiff_t>(k), a.positional.end());
      rest.keyword = a.keyword;
      ok = jinja_apply_test(*test, x, rest, b);
    } else {
      ok = value_truthy(x);
    }
    if (ok == keep_true) out.push_back(item);
  }
  return Value::make_list(std::move(out));
}

Value f_select(const Value& v, CallArgs& a, RenderBudget& b) { return select_impl(v, a, b, false, true); }
Value f_reject(const Value& v, CallArgs& a, RenderBudget& b) { return select_impl(v, a, b, false, false); }
Value f_selectattr(const Value& v, CallArgs& a, RenderBudget& b) { return select_impl(v, a, b, true, true); }
Value f_rejectattr(const Value& v, CallArgs& a, RenderBudget& b) { return select_impl(v, a, b, true, false); }

Value f_sort(const Value& v, CallArgs& a, RenderBudget&) {
  bool reverse = value_truthy(a.take(0, "reverse"));
  bool case_sensitive = value_truthy(a.take(1, "case_sensitive"));
  std::string attr = attribute_arg(a.take(2, "attribute"));
  a.expect_no_more("sort", 3);
  std::vector<Value> items = jinja_iterate(v);
  std::vector<std::pair<Value, std::size_t>> keyed;
  for (std::size_t k = 0; k < items.size(); ++k)
    keyed.emplace_back(lower_if_string(attr.empty() ? items[k] : get_path(items[k], attr), case_sensitive), k);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    int c = value_compare(x.first, y.first);
    return reverse ? c > 0 : c < 0;
  });
  std::vector<Value> out;
  for (auto& [key, idx] : keyed) out.push_back(items[idx]);
  return Value::make_list(std::move(out));
}

Value f_string(const Value& v, CallArgs& a, RenderBudget&) {
  a.expect_no_more("string", 0);
  return Value::string(soft_str(v));
}

Value f_sum(const Value& v, CallArgs& a, RenderBudget&) {
  std::string attr = attribute_arg(a.take(0, "attribute"));
  Value total = a.take(1, "start", Value::integer(0));
  a.expect_no_more("sum", 2);
  for (const Value& item : jinja_iterate(v)) {
    Value x = attr.empty() ? item : get_path(item, attr);
    if (!x.is_number() || !total.is_number())
      fault("TypeError: unsupported operand type(s) for +: '" + value_type_name(total) + "' and '" +
            value_type_name(x) + "'");
    if (is_int_like(x) && is_int_like(total)) {
      std::int64_t r;
      if (__builtin_add_overflow(int_of(total), int_of(x), &r)) fault("integer overflow in sum");
      total = Value::integer(r);
    } else {
      total = Value::floating(double_of(total) + double_of(x));
    }
  }
  return total;
}

Value f_tojson(const Value& v, CallArgs& a, RenderBudget& b) {
  TojsonOptions o;
  o.ensure_ascii = value_truthy(a.take(0, "ensure_ascii"));
  Value indent = a.take(1, "indent");
  Value separators = a.take(2, "separators");
  o.sort_keys = value_truthy(a.take(3, "sort_keys"));
  a.expect_no_more("tojson", 4);
  if (!indent.is_undefined() && !indent.is_none()) {
    o.has_indent = true;
    if (indent.is_string()) {
      o.indent = indent.str();
    } else if (is_int_like(indent)) {
      std::int64_t w = int_of(indent);
      if (w > 0) {
        b.check_bytes(static_cast<std::size_t>(std::min<std::int64_t>(w, INT32_MAX)));
        o.indent.assign(static_cast<std::size_t>(w), ' ');
      }
    } else {
      fault("tojson indent must be an integer or a string");
    }
    o.item_separator = ",";
  }
  if (!separators.is_undefined() && !separators.is_none()) {
    if (!separators.is_list() || separators.list->items.size() != 2 || !separators.list->items[0].is_string() ||
        !separators.list->items[1].is_string())
      fault("tojson separators must be a pair of strings");
    o.item_separator = separators.list->items[0].str();
    o.key_separator = separators.list->items[1].str();
  }
  std::string out = value_tojson(v, o);
  b.check_bytes(out.size());
  return Value::string(std::move(out));
}

Value f_trim(const Value& v, CallArgs& a, RenderBudget&) {
  Value chars = a.take(0, "chars");
  a.expect_no_more("trim", 1);
  std::optional<std::string> set;
  if (!chars.is_undefined() && !chars.is_none()) set = soft_str(chars);
  return Value::string(py_strip(soft_str(v), set, true, true));
}

Value f_unique(const Value& v, CallArgs& a, RenderBudget&) {
  bool case_sensitive = value_truthy(a.take(0, "case_sensitive"));
  std::string attr = attribute_arg(a.take(1, "attribute"));
  a.expect_no_more("unique", 2);
  std::vector<Value> seen, out;
  for (const Value& item : jinja_iterate(v)) {
    Value key = lower_if_string(attr.empty() ? item : get_path(item, attr), case_sensitive);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return value_equal(s, key); })) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return Value::make_list(std::move(out));
}

Value f_wordcount(const Value& v, CallArgs& a, RenderBudget&) {
  a.expect_no_more("wordcount", 0);
  return Value::integer(static_cast<std::int64_t>(py_split(soft_str(v), std::nullopt, -1, false).size()));
}

Value f_format(const Value& v, CallArgs& a, RenderBudget& b) {
  if (!a.keyword.empty()) fault("format with keyword arguments is not supported");
  return Value::string(jinja_percent_format(soft_str(v), Value::make_list(a.positional, true), b));
}

Value f_center(const Value& v, CallArgs& a, RenderBudget& b) {
  Value width = a.take(0, "width", Value::integer(80));
  a.expect_no_more("center", 1);
  std::string s = soft_str(v);
  std::int64_t w = is_int_like(width) ? int_of(width) : 80;
  auto len = static_cast<std::int64_t>(utf8_count(s));
  if (w <= len) return Value::string(s);
  b.check_bytes(static_cast<std::size_t>(std::min<std::int64_t>(w, INT32_MAX)));
  std::int64_t pad = w - len, left = pad / 2 + (pad & w & 1);
  return Value::string(std::string(static_cast<std::size_t>(left), ' ') + s +
                       std::string(static_cast<std::size_t>(pad - left), ' '));
}

struct FilterEntry {
  const char* name;
  FilterFn fn;
};

const FilterEntry kFilters[] = {
    {"abs", f_abs},         {"attr", f_attr},       {"capitalize", f_capitalize}, {"center", f_center},
    {"count", f_length},    {"d", f_default},       {"default", f_default},       {"dictsort", f_dictsort},
    {"e", f_escape},        {"escape", f_escape},   {"first", f_first},           {"float", f_float},
    {"forceescape", f_escape}, {"format", f_format}, {"indent", f_indent},        {"int", f_int},
    {"items", f_items},     {"join", f_join},       {"last", f_last},             {"length", f_length},
    {"list", f_list},       {"lower", f_lower},     {"map", f_map},               {"max", f_max},
    {"min", f_min},         {"reject", f_reject},   {"rejectattr", f_rejectattr}, {"replace", f_replace},
    {"reverse", f_reverse}, {"round", f_round},     {"safe", f_safe},             {"select", f_select},
    {"selectattr", f_selectattr}, {"sort", f_sort}, {"string", f_string},         {"sum", f_sum},
    {"title", f_title},     {"tojson", f_tojson},   {"trim", f_trim},             {"unique", f_unique},
    {"upper", f_upper},     {"wordcount", f_wordcount},
};

// ---- tests -----------------------------------------------------------------------------------------------

Value one_arg(CallArgs& a, const char* test) {
  Value x = a.take(0, "other");
  a.expect_no_more(test, 1);
  return x;
}

bool t_defined(const Value& v, CallArgs& a, RenderBudget&) { a.expect_no_more("defined", 0); return !v.is_undefined(); }
bool t_undefined(const Value& v, CallArgs& a, RenderBudget&) { a.expect_no_more("undefined", 0); return v.is_undefined(); }
bool t_none(const Value& v, CallArgs& a, RenderBudget&) { a.expect_no_more("none", 0); return v.is_none(); }
bool t_boolean(const Value& v, CallArgs& a, RenderBudget&) { a.expect_no_more("boolean", 0); return v.kind == ValueKind::VALUE_KIND_BOOL; }
bool t_true(const Value& v, CallArgs& a, RenderBudget&) { a.expect_no_more("true", 0); return v.kind == ValueKind::VALUE_KIND_BOOL && v.b; }
bool t_false(const Value& v, CallArgs& a, RenderBudget&) { a.expect_no_more("false", 0); return v.kind == ValueKind::VALUE_KIND_BOOL && !v.b; }
bool t_integer(const Value& v, CallArgs& a, RenderBudget&) { a.expect_no_more("integer", 0); return v.kind == ValueKind::VALUE_KIND_INT; }
bool t_float(const Value& v, CallArgs& a, RenderBudget&) { a.expect_no_more("float", 0); return v.kind == ValueKind::VALUE_KIND_FLOAT; }
bool t_number(const Value& v, CallArgs& a, RenderBudget&) { a.expect_no_more("number", 0); return v.is_number(); }
bool t_string(const Value& v, CallArgs& a, RenderBudget&) { a.expect_no_more("string", 0); return v.is_string(); }
bool t_mapping(const Value& v, CallArgs& a, RenderBudget&) { a.expect_no_more("mapping", 0); return v.is_dict(); }
bool t_iterable(const Value& v, CallArgs& a, RenderBudget&) {
  a.expect_no_more("iterable", 0);
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
}
bool t_sequence(const Value& v, CallArgs& a, RenderBudget&) {
  a.expect_no_more("sequence", 0);
  return v.is_string() || v.is_list() || v.is_dict();
}
bool t_callable(const Value& v, CallArgs& a, RenderBudget&) { a.expect_no_more("callable", 0); return v.kind == ValueKind::VALUE_KIND_CALLABLE; }
bool t_escaped(const Value&, CallArgs& a, RenderBudget&) { a.expect_no_more("escaped", 0); return false; }
bool t_lower(const Value& v, CallArgs& a, RenderBudget&) { a.expect_no_more("lower", 0); return py_is_class(soft_str(v), 4); }
bool t_upper(const Value& v, CallArgs& a, RenderBudget&) { a.expect_no_more("upper", 0); return py_is_class(soft_str(v), 5); }
bool t_eq(const Value& v, CallArgs& a, RenderBudget&) { return value_equal(v, one_arg(a, "eq")); }
bool t_ne(const Value& v, CallArgs& a, RenderBudget&) { return !value_equal(v, one_arg(a, "ne")); }
bool t_lt(const Value& v, CallArgs& a, RenderBudget&) { return value_compare(v, one_arg(a, "lt")) < 0; }
bool t_le(const Value& v, CallArgs& a, RenderBudget&) { return value_compare(v, one_arg(a, "le")) <= 0; }
bool t_gt(const Value& v, CallArgs& a, RenderBudget&) { return value_compare(v, one_arg(a, "gt")) > 0; }
bool t_ge(const Value& v, CallArgs& a, RenderBudget&) { return value_compare(v, one_arg(a, "ge")) >= 0; }
bool t_in(const Value& v, CallArgs& a, RenderBudget&) { return jinja_contains(one_arg(a, "in"), v); }
bool t_sameas(const Value& v, CallArgs& a, RenderBudget&) {
  Value o = one_arg(a, "sameas");
  if (v.kind != o.kind) return false;
  switch (v.kind) {
    case ValueKind::VALUE_KIND_NONE:
    case ValueKind::VALUE_KIND_UNDEFINED: return true;
    case ValueKind::VALUE_KIND_BOOL: return v.b == o.b;
    case ValueKind::VALUE_KIND_LIST: return v.list == o.list;
    case ValueKind::VALUE_KIND_DICT:
    case ValueKind::VALUE_KIND_NAMESPACE: return v.dict == o.dict;
    case ValueKind::VALUE_KIND_STRING: return v.s == o.s;
    case ValueKind::VALUE_KIND_CALLABLE: return v.fn == o.fn;
    default: return value_equal(v, o);
  }
}
bool t_odd(const Value& v, CallArgs& a, RenderBudget&) {
  a.expect_no_more("odd", 0);
  if (!is_int_like(v)) fault("odd test needs an integer");
  return int_of(v) % 2 != 0;
}
bool t_even(const Value& v, CallArgs& a, RenderBudget&) {
  a.expect_no_more("even", 0);
  if (!is_int_like(v)) fault("even test needs an integer");
  return int_of(v) % 2 == 0;
}
bool t_divisibleby(const Value& v, CallArgs& a, RenderBudget&) {
  Value n = one_arg(a, "divisibleby");
  if (!is_int_like(v) || !is_int_like(n)) fault("divisibleby needs integers");
  if (int_of(n) == 0) fault("ZeroDivisionError: integer division or modulo by zero");
  if (int_of(n) == -1) return true;
  return int_of(v) % int_of(n) == 0;
}
bool t_filter(const Value& v, CallArgs& a, RenderBudget&) { a.expect_no_more("filter", 0); return v.is_string() && jinja_filter_exists(v.str()); }
bool t_test(const Value& v, CallArgs& a, RenderBudget&) { a.expect_no_more("test", 0); return v.is_string() && jinja_test_exists(v.str()); }

struct TestEntry {
  const char* name;
  TestFn fn;
};

const TestEntry kTests[] = {
    {"defined", t_defined}, {"undefined", t_undefined}, {"none", t_none},       {"boolean", t_boolean},
    {"true", t_true},       {"false", t_false},         {"integer", t_integer}, {"float", t_float},
    {"number", t_number},   {"string", t_string},       {"mapping", t_mapping}, {"iterable", t_iterable},
    {"sequence", t_sequence}, {"callable", t_callable}, {"escaped", t_escaped}, {"lower", t_lower},
    {"upper", t_upper},     {"eq", t_eq},               {"equalto", t_eq},      {"==", t_eq},
    {"ne", t_ne},           {"!=", t_ne},               {"lt", t_lt},           {"lessthan", t_lt},
    {"<", t_lt},            {"le", t_le},               {"<=", t_le},           {"gt", t_gt},
    {"greaterthan", t_gt},  {">", t_gt},                {"ge", t_ge},           {">=", t_ge},
    {"in", t_in},           {"sameas", t_sameas},       {"odd", t_odd},         {"even", t_even},
    {"divisibleby", t_divisibleby}, {"filter", t_filter}, {"test", t_test},
};

std::vector<std::pair<std::string, Value>> namespace_items(CallArgs& args, const char* what) {
  std::vector<std::pair<std::string, Value>> items;
  if (args.positional.size() > 1) fault(std::string(what) + "() takes at most 1 positional argument");
  if (!args.positional.empty()) {
    const Value& init = args.positional[0];
    if (!init.is_dict()) fault(std::string(what) + "() positional argument must be a dict");
    items = init.dict->items;
  }
  for (auto& kv : args.keyword) items.push_back(kv);
  return items;
}

}  // namespace

Value jinja_apply_filter(const std::string& name, const Value& input, CallArgs& args, RenderBudget& budget) {
  for (const FilterEntry& e : kFilters)
    if (name == e.name) return e.fn(input, args, budget);
  fault("no filter named '" + name + "'");
}

bool jinja_apply_test(const std::string& name, const Value& input, CallArgs& args, RenderBudget& budget) {
  for (const TestEntry& e : kTests)
    if (name == e.name) return e.fn(input, args, budget);
  fault("no test named '" + name + "'");
}

bool jinja_filter_exists(std::string_view name) {
  return std::any_of(std::begin(kFilters), std::end(kFilters), [&](const FilterEntry& e) { return name == e.name; });
}

bool jinja_test_exists(std::string_view name) {
  return std::any_of(std::begin(kTests), std::end(kTests), [&](const TestEntry& e) { return name == e.name; });
}

std::vector<std::pair<std::string, Value>> jinja_builtin_globals(RenderBudget& budget) {
  std::vector<std::pair<std::string, Value>> g;
  g.emplace_back("raise_exception", Value::callable("raise_exception", [](CallArgs& a) -> Value {
                   Value msg = a.take(0, "message");
                   throw RenderFault{value_to_str(msg), true};
                 }));
  g.emplace_back("strftime_now", Value::callable("strftime_now", [](CallArgs& a) -> Value {
                   Value fmt = a.take(0, "format");
                   a.expect_no_more("strftime_now", 1);
                   if (!fmt.is_string()) fault("strftime_now format must be a string");
                   if (fmt.str().size() > 256) fault("strftime_now format longer than 256 bytes");
                   std::time_t now = std::time(nullptr);
                   std::tm tm_now{};
                   localtime_r(&now, &tm_now);
                   std::string buf(4096, '\0');
                   std::size_t n = fmt.str().empty() ? 0 : std::strftime(buf.data(), buf.size(), fmt.str().c_str(), &tm_now);
                   buf.resize(n);
                   return Value::string(buf);
                 }));
  g.emplace_back("namespace", Value::callable("namespace", [](CallArgs& a) -> Value {
                   auto items = namespace_items(a, "namespace");
                   for (auto& [k, v] : items) {
                     if (!k.empty() && k[0] == '_')
                       fault("SecurityError: Chat templates cannot store underscore-prefixed attributes on a "
                             "namespace, but got '" + k + "'. Please rename the attribute.");
                     if (v.holds_namespace()) fault("a namespace cannot hold another namespace");
                   }
                   return Value::make_namespace(std::move(items));
                 }));
  g.emplace_back("dict", Value::callable("dict", [](CallArgs& a) -> Value {
                   return Value::make_dict(namespace_items(a, "dict"));
                 }));
  RenderBudget* b = &budget;
  g.emplace_back("range", Value::callable("range", [b](CallArgs& a) -> Value {
                   if (!a.keyword.empty()) fault("range() takes no keyword arguments");
                   if (a.positional.empty() || a.positional.size() > 3) fault("range expected 1 to 3 arguments");
                   for (const Value& x : a.positional)
                     if (!is_int_like(x))
                       fault("TypeError: '" + value_type_name(x) + "' object cannot be interpreted as an integer");
                   std::int64_t start = 0, stop, step = 1;
                   if (a.positional.size() == 1) {
                     stop = int_of(a.positional[0]);
                   } else {
                     start = int_of(a.positional[0]);
                     stop = int_of(a.positional[1]);
                     if (a.positional.size() == 3) step = int_of(a.positional[2]);
                   }
                   if (step == 0) fault("ValueError: range() arg 3 must not be zero");
                   long double span = step > 0 ? (static_cast<long double>(stop) - start) : (static_cast<long double>(start) - stop);
                   long double count_ld = span <= 0 ? 0 : std::ceil(span / std::fabs(static_cast<long double>(step)));
                   if (count_ld > 100000)
                     fault("OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
                   auto count = static_cast<std::size_t>(count_ld);
                   b->charge_iterations(count);
                   std::vector<Value> items;
                   items.reserve(count);
                   for (std::size_t k = 0; k < count; ++k)
                     items.push_back(Value::integer(start + static_cast<std::int64_t>(k) * step));
                   return Value::make_list(std::move(items));
                 }));
  return g;
}

}  // namespace lcllm::jinja
