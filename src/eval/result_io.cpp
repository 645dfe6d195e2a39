#include "eval/result_io.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lcllm/error.h"

namespace lcllm {

namespace fs = std::filesystem;

void eval_remove_file(const std::string& path) {
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) throw Error(ErrorKind::ERROR_KIND_IO, "cannot remove '" + path + "': " + ec.message());
}

void eval_write_file(const std::string& path, const std::string& content) {
  std::error_code ec;
  const fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(ErrorKind::ERROR_KIND_IO, "cannot write '" + tmp + "'");
    out << content;
    if (!out.flush()) throw Error(ErrorKind::ERROR_KIND_IO, "cannot write '" + tmp + "'");
  }
  fs::rename(tmp, p, ec);
  if (ec) throw Error(ErrorKind::ERROR_KIND_IO, "cannot rename '" + tmp + "' to '" + path + "': " + ec.message());
}

void eval_append_line(const std::string& path, const std::string& line) {
  std::error_code ec;
  const fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::app);
  if (!out) throw Error(ErrorKind::ERROR_KIND_IO, "cannot append to '" + path + "'");
  out << line << '\n';
  if (!out.flush()) throw Error(ErrorKind::ERROR_KIND_IO, "cannot append to '" + path + "'");
}

std::optional<nlohmann::json> eval_read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  try {
    nlohmann::json j = nlohmann::json::parse(ss.str());
    if (!j.is_object()) return std::nullopt;
    return j;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

std::vector<nlohmann::json> eval_read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path, std::ios::binary);
  std::string line;
  while (std::getline(in, line)) {
    try {
      nlohmann::json j = nlohmann::json::parse(line);
      if (j.is_object()) out.push_back(std::move(j));
    } catch (const nlohmann::json::exception&) {
      // a line torn by an interrupted run: its sample is redone
    }
  }
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  auto row_text = [](const std::vector<std::string>& cells) {
    std::string r = "|";
    for (const auto& c : cells) r += " " + c + " |";
    return r + "\n";
  };
  std::string out = row_text(header);
  out += "|";
  for (size_t i = 0; i < header.size(); ++i) out += i == 0 ? "---|" : "---:|";
  out += "\n";
  for (const auto& r : rows) out += row_text(r);
  return out;
}

std::string format_fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string eval_policy_label(const std::string& policy) {
  std::string label = policy;
  const bool file = policy.find('/') != std::string::npos || (policy.size() > 5 && policy.ends_with(".json"));
  if (file) label = fs::path(policy).stem().string();
  for (char& c : label) {
    if (!(std::isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.')) c = '_';
  }
  return label.empty() ? "policy" : label;
}

std::vector<std::string> eval_split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const size_t b = item.find_first_not_of(" \t");
    if (b == std::string::npos) continue;
    out.push_back(item.substr(b, item.find_last_not_of(" \t") - b + 1));
  }
  return out;
}

int32_t eval_parse_length(const std::string& text, const std::string& flag) {
  double mult = 1;
  std::string num = text;
  if (!num.empty() && (num.back() == 'k' || num.back() == 'K')) {
    mult = 1024;
    num.pop_back();
  } else if (!num.empty() && (num.back() == 'm' || num.back() == 'M')) {
    mult = 1024.0 * 1024.0;
    num.pop_back();
  }
  size_t used = 0;
  double v = -1;
  try {
    v = std::stod(num, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const double tokens = v * mult;
  if (num.empty() || used != num.size() || !(tokens >= 1) || tokens > 2147483647.0 || tokens != std::floor(tokens)) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                flag + ": '" + text + "' is not a token count (expected e.g. 256, 4k, 1.5k, 1m)");
  }
  return int32_t(tokens);
}

std::vector<int32_t> eval_parse_depths(const std::string& text, const std::string& flag) {
  auto number = [&](const std::string& s) {
    size_t used = 0;
    long v = -1;
    try {
      v = std::stol(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (s.empty() || used != s.size() || v < 0 || v > 100) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                  flag + ": '" + s + "' is not a depth percentage in [0, 100] (expected START:STOP:STEP or a list)");
    }
    return int32_t(v);
  };
  std::vector<int32_t> out;
  if (text.find(':') != std::string::npos) {
    std::vector<std::string> parts;
    std::stringstream ss(text);
    std::string p;
    while (std::getline(ss, p, ':')) parts.push_back(p);
    if (parts.size() != 3) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, flag + ": '" + text + "' must be START:STOP:STEP");
    }
    const int32_t start = number(parts[0]), stop = number(parts[1]), step = number(parts[2]);
    if (step <= 0 || stop < start) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                  flag + ": '" + text + "' needs STEP > 0 and STOP >= START");
    }
    for (int32_t d = start; d <= stop; d += step) out.push_back(d);
    if (out.back() != stop) out.push_back(stop);  // the end depth is always measured
  } else {
    for (const auto& item : eval_split_list(text)) out.push_back(number(item));
  }
  if (out.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, flag + ": no depths given");
  return out;
}

std::string eval_hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)v);
  return buf;
}

uint64_t eval_fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

}  // namespace lcllm
