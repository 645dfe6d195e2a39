#include "models/config_reader.h"

#include <cmath>

#include "lcllm/error.h"

namespace lcllm {

int32_t ConfigReader::require_positive_int(const char* key) {
  if (!has(key)) {
    fail(std::string("missing required field '") + key + "'");
    return 0;
  }
  const auto& v = j_.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > INT32_MAX) {
    fail(std::string("field '") + key + "' must be a positive integer, got " + v.dump());
    return 0;
  }
  return static_cast<int32_t>(v.get<int64_t>());
}

int32_t ConfigReader::require_size(const char* key, int64_t max) {
  const int32_t v = require_positive_int(key);
  if (v > max) {
    fail(std::string("field '") + key + "' is " + std::to_string(v) + "; at most " + std::to_string(max) +
         " is supported");
    return 0;
  }
  return v;
}

std::optional<int64_t> ConfigReader::optional_int(const char* key) {
  if (!has(key)) return std::nullopt;
  const auto& v = j_.at(key);
  if (!v.is_number_integer()) {
    fail(std::string("field '") + key + "' must be an integer, got " + v.dump());
    return std::nullopt;
  }
  return v.get<int64_t>();
}

std::optional<double> ConfigReader::optional_number(const char* key) {
  if (!has(key)) return std::nullopt;
  const auto& v = j_.at(key);
  if (!v.is_number() || !std::isfinite(v.get<double>())) {
    fail(std::string("field '") + key + "' must be a finite number, got " + v.dump());
    return std::nullopt;
  }
  return v.get<double>();
}

double ConfigReader::number_or(const char* key, double fallback) {
  return optional_number(key).value_or(fallback);
}

bool ConfigReader::bool_or(const char* key, bool fallback) {
  if (!has(key)) return fallback;
  const auto& v = j_.at(key);
  if (!v.is_boolean()) {
    fail(std::string("field '") + key + "' must be true or false, got " + v.dump());
    return fallback;
  }
  return v.get<bool>();
}

std::string ConfigReader::string_or(const char* key, const std::string& fallback) {
  if (!has(key)) return fallback;
  const auto& v = j_.at(key);
  if (!v.is_string()) {
    fail(std::string("field '") + key + "' must be a string, got " + v.dump());
    return fallback;
  }
  return v.get<std::string>();
}

std::vector<int32_t> ConfigReader::token_ids(const char* key) {
  std::vector<int32_t> ids;
  if (!has(key)) return ids;
  const auto& v = j_.at(key);
  auto take = [&](const nlohmann::json& e) {
    if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() > INT32_MAX) {
      fail(std::string("field '") + key + "' must hold non-negative token ids, got " + v.dump());
      return;
    }
    ids.push_back(static_cast<int32_t>(e.get<int64_t>()));
  };
  if (v.is_array()) {
    for (const auto& e : v) take(e);
  } else {
    take(v);
  }
  return ids;
}

void ConfigReader::finish() const {
  if (problems_.empty()) return;
  std::string msg = path_ + ": invalid model config (" + std::to_string(problems_.size()) + " problem" +
                    (problems_.size() > 1 ? "s" : "") + "):";
  for (const auto& p : problems_) msg += "\n  - " + p;
  throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, msg);
}

}  // namespace lcllm
