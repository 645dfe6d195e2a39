// Reads typed fields out of a config.json object, collecting every problem instead of stopping at the first
// (ARCHITECTURE.md §5.5: configuration errors list every problem at once). finish() throws one lcllm::Error
// listing them all.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lcllm {

class ConfigReader {
 public:
  ConfigReader(const nlohmann::json& j, std::string path) : j_(j), path_(std::move(path)) {}

  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  const nlohmann::json& raw() const { return j_; }

  // Positive integer that must be present.
  int32_t require_positive_int(const char* key);
  // Integer in [1, max] that must be present: sizes that allocate per unit are bounded before anything is
  // allocated from them (a config claiming 1e8 layers is a message, not std::bad_alloc).
  int32_t require_size(const char* key, int64_t max);
  std::optional<int64_t> optional_int(const char* key);
  double number_or(const char* key, double fallback);
  std::optional<double> optional_number(const char* key);  // null or absent -> nullopt
  bool bool_or(const char* key, bool fallback);
  std::string string_or(const char* key, const std::string& fallback);
  // Token ids given as an int or a list of ints (bos_token_id / eos_token_id).
  std::vector<int32_t> token_ids(const char* key);

  void fail(const std::string& problem) { problems_.push_back(problem); }
  bool ok() const { return problems_.empty(); }
  void finish() const;  // throws if any problem was recorded

  const std::string& path() const { return path_; }

 private:
  const nlohmann::json& j_;
  std::string path_;
  std::vector<std::string> problems_;
};

}  // namespace lcllm
