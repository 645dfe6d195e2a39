// Helpers shared by the safetensors reader's translation units (parser, mmap, sharded index); not module API.
#pragma once
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "lcllm/error.h"

namespace lcllm {

// 'name' in single quotes, cut to a readable length: names come from untrusted files and end up in logs.
std::string io_quote(std::string_view s);

// Throws "safetensors file 'FILE', tensor 'TENSOR': RULE" (the tensor part only when `tensor` is non-empty).
[[noreturn]] void safetensors_throw(ErrorKind kind, std::string_view file, std::string_view tensor,
                                    const std::string& rule);

// Parses `text` as JSON and rejects what nlohmann accepts silently: a key repeated inside one object (nlohmann
// keeps the last value, so a file could hide a second definition of a tensor) and nesting deeper than
// `max_depth` (no valid safetensors or index document nests deeper than 3). Throws ERROR_KIND_INVALID_FILE
// "DOC: RULE"; a repeated top-level key is reported as "duplicate TOP_KEY_NOUN 'key'".
nlohmann::json json_parse_strict(std::string_view text, const std::string& doc, const char* top_key_noun,
                                 int max_depth = 16);

}  // namespace lcllm
