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

namespace {

// A SAX pass that builds nothing: it bounds nesting and finds duplicate keys (nlohmann's DOM silently keeps the
// last one). Linear in the text: nlohmann's callback parser rescans the parent object at every nested object's
// end, which made a 100k-tensor header take minutes (E12 item 4).
class StrictKeysSax final : public nlohmann::json_sax<nlohmann::json> {
 public:
  StrictKeysSax(const std::string& doc, const char* top_key_noun, int max_depth)
      : doc_(doc), noun_(top_key_noun), max_depth_(max_depth) {}

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    enter();
    open_.emplace_back(true, std::set<std::string>{});
    return true;
  }
  bool key(string_t& k) override {
    if (!open_.back().second.insert(k).second) {
      if (open_.size() == 1) throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, doc_ + ": duplicate " + noun_ + " " + io_quote(k));
      throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, doc_ + ": duplicate key " + io_quote(k) + inside());
    }
    if (open_.size() == 1) top_key_ = k;
    return true;
  }
  bool end_object() override {
    open_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    enter();
    open_.emplace_back(false, std::set<std::string>{});
    return true;
  }
  bool end_array() override {
    open_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    // nlohmann prefixes "[json.exception.parse_error.101] "; the position and reason after it are what help.
    std::string what = e.what();
    if (auto p = what.find("] "); what.rfind("[json.exception", 0) == 0 && p != std::string::npos) {
      what = what.substr(p + 2);
    }
    throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, doc_ + ": not valid JSON: " + what);
  }

 private:
  void enter() {
    if (int(open_.size()) >= max_depth_) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_FILE,
                  doc_ + ": JSON nests deeper than " + std::to_string(max_depth_) + " levels" + inside());
    }
  }
  std::string inside() const { return top_key_.empty() ? std::string() : " inside " + io_quote(top_key_); }

  const std::string& doc_;
  const char* noun_;
  int max_depth_;
  std::vector<std::pair<bool, std::set<std::string>>> open_;  // [depth] (is an object, its keys so far)
  std::string top_key_;  // the depth-1 key being parsed, so nested problems can say which tensor they are in
};

}  // namespace

nlohmann::json json_parse_strict(std::string_view text, const std::string& doc, const char* top_key_noun,
                                 int max_depth) {
  using nlohmann::json;
  // First the checks (depth, duplicates, syntax) without building anything, then the DOM, whose depth is now known
  // to be bounded.
  StrictKeysSax sax(doc, top_key_noun, max_depth);
  json::sax_parse(text.data(), text.data() + text.size(), &sax, nlohmann::detail::input_format_t::json,
                  /*strict=*/true, /*ignore_comments=*/false);
  try {
    return json::parse(text.data(), text.data() + text.size(), nullptr, /*allow_exceptions=*/true,
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
