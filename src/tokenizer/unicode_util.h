// UTF-8 helpers for the tokenizers: decoding, lossy repair of invalid input, NFC.
#pragma once
#include "tokenizer/utf8_encode.h"
#include <cstdint>
#include <string>
#include <string_view>

namespace lcllm {

// Length of the valid UTF-8 sequence starting at s[i] (1-4), or 0 when the bytes there are not valid UTF-8.
std::size_t utf8_valid_len(std::string_view s, std::size_t i);

// True when all of s is valid UTF-8.
bool utf8_is_valid(std::string_view s);

// Like Rust's String::from_utf8_lossy: every maximal invalid subsequence becomes U+FFFD.
std::string utf8_lossy(std::string_view s);

// Decodes the code point at s[i] (s must be valid UTF-8 there) and advances i.
uint32_t utf8_next(std::string_view s, std::size_t& i);


// Length of the longest prefix of s that does not end inside an incomplete (but so far valid) UTF-8 sequence.
std::size_t utf8_complete_prefix(std::string_view s);

// Unicode Normalization Form C (canonical decomposition, canonical ordering, canonical composition).
std::string unicode_nfc(std::string_view s);

}  // namespace lcllm
