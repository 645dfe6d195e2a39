// An RGB raster with the few drawing operations plots need: rectangles, lines and 5×7 bitmap text.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lcllm::plot {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

inline constexpr Rgb kWhite{255, 255, 255};
inline constexpr Rgb kBlack{0, 0, 0};
inline constexpr Rgb kGrey{190, 190, 190};

class Canvas {
 public:
  Canvas(int32_t width, int32_t height, Rgb background = kWhite);
  int32_t width() const { return width_; }
  int32_t height() const { return height_; }
  const std::vector<uint8_t>& rgb() const { return rgb_; }  // [height, width, 3]
  Rgb pixel(int32_t x, int32_t y) const;

  void set(int32_t x, int32_t y, Rgb c);  // clipped
  void fill_rect(int32_t x, int32_t y, int32_t w, int32_t h, Rgb c);
  void draw_rect(int32_t x, int32_t y, int32_t w, int32_t h, Rgb c);  // 1-pixel outline
  void draw_line(int32_t x0, int32_t y0, int32_t x1, int32_t y1, Rgb c, int32_t thickness = 1);
  // Text with its top-left corner at (x, y); each font pixel becomes scale × scale pixels.
  void draw_text(int32_t x, int32_t y, std::string_view text, Rgb c, int32_t scale = 1);
  // Text rotated 90° counter-clockwise (reads bottom to top), its bounding box's top-left at (x, y).
  void draw_text_vertical(int32_t x, int32_t y, std::string_view text, Rgb c, int32_t scale = 1);

  void write_png(const std::string& path) const;

 private:
  int32_t width_, height_;
  std::vector<uint8_t> rgb_;  // [height, width, 3]
};

// Pixel width/height of `text` drawn at `scale` (glyph 5 + 1 spacing columns; 7 rows).
int32_t text_width(std::string_view text, int32_t scale = 1);
int32_t text_height(int32_t scale = 1);

// Viridis-like colour for t in [0, 1] (clamped): dark purple → blue → green → yellow.
Rgb colormap_viridis(float t);
// Black or white, whichever reads better on `background`.
Rgb text_color_on(Rgb background);

}  // namespace lcllm::plot
