// Strict JSON parsing and message helpers for the safetensors reader (see safetensors_internal.h).
#include <algorithm>
#include <set>
#include <vector>

#include "io/safetensors_internal.h"

namespace lcllm {

std::string io_quote(std::string_view s) {
  constexpr size_t kMaxShown = 160;
  // Built by appending: GCC 12 reports a false -Wrestrict on "'" + std::string(...).
  std::string out;
  out.reserve(std::min(s.size(), kMaxShown) + 32);
  out += '\'';
  out += s.substr(0, kMaxShown);
  out += '\'';
  if (s.size() > kMaxShown) out.append("... (").append(std::to_string(s.size())).append(" bytes)");
  return out;
}

void safetensors_throw(ErrorKind kind, std::string_view file, std::string_view tensor, const std::string& rule) {
  std::string msg = "safetensors file " + io_quote(file);
  if (!tensor.empty()) msg += ", tensor " + io_quote(tensor);
  throw Error(kind, msg + ": " + rule);
}

nlohmann::json json_parse_strict(std::string_view text, const std::string& doc, const char* top_key_noun,
                                 int max_depth) {
  using nlohmann::json;
  // One key set per open object. The callback sees object_start/object_end in matching pairs because it never
  // discards a value, so the stack mirrors the parser's.
  std::vector<std::set<std::string>> open_objects;
  std::string top_key;  // the depth-1 key being parsed, so nested problems can say which tensor they are in
  auto inside = [&]() { return top_key.empty() ? std::string() : " inside " + io_quote(top_key); };

  json::parser_callback_t track = [&](int depth, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= max_depth) {
          throw Error(ErrorKind::ERROR_KIND_INVALID_FILE,
                      doc + ": JSON nests deeper than " + std::to_string(max_depth) + " levels" + inside());
        }
        if (event == json::parse_event_t::object_start) open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        open_objects.pop_back();
        break;
      case json::parse_event_t::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        if (!open_objects.back().insert(key).second) {
          if (depth == 1) {
            throw Error(ErrorKind::ERROR_KIND_INVALID_FILE,
                        doc + ": duplicate " + top_key_noun + " " + io_quote(key));
          }
          throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, doc + ": duplicate key " + io_quote(key) + inside());
        }
        if (depth == 1) top_key = key;
        break;
      }
      default:
        break;
    }
    return true;
  };

  try {
    return json::parse(text.data(), text.data() + text.size(), track, /*allow_exceptions=*/true,
                       /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    // nlohmann prefixes "[json.exception.parse_error.101] "; the position and reason after it are what help.
    std::string what = e.what();
    if (auto p = what.find("] "); what.rfind("[json.exception", 0) == 0 && p != std::string::npos) {
      what = what.substr(p + 2);
    }
    throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, doc + ": not valid JSON: " + what);
  }
}

}  // namespace lcllm
