// Small output helpers shared by the evals: whole-file writes that never leave a half-written file behind (write to
// a temporary name, then rename), JSON/JSONL reading for resume, CSV fields, markdown tables, policy labels.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lcllm {

// Writes `content` to `path` (parent directories created) via PATH.tmp + rename. Throws ERROR_KIND_IO.
void eval_write_file(const std::string& path, const std::string& content);
// Removes `path` if it exists (an output this run does not write); a file that cannot be removed is an ERROR_KIND_IO.
void eval_remove_file(const std::string& path);
// Appends one line (a '\n' is added) and flushes. Throws ERROR_KIND_IO.
void eval_append_line(const std::string& path, const std::string& line);
// The parsed JSON object in `path`, or nullopt when the file is missing or is not valid JSON (a cell to redo).
std::optional<nlohmann::json> eval_read_json(const std::string& path);
// Every line of a JSONL file that parses as a JSON object (a torn last line is skipped); empty when missing.
std::vector<nlohmann::json> eval_read_jsonl(const std::string& path);

// A CSV field (RFC 4180: quoted when it holds a comma, quote or newline).
std::string csv_field(const std::string& s);
// A markdown table; every row has header.size() cells.
std::string markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
// "%.*f" without locale surprises.
std::string format_fixed(double v, int decimals);

// A short file-name-safe label for a --policy value: a preset name as is, a plan file by its stem
// ("configs/policies/tidal.json" -> "tidal"); other characters become '_'.
std::string eval_policy_label(const std::string& policy);
// Splits "a,b,c" (spaces trimmed, empty items dropped).
std::vector<std::string> eval_split_list(const std::string& text);
// "4k" -> 4096, "1.5k" -> 1536, "2048" -> 2048, "1m" -> 1048576; throws ERROR_KIND_INVALID_ARGUMENT naming `flag`.
int32_t eval_parse_length(const std::string& text, const std::string& flag);
// "0:100:10" -> 0,10,...,100 (inclusive); "0,50,100" -> 0,50,100; values in [0, 100]. Throws naming `flag`.
std::vector<int32_t> eval_parse_depths(const std::string& text, const std::string& flag);
// Hex of a 64-bit value (fingerprints in result files).
std::string eval_hex(uint64_t v);
// FNV-1a of a string.
uint64_t eval_fnv1a(const std::string& s);

}  // namespace lcllm
