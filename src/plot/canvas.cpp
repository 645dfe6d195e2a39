#include "plot/canvas.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "lcllm/error.h"
#include "plot/font5x7.h"
#include "plot/png_writer.h"

namespace lcllm::plot {

Canvas::Canvas(int32_t width, int32_t height, Rgb background) : width_(width), height_(height) {
  LCLLM_ASSERT(width > 0 && height > 0, "canvas must not be empty");
  rgb_.resize(size_t(width) * size_t(height) * 3);
  for (size_t i = 0; i < rgb_.size(); i += 3) {
    rgb_[i] = background.r;
    rgb_[i + 1] = background.g;
    rgb_[i + 2] = background.b;
  }
}

Rgb Canvas::pixel(int32_t x, int32_t y) const {
  LCLLM_ASSERT(x >= 0 && y >= 0 && x < width_ && y < height_, "pixel outside the canvas");
  size_t i = (size_t(y) * size_t(width_) + size_t(x)) * 3;
  return {rgb_[i], rgb_[i + 1], rgb_[i + 2]};
}

void Canvas::set(int32_t x, int32_t y, Rgb c) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  size_t i = (size_t(y) * size_t(width_) + size_t(x)) * 3;
  rgb_[i] = c.r;
  rgb_[i + 1] = c.g;
  rgb_[i + 2] = c.b;
}

void Canvas::fill_rect(int32_t x, int32_t y, int32_t w, int32_t h, Rgb c) {
  for (int32_t yy = std::max(y, 0); yy < std::min(y + h, height_); ++yy)
    for (int32_t xx = std::max(x, 0); xx < std::min(x + w, width_); ++xx) set(xx, yy, c);
}

void Canvas::draw_rect(int32_t x, int32_t y, int32_t w, int32_t h, Rgb c) {
  fill_rect(x, y, w, 1, c);
  fill_rect(x, y + h - 1, w, 1, c);
  fill_rect(x, y, 1, h, c);
  fill_rect(x + w - 1, y, 1, h, c);
}

void Canvas::draw_line(int32_t x0, int32_t y0, int32_t x1, int32_t y1, Rgb c, int32_t thickness) {
  // Bresenham; thickness drawn as a square brush.
  int32_t dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
  int32_t dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
  int32_t err = dx + dy;
  int32_t half = (thickness - 1) / 2;
  while (true) {
    fill_rect(x0 - half, y0 - half, thickness, thickness, c);
    if (x0 == x1 && y0 == y1) break;
    int32_t e2 = 2 * err;
    if (e2 >= dy) { err += dy; x0 += sx; }
    if (e2 <= dx) { err += dx; y0 += sy; }
  }
}

void Canvas::draw_text(int32_t x, int32_t y, std::string_view text, Rgb c, int32_t scale) {
  int32_t pen = x;
  for (char ch : text) {
    auto rows = glyph_rows(ch);
    for (int32_t r = 0; r < kGlyphHeight; ++r)
      for (int32_t col = 0; col < kGlyphWidth; ++col)
        if (rows[size_t(r)] & (1u << (kGlyphWidth - 1 - col)))
          fill_rect(pen + col * scale, y + r * scale, scale, scale, c);
    pen += (kGlyphWidth + 1) * scale;
  }
}

void Canvas::draw_text_vertical(int32_t x, int32_t y, std::string_view text, Rgb c, int32_t scale) {
  // Glyph pixel (col, row) of the i-th character lands at (x + row, y + width - 1 - (i*6 + col)) before scaling.
  int32_t total = text_width(text, scale);
  int32_t pen = 0;
  for (char ch : text) {
    auto rows = glyph_rows(ch);
    for (int32_t r = 0; r < kGlyphHeight; ++r)
      for (int32_t col = 0; col < kGlyphWidth; ++col)
        if (rows[size_t(r)] & (1u << (kGlyphWidth - 1 - col)))
          fill_rect(x + r * scale, y + total - pen - (col + 1) * scale, scale, scale, c);
    pen += (kGlyphWidth + 1) * scale;
  }
}

void Canvas::write_png(const std::string& path) const { write_png_rgb(path, width_, height_, rgb_); }

int32_t text_width(std::string_view text, int32_t scale) {
  if (text.empty()) return 0;
  return (int32_t(text.size()) * (kGlyphWidth + 1) - 1) * scale;
}

int32_t text_height(int32_t scale) { return kGlyphHeight * scale; }

Rgb colormap_viridis(float t) {
  // Five anchors of matplotlib's viridis (its published endpoint and quartile colours), linearly interpolated.
  static constexpr Rgb kAnchors[] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  if (!(t >= 0)) t = 0;  // NaN → 0
  t = std::min(t, 1.0f) * 4.0f;
  int32_t i = std::min(int32_t(t), 3);
  float f = t - float(i);
  auto mix = [f](uint8_t a, uint8_t b) { return uint8_t(std::lround(float(a) + (float(b) - float(a)) * f)); };
  return {mix(kAnchors[i].r, kAnchors[i + 1].r), mix(kAnchors[i].g, kAnchors[i + 1].g),
          mix(kAnchors[i].b, kAnchors[i + 1].b)};
}

Rgb text_color_on(Rgb bg) {
  float luminance = 0.299f * float(bg.r) + 0.587f * float(bg.g) + 0.114f * float(bg.b);
  return luminance > 140 ? kBlack : kWhite;
}

}  // namespace lcllm::plot
