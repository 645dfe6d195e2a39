// A 5×7 bitmap font for plot labels: digits, upper-case letters and common punctuation (lower case is drawn as
// upper case; characters without a glyph as '?'). Hand-drawn for this project.
#pragma once
#include <array>
#include <cstdint>

namespace lcllm::plot {

inline constexpr int32_t kGlyphWidth = 5;
inline constexpr int32_t kGlyphHeight = 7;

// Row bits of `c`'s glyph, top row first; bit 4 is the leftmost pixel.
std::array<uint8_t, kGlyphHeight> glyph_rows(char c);

}  // namespace lcllm::plot
