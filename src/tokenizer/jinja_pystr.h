// Python str semantics over UTF-8 bytes: the string methods and filters chat templates call (strip, split,
// splitlines, startswith, upper/lower, title ...), counted and sliced by code point as Python counts them.
//
// Invalid UTF-8 never fails here: each bad byte counts as one code point and is kept as is (like Python's
// surrogateescape), so a hostile template cannot make these functions read out of bounds.
#pragma once
#include "tokenizer/utf8_encode.h"
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lcllm::jinja {

// Byte length of the code point starting at s[pos] (1 for an invalid byte).
std::size_t utf8_char_len(std::string_view s, std::size_t pos);
// Decodes the code point at s[pos]; an invalid byte b decodes to 0xDC00 + b.
char32_t utf8_decode_at(std::string_view s, std::size_t pos, std::size_t* len);
// Byte offsets of every code point start, plus s.size() at the end.
std::vector<std::size_t> utf8_offsets(std::string_view s);
std::size_t utf8_count(std::string_view s);

bool py_isspace(char32_t cp);  // str.isspace() / regex \s for str patterns
// Length of the Python-whitespace prefix / suffix of s (bytes).
std::size_t py_space_prefix(std::string_view s);
std::size_t py_space_suffix(std::string_view s);

// str.strip/lstrip/rstrip(chars); chars == nullopt strips whitespace.
std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split(sep, maxsplit) / rsplit; sep == nullopt splits on whitespace runs. Faults on an empty separator.
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, std::int64_t maxsplit,
                                  bool from_right);
std::vector<std::string> py_splitlines(std::string_view s, bool keepends);
std::string py_replace(std::string_view s, std::string_view old_text, std::string_view new_text, std::int64_t count,
                       std::size_t max_bytes);
std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_capitalize(std::string_view s);  // str.capitalize()
std::string py_title(std::string_view s);       // str.title()
std::string jinja_title(std::string_view s);    // the |title filter (splits on -, whitespace and brackets)
bool py_is_class(std::string_view s, int cls);  // 0 digit, 1 alpha, 2 alnum, 3 space, 4 lower, 5 upper
std::int64_t py_find(std::string_view s, std::string_view sub, bool from_right);  // code point index or -1
std::int64_t py_count(std::string_view s, std::string_view sub);

// Python string literal as repr() writes it ('...' unless the text has ' and no ").
std::string py_str_repr(std::string_view s);
// JSON string as json.dumps writes it.
void json_escape_append(std::string& out, std::string_view s, bool ensure_ascii);

}  // namespace lcllm::jinja
