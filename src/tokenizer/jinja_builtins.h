// What a chat template can call: attribute/item access (with Python's str/dict/list methods), filters, tests
// and global functions, with the semantics of jinja2's sandbox as transformers configures it (custom tojson,
// raise_exception, strftime_now, namespace with no `_` attributes, no mutating methods).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace lcllm::jinja {

// Resource limits of one render. Exceeding one throws lcllm::Error naming the limit.
struct TemplateLimits {
  std::size_t max_recursion_depth = 64;         // nested macro calls
  std::size_t max_loop_iterations = 1000000;   // for-loop iterations plus items built by range()/filters
  std::size_t max_output_bytes = 16u << 20;    // rendered text, and any string built while rendering
};

// Counts the work of one render against its limits.
class RenderBudget {
 public:
  explicit RenderBudget(const TemplateLimits& limits) : limits_(limits) {}
  const TemplateLimits& limits() const { return limits_; }
  void charge_iterations(std::size_t n);   // faults past max_loop_iterations
  void check_bytes(std::size_t n) const;   // faults when a string of n bytes would pass max_output_bytes

 private:
  const TemplateLimits& limits_;
  std::size_t iterations_ = 0;
};

// obj.name (Python attribute first, then item) and obj[key] (item first, then attribute); missing -> Undefined.
Value jinja_get_attr(const Value& obj, const std::string& name);
Value jinja_get_item(const Value& obj, const Value& key);
Value jinja_slice(const Value& obj, const Value& start, const Value& stop, const Value& step, RenderBudget& budget);

// Python iteration and len(): list items, dict keys, string code points; Undefined iterates as empty.
std::vector<Value> jinja_iterate(const Value& v);
std::int64_t jinja_length(const Value& v);
bool jinja_contains(const Value& container, const Value& item);

// `fmt % args` for str (printf-style subset: %s %r %d %i %f %x %%, flags, width, precision).
std::string jinja_percent_format(const std::string& fmt, const Value& args, RenderBudget& budget);

Value jinja_apply_filter(const std::string& name, const Value& input, CallArgs& args, RenderBudget& budget);
bool jinja_apply_test(const std::string& name, const Value& input, CallArgs& args, RenderBudget& budget);
bool jinja_filter_exists(std::string_view name);
bool jinja_test_exists(std::string_view name);

// raise_exception, strftime_now, namespace, dict, range, cycler, joiner.
std::vector<std::pair<std::string, Value>> jinja_builtin_globals(RenderBudget& budget);

}  // namespace lcllm::jinja
