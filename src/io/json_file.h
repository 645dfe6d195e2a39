// Parsing JSON a user or a client supplied (config.json, plans, tokenizer files) with a nesting bound (E12): a
// value nested 100,000 levels deep would later overflow the stack of anything that walks it recursively (printing
// it in an error, comparing it). The parser itself is iterative; the bound refuses such input while parsing.
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace lcllm {

constexpr int kMaxJsonDepth = 64;

// Throws lcllm::Error (INVALID_FILE) naming `origin` when the text is not JSON or nests deeper than max_depth.
nlohmann::json json_parse_bounded(std::string_view text, const std::string& origin, int max_depth = kMaxJsonDepth);

}  // namespace lcllm
