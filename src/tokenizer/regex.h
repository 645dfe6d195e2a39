// A compiled PCRE2 pattern (UTF + Unicode properties, JIT when available) used by Split pre-tokenizers and
// Replace normalizers. Matching is thread-safe: per-thread match data and JIT stack.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lcllm {

class Regex {
 public:
  // Throws lcllm::Error (invalid file) naming `origin` when the pattern does not compile.
  Regex(const std::string& pattern, const std::string& origin);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // All non-empty, non-overlapping matches [start, end) in `subject` (valid UTF-8), left to right.
  void find_all(std::string_view subject, std::vector<std::pair<std::size_t, std::size_t>>& out) const;

 private:
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
};

}  // namespace lcllm
