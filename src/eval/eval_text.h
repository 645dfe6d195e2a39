// The synthetic task text an eval uses: filler sentences, keys, needle/query templates (the eval-format contract,
// docs/EVALUATION.md). A model directory may carry `lcllm_eval.json` (version 1, every field required) describing
// the text the model was trained on; without it the built-in defaults apply: RULER's English templates
// (arXiv 2404.06654, its scripts/data/synthetic/niah.py and variable_tracking.py wording) over a built-in filler of
// plain sentences, for real checkpoints.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lcllm {

struct EvalText {
  std::vector<std::string> filler;  // haystack sentences, drawn with a seeded RNG and joined with " "
  std::vector<std::string> keys;    // key words; the needles of one prompt use distinct keys
  int32_t value_digits = 7;         // a value is a random integer with exactly this many digits
  std::string needle;               // "... {key} ... {value}."
  std::string query_single;         // "... {key} ..."
  std::string query_multivalue;     // "... {key} ..."
  std::string query_multiquery;     // "... {keys} ..." (keys joined by answer_separator)
  std::vector<std::string> vt_names;  // variable names for variable tracking
  std::string vt_assign;            // "VAR {var} = {value}."
  std::string vt_copy;              // "VAR {var} = VAR {src}."
  std::string query_vt;             // "... {value} ..."
  std::string answer_separator = ", ";
  // Not in the file format: an instruction placed before the haystack by the built-in RULER defaults (RULER's
  // "Some special magic numbers are hidden within the following text..."); empty for lcllm_eval.json models,
  // whose prompt is exactly BOS + haystack + " " + query.
  std::string preamble_niah;
  std::string preamble_vt;
  std::vector<std::string> cwe_words;  // common-words task vocabulary: optional "cwe_words" in the file, else built in
  bool filler_in_order = false;        // natural text (--haystack): read in order from a seeded start
  std::string source;                  // the file it came from, or "built-in defaults"
};

// The built-in defaults (RULER wording, built-in filler and word lists).
EvalText eval_text_defaults();
// The built-in common-words vocabulary (used when lcllm_eval.json has no "cwe_words").
std::vector<std::string> eval_builtin_cwe_words();
// Parses lcllm_eval.json text; throws ERROR_KIND_INVALID_FILE naming `origin`, the field and the rule.
EvalText eval_text_parse(const std::string& json_text, const std::string& origin);
// MODEL_DIR/lcllm_eval.json when it exists, else the defaults.
EvalText eval_text_load(const std::string& model_dir);

// Replaces every "{name}" in `tmpl` with vars[name] in one pass (substituted text is not rescanned); throws
// ERROR_KIND_INVALID_ARGUMENT when the template names a variable not in `vars`.
std::string eval_fill(const std::string& tmpl, const std::map<std::string, std::string>& vars);

// A stable 64-bit fingerprint of everything in the text that changes prompts (FNV-1a over the fields), so a
// resumed run can tell that the task text changed.
uint64_t eval_text_fingerprint(const EvalText& text);

}  // namespace lcllm
