#include "eval/eval_text.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "lcllm/error.h"

namespace lcllm {

namespace {

[[noreturn]] void bad(const std::string& origin, const std::string& msg) {
  throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, origin + ": " + msg);
}

const nlohmann::json& field(const nlohmann::json& j, const char* name, const std::string& origin) {
  auto it = j.find(name);
  if (it == j.end()) bad(origin, std::string("missing required field \"") + name + "\"");
  return *it;
}

std::string get_string(const nlohmann::json& j, const char* name, const std::string& origin) {
  const auto& v = field(j, name, origin);
  if (!v.is_string()) bad(origin, std::string("\"") + name + "\" must be a string");
  return v.get<std::string>();
}

std::vector<std::string> get_strings(const nlohmann::json& j, const char* name, size_t min_count,
                                     const std::string& origin) {
  const auto& v = field(j, name, origin);
  if (!v.is_array()) bad(origin, std::string("\"") + name + "\" must be an array of strings");
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& e : v) {
    if (!e.is_string() || e.get<std::string>().empty()) {
      bad(origin, std::string("\"") + name + "\" must hold non-empty strings only");
    }
    if (!seen.insert(e.get<std::string>()).second) {
      bad(origin, std::string("\"") + name + "\" repeats \"" + e.get<std::string>() + "\"");
    }
    out.push_back(e.get<std::string>());
  }
  if (out.size() < min_count) {
    bad(origin, std::string("\"") + name + "\" has " + std::to_string(out.size()) + " entries; at least " +
                    std::to_string(min_count) + " are required");
  }
  return out;
}

// Every "{name}" the template uses must be one of `allowed`, and every name in `required` must appear.
void check_template(const std::string& tmpl, const char* field_name, const std::set<std::string>& allowed,
                    const std::set<std::string>& required, const std::string& origin) {
  std::set<std::string> used;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] != '{') continue;
    size_t end = tmpl.find('}', i);
    if (end == std::string::npos) bad(origin, std::string("\"") + field_name + "\" has an unclosed '{'");
    used.insert(tmpl.substr(i + 1, end - i - 1));
    i = end;
  }
  for (const auto& u : used) {
    if (!allowed.count(u)) bad(origin, std::string("\"") + field_name + "\" uses unknown placeholder {" + u + "}");
  }
  for (const auto& r : required) {
    if (!used.count(r)) bad(origin, std::string("\"") + field_name + "\" must contain {" + r + "}");
  }
}

}  // namespace

std::string eval_fill(const std::string& tmpl, const std::map<std::string, std::string>& vars) {
  std::string out;
  out.reserve(tmpl.size() + 32);
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] == '{') {
      size_t end = tmpl.find('}', i);
      if (end != std::string::npos) {
        auto it = vars.find(tmpl.substr(i + 1, end - i - 1));
        if (it == vars.end()) {
          throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                      "template '" + tmpl + "' uses {" + tmpl.substr(i + 1, end - i - 1) + "}, which has no value");
        }
        out += it->second;
        i = end;
        continue;
      }
    }
    out += tmpl[i];
  }
  return out;
}

EvalText eval_text_parse(const std::string& json_text, const std::string& origin) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    bad(origin, std::string("not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) bad(origin, "the top level must be a JSON object");
  const auto& version = field(j, "version", origin);
  if (!version.is_number_integer() || version.get<int64_t>() != 1) bad(origin, "\"version\" must be 1");

  EvalText t;
  t.source = origin;
  t.filler = get_strings(j, "filler", 50, origin);
  t.keys = get_strings(j, "keys", 100, origin);
  const auto& digits = field(j, "value_digits", origin);
  if (!digits.is_number_integer() || digits.get<int64_t>() < 1 || digits.get<int64_t>() > 18) {
    bad(origin, "\"value_digits\" must be an integer in [1, 18]");
  }
  t.value_digits = int32_t(digits.get<int64_t>());
  t.needle = get_string(j, "needle", origin);
  t.query_single = get_string(j, "query_single", origin);
  t.query_multivalue = get_string(j, "query_multivalue", origin);
  t.query_multiquery = get_string(j, "query_multiquery", origin);
  t.vt_names = get_strings(j, "vt_names", 50, origin);
  t.vt_assign = get_string(j, "vt_assign", origin);
  t.vt_copy = get_string(j, "vt_copy", origin);
  t.query_vt = get_string(j, "query_vt", origin);
  t.answer_separator = get_string(j, "answer_separator", origin);
  if (t.answer_separator.empty()) bad(origin, "\"answer_separator\" must not be empty");
  // Optional (not part of version 1's required set): the common-words task vocabulary.
  if (j.contains("cwe_words")) {
    t.cwe_words = get_strings(j, "cwe_words", 20, origin);
  } else {
    t.cwe_words = eval_builtin_cwe_words();
  }

  check_template(t.needle, "needle", {"key", "value"}, {"key", "value"}, origin);
  check_template(t.query_single, "query_single", {"key"}, {"key"}, origin);
  check_template(t.query_multivalue, "query_multivalue", {"key"}, {"key"}, origin);
  check_template(t.query_multiquery, "query_multiquery", {"keys"}, {"keys"}, origin);
  check_template(t.vt_assign, "vt_assign", {"var", "value"}, {"var", "value"}, origin);
  check_template(t.vt_copy, "vt_copy", {"var", "src"}, {"var", "src"}, origin);
  check_template(t.query_vt, "query_vt", {"value"}, {"value"}, origin);
  return t;
}

EvalText eval_text_load(const std::string& model_dir) {
  const std::string path = model_dir + "/lcllm_eval.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return eval_text_defaults();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::ERROR_KIND_IO, "cannot read '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return eval_text_parse(ss.str(), path);
}

uint64_t eval_text_fingerprint(const EvalText& t) {
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
    h = (h ^ 0xff) * 0x100000001b3ULL;  // field separator
  };
  auto mix_all = [&](const std::vector<std::string>& v) {
    for (const auto& s : v) mix(s);
    mix("|");
  };
  mix_all(t.filler);
  if (t.filler_in_order) mix("in order");
  mix_all(t.keys);
  mix(std::to_string(t.value_digits));
  for (const auto* s : {&t.needle, &t.query_single, &t.query_multivalue, &t.query_multiquery, &t.vt_assign,
                        &t.vt_copy, &t.query_vt, &t.answer_separator, &t.preamble_niah, &t.preamble_vt}) {
    mix(*s);
  }
  mix_all(t.vt_names);
  mix_all(t.cwe_words);
  return h;
}

}  // namespace lcllm
