#include "cli/cli_common.h"

#include <cstdio>

#include "lcllm/error.h"
#include <sys/resource.h>

namespace lcllm {

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

size_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return size_t(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

std::vector<int64_t> parse_token_counts(const std::string& text, const std::string& flag) {
  std::vector<int64_t> out;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find(',', begin);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(begin, end - begin);
    int64_t mult = 1;
    if (!item.empty() && (item.back() == 'k' || item.back() == 'K')) mult = 1024, item.pop_back();
    else if (!item.empty() && (item.back() == 'm' || item.back() == 'M')) mult = 1024 * 1024, item.pop_back();
    bool ok = !item.empty() && item.size() <= 9 && item.find_first_not_of("0123456789") == std::string::npos;
    int64_t v = ok ? std::stoll(item) * mult : 0;
    if (!ok || v <= 0 || v > (int64_t(1) << 30)) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                  flag + ": '" + text.substr(begin, end - begin) +
                      "' is not a token count (expected comma-separated positive integers, k = 1024, m = 1048576)");
    }
    out.push_back(v);
    begin = end + 1;
  }
  return out;
}

namespace {
std::string& command_line_storage() {
  static std::string s;
  return s;
}
}  // namespace

void cli_set_command_line(int argc, char** argv) {
  std::string& s = command_line_storage();
  s.clear();
  for (int i = 0; i < argc; ++i) {
    if (i) s += ' ';
    s += i == 0 ? std::string("lcllm") : std::string(argv[i]);
  }
}

const std::string& cli_command_line() { return command_line_storage(); }

}  // namespace lcllm
