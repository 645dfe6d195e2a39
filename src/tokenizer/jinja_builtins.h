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
  // Totals over the whole render (E12 item 3): without them a template can stay inside every per-string and
  // per-loop limit and still run for hours (a million 15 MB strings, nested loops each under the limit).
  std::size_t max_total_bytes = 256u << 20;    // bytes of every string built, summed
  std::size_t max_steps = 20000000;            // expression evaluations
};

// Counts the work of one render against its limits.
class RenderBudget {
 public:
  explicit RenderBudget(const TemplateLimits& limits) : limits_(limits) {}
  const TemplateLimits& limits() const { return limits_; }
  void charge_iterations(std::size_t n);   // faults past max_loop_iterations
  // A string of n bytes is about to be built: faults when n passes max_output_bytes or the render's total of
  // built bytes passes max_total_bytes.
  void check_bytes(std::size_t n);
  // The output grows by `appended` bytes to `total`.
  void charge_output(std::size_t total, std::size_t appended);
  void charge_step() {
    if (++steps_ > limits_.max_steps) fault_steps();
  }

 private:
  [[noreturn]] void fault_steps() const;
  void charge_total(std::size_t n);

  const TemplateLimits& limits_;
  std::size_t iterations_ = 0;
  std::size_t total_bytes_ = 0;
  std::size_t steps_ = 0;
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
