// The plot module: PNG bytes decoded by an independent reader written here (bitwise CRC, Adler, stored-block
// inflate), heat-map cells read back at their layout position, and the bad-input errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>

#include "lcllm/error.h"
#include "plot/canvas.h"
#include "plot/font5x7.h"
#include "plot/heatmap.h"
#include "plot/line_plot.h"
#include "plot/png_writer.h"

using namespace lcllm;
using namespace lcllm::plot;

namespace {

uint32_t crc_bitwise(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// RFC 1951 inflate for stored and fixed-Huffman blocks, decoding bit by bit (no tables shared with the encoder).
struct BitReader {
  const std::vector<uint8_t>& z;
  size_t bit = 0;
  uint32_t get(int n) {  // n bits, LSB first
    uint32_t v = 0;
    for (int i = 0; i < n; ++i, ++bit) {
      REQUIRE(bit / 8 < z.size());
      v |= uint32_t((z[bit / 8] >> (bit % 8)) & 1) << i;
    }
    return v;
  }
  uint32_t code(int n) {  // n more Huffman bits appended MSB first to a prefix
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 1) | get(1);
    return v;
  }
};

uint32_t fixed_literal_length(BitReader& r) {
  uint32_t c = r.code(7);
  if (c <= 23) return 256 + c;
  c = (c << 1) | r.get(1);
  if (c >= 0x30 && c <= 0xBF) return c - 0x30;
  if (c >= 0xC0 && c <= 0xC7) return 280 + c - 0xC0;
  c = (c << 1) | r.get(1);
  REQUIRE(c >= 0x190);
  return 144 + c - 0x190;
}

std::vector<uint8_t> inflate(const std::vector<uint8_t>& z, size_t start) {
  static const int len_base[] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67,
                                 83, 99, 115, 131, 163, 195, 227, 258};
  static const int len_extra[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
  static const int dist_base[] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769,
                                  1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
  std::vector<uint8_t> out;
  BitReader r{z, start * 8};
  bool last = false;
  while (!last) {
    last = r.get(1);
    uint32_t type = r.get(2);
    REQUIRE(type <= 1);
    if (type == 0) {
      r.bit = (r.bit + 7) / 8 * 8;
      uint32_t n = r.get(16), nn = r.get(16);
      REQUIRE(uint16_t(~n) == nn);
      for (uint32_t i = 0; i < n; ++i) out.push_back(uint8_t(r.get(8)));
      continue;
    }
    while (true) {
      uint32_t sym = fixed_literal_length(r);
      if (sym < 256) { out.push_back(uint8_t(sym)); continue; }
      if (sym == 256) break;
      REQUIRE(sym <= 285);
      int len = len_base[sym - 257] + int(r.get(len_extra[sym - 257]));
      uint32_t dc = r.code(5);
      REQUIRE(dc < 30);
      int dist = dist_base[dc] + int(r.get(dc < 4 ? 0 : int(dc / 2 - 1)));
      REQUIRE(size_t(dist) <= out.size());
      for (int i = 0; i < len; ++i) out.push_back(out[out.size() - size_t(dist)]);
    }
  }
  r.bit = (r.bit + 7) / 8 * 8;
  REQUIRE(r.bit / 8 + 4 == z.size());  // only the Adler-32 follows
  return out;
}

struct Decoded {
  uint32_t width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// Accepts only what encode_png_rgb promises: RGB8, one IDAT, stored deflate blocks, filter 0.
Decoded decode(const std::vector<uint8_t>& png) {
  const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  REQUIRE(png.size() > 8);
  REQUIRE(std::equal(sig, sig + 8, png.begin()));
  Decoded d;
  std::vector<uint8_t> z;
  size_t at = 8;
  bool saw_end = false;
  while (at < png.size()) {
    REQUIRE(at + 12 <= png.size());
    uint32_t len = be32(&png[at]);
    std::string type(png.begin() + long(at) + 4, png.begin() + long(at) + 8);
    REQUIRE(at + 12 + len <= png.size());
    CHECK(crc_bitwise(&png[at + 4], 4 + len) == be32(&png[at + 8 + len]));
    const uint8_t* data = &png[at + 8];
    if (type == "IHDR") {
      REQUIRE(len == 13);
      d.width = be32(data), d.height = be32(data + 4);
      CHECK(data[8] == 8);
      CHECK(data[9] == 2);
    } else if (type == "IDAT") {
      z.insert(z.end(), data, data + len);
    } else if (type == "IEND") {
      saw_end = true;
    }
    at += 12 + len;
  }
  CHECK(saw_end);
  REQUIRE(z.size() >= 6);
  CHECK((z[0] * 256 + z[1]) % 31 == 0);  // zlib header check bits
  std::vector<uint8_t> raw = inflate(z, 2);
  size_t tail = z.size() - 4;
  uint32_t a = 1, b = 0;
  for (uint8_t x : raw) a = (a + x) % 65521, b = (b + a) % 65521;
  CHECK(((b << 16) | a) == be32(&z[tail]));
  const size_t stride = size_t(d.width) * 3;
  REQUIRE(raw.size() == size_t(d.height) * (1 + stride));
  for (uint32_t y = 0; y < d.height; ++y) {
    const uint8_t* line = &raw[size_t(y) * (1 + stride)];
    uint8_t filter = line[0];
    REQUIRE(filter <= 2);
    size_t base = d.rgb.size();
    for (size_t i = 0; i < stride; ++i) {
      uint8_t left = i >= 3 ? d.rgb[base + i - 3] : 0;
      uint8_t up = y > 0 ? d.rgb[base - stride + i] : 0;
      d.rgb.push_back(uint8_t(line[1 + i] + (filter == 1 ? left : filter == 2 ? up : 0)));
    }
  }
  return d;
}

}  // namespace

TEST_CASE("crc32 and adler32 give the standard check values", "[plot]") {
  std::string s = "123456789";
  CHECK(crc32_update(0, {reinterpret_cast<const uint8_t*>(s.data()), s.size()}) == 0xCBF43926u);
  std::string w = "Wikipedia";
  CHECK(adler32({reinterpret_cast<const uint8_t*>(w.data()), w.size()}) == 0x11E60398u);
}

TEST_CASE("PNG round-trips through an independent decoder (noise, flat colours, gradients)", "[plot]") {
  for (auto [w, h] : {std::pair{1, 1}, std::pair{3, 2}, std::pair{300, 200}}) {  // 300x200: 180,200 raw bytes
    std::vector<uint8_t> rgb(size_t(w) * size_t(h) * 3);
    for (int pattern = 0; pattern < 3; ++pattern) {
      for (size_t i = 0; i < rgb.size(); ++i) {
        size_t px = i / 3, x = px % size_t(w), y = px / size_t(w);
        rgb[i] = pattern == 0 ? uint8_t((i * 2654435761u) >> 13)      // noise: literals
                 : pattern == 1 ? uint8_t(x / 7 * 40 + y / 5 * 3)     // flat blocks: runs and Up rows
                                : uint8_t(x + 2 * y + i % 3);         // gradients: Sub residual runs
      }
      std::vector<uint8_t> png = encode_png_rgb(w, h, rgb);
      Decoded d = decode(png);
      CHECK(d.width == uint32_t(w));
      CHECK(d.height == uint32_t(h));
      CHECK(d.rgb == rgb);
      if (pattern > 0 && w == 300) CHECK(png.size() < rgb.size() / 10);
    }
  }
}

TEST_CASE("font: digits and letters differ, lower case draws as upper case, unknown as '?'", "[plot]") {
  CHECK(glyph_rows('0') != glyph_rows('O'));
  CHECK(glyph_rows('1') != glyph_rows('I'));
  CHECK(glyph_rows('k') == glyph_rows('K'));
  CHECK(glyph_rows('~') == glyph_rows('?'));
  CHECK(glyph_rows(' ') == std::array<uint8_t, kGlyphHeight>{});
  Canvas c(40, 10);
  c.draw_text(1, 1, "L", kBlack);
  CHECK(c.pixel(1, 7) == kBlack);   // the foot of the L
  CHECK(c.pixel(5, 7) == kBlack);
  CHECK(c.pixel(5, 1) == kWhite);
}

TEST_CASE("heat map cells carry the colour of their value; NaN is grey", "[plot]") {
  Heatmap h;
  h.title = "NIAH full";
  h.x_label = "context length";
  h.y_label = "depth %";
  h.row_labels = {"0", "50", "100"};
  h.col_labels = {"1k", "2k"};
  float nan = std::numeric_limits<float>::quiet_NaN();
  h.values = {0.0f, 1.0f, 0.5f, nan, 0.25f, 2.0f};
  Canvas c = render_heatmap(h);
  HeatmapLayout l = heatmap_layout(h);
  for (int r = 0; r < 3; ++r) {
    for (int col = 0; col < 2; ++col) {
      float v = h.values[size_t(r * 2 + col)];
      Rgb want = std::isnan(v) ? kGrey : colormap_viridis(v);
      // A corner pixel: annotations are centred, so the corner is never text.
      CHECK(c.pixel(l.left + col * l.cell_w + 1, l.top + r * l.cell_h + 1) == want);
    }
  }
  CHECK(colormap_viridis(2.0f) == colormap_viridis(1.0f));  // clamped
  CHECK(colormap_viridis(0.0f) != colormap_viridis(1.0f));
}

TEST_CASE("heat map columns widen so every label shows, up to a 1,400-pixel grid", "[plot]") {
  Heatmap h;
  h.row_labels = {"full", "hip"};
  h.col_labels = {"1k", "2k", "4k", "8k", "16k", "32k", "64k", "128k", "256k"};
  h.values.assign(h.row_labels.size() * h.col_labels.size(), 0.5f);
  const int32_t narrow = heatmap_layout(h).cell_w;
  CHECK(narrow == 64);  // 720 / 9 columns, at most 64: short labels fit
  h.col_labels = {"G 4k", "G 16k", "G 32k", "GR 16k", "GR 32k", "S 2k", "S 4k", "S 8k", "SR 8k"};
  const int32_t wide = heatmap_layout(h).cell_w;
  CHECK(wide > 64);       // six-character labels need more
  CHECK(wide * 9 <= 1400);
  // Every label is drawn: each column's label area below the grid holds some ink (non-white pixels).
  const Canvas c = render_heatmap(h);
  const HeatmapLayout l = heatmap_layout(h);
  const int32_t label_top = l.top + int32_t(h.row_labels.size()) * l.cell_h + 2;
  for (size_t col = 0; col < h.col_labels.size(); ++col) {
    bool ink = false;
    for (int32_t x = l.left + int32_t(col) * wide; x < l.left + int32_t(col + 1) * wide; ++x) {
      for (int32_t y = label_top; y < label_top + 20; ++y) ink = ink || !(c.pixel(x, y) == kWhite);
    }
    CHECK(ink);
  }
  h.col_labels.assign(40, "GR 32k");  // 40 wide labels exceed the grid limit: thinned instead
  h.values.assign(h.row_labels.size() * h.col_labels.size(), 0.5f);
  CHECK(heatmap_layout(h).cell_w == 18);
}

TEST_CASE("heat map and line plot reject malformed input with a clear error", "[plot]") {
  Heatmap h;
  h.row_labels = {"a"};
  h.col_labels = {"x", "y"};
  h.values = {1.0f};
  CHECK_THROWS_WITH(render_heatmap(h), Catch::Contains("1 values for 1 rows x 2 columns"));
  h.values = {1.0f, 2.0f};
  h.vmin = h.vmax = 1;
  CHECK_THROWS_WITH(render_heatmap(h), Catch::Contains("vmax must exceed vmin"));
  LinePlot p;
  CHECK_THROWS_AS(render_line_plot(p), Error);
  p.series = {{"s", {1, 2}, {1}}};
  CHECK_THROWS_WITH(render_line_plot(p), Catch::Contains("x and y differ"));
  p.series = {{"s", {0, 2}, {1, 2}}};
  p.log_x = true;
  CHECK_THROWS_WITH(render_line_plot(p), Catch::Contains("log axis"));
  CHECK_THROWS_AS(write_png_rgb("/nonexistent-dir/x.png", 1, 1, std::vector<uint8_t>(3)), Error);
}

TEST_CASE("line plot draws each series in its own colour", "[plot]") {
  LinePlot p;
  p.title = "decode";
  p.x_label = "context";
  p.y_label = "ms/token";
  p.log_x = true;
  p.series = {{"lcllm", {4096, 32768, 131072}, {5, 7, 12}}, {"peer", {4096, 32768, 131072}, {6, 9, 20}}};
  Canvas c = render_line_plot(p);
  size_t blue = 0, orange = 0;
  for (int y = 0; y < c.height(); ++y)
    for (int x = 0; x < c.width(); ++x) {
      Rgb px = c.pixel(x, y);
      blue += px == Rgb{31, 119, 180};
      orange += px == Rgb{255, 127, 14};
    }
  CHECK(blue > 100);
  CHECK(orange > 100);
  CHECK(format_tick(4096) == "4k");
  CHECK(format_tick(1048576) == "1M");
  CHECK(format_tick(2.5) == "2.5");
}
