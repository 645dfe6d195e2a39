#include "plot/png_writer.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "lcllm/error.h"

namespace lcllm::plot {
namespace {

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t n = 0; n < 256; ++n) {
    uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
  return table;
}

void put_u32_be(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(uint8_t(v >> 24));
  out.push_back(uint8_t(v >> 16));
  out.push_back(uint8_t(v >> 8));
  out.push_back(uint8_t(v));
}

// length | type | data | crc(type + data)   (PNG spec §5.3)
void put_chunk(std::vector<uint8_t>& out, const char type[4], std::span<const uint8_t> data) {
  put_u32_be(out, uint32_t(data.size()));
  size_t type_at = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  uint32_t crc = crc32_update(0, std::span<const uint8_t>(out.data() + type_at, 4 + data.size()));
  put_u32_be(out, crc);
}

// Scanlines with a filter byte each (PNG spec §9): per row the filter among None, Sub and Up with the smallest sum
// of |residual| (the spec's suggested heuristic). Plots are flat colours, so Sub/Up turn them into long zero runs.
std::vector<uint8_t> filter_scanlines(int32_t width, int32_t height, std::span<const uint8_t> rgb) {
  const size_t row_bytes = size_t(width) * 3;
  std::vector<uint8_t> raw;  // [height, 1 + width * 3]
  raw.reserve(size_t(height) * (row_bytes + 1));
  std::vector<uint8_t> cand[3];  // residuals under None, Sub, Up
  for (int32_t y = 0; y < height; ++y) {
    const uint8_t* row = rgb.data() + size_t(y) * row_bytes;
    const uint8_t* up = y > 0 ? row - row_bytes : nullptr;
    size_t best = 0, best_cost = SIZE_MAX;
    for (size_t f = 0; f < 3; ++f) {
      cand[f].resize(row_bytes);
      size_t cost = 0;
      for (size_t i = 0; i < row_bytes; ++i) {
        uint8_t pred = f == 1 ? (i >= 3 ? row[i - 3] : 0) : f == 2 ? (up ? up[i] : 0) : 0;
        uint8_t r = uint8_t(row[i] - pred);
        cand[f][i] = r;
        cost += r < 128 ? r : 256 - r;
      }
      if (cost < best_cost) best = f, best_cost = cost;
    }
    raw.push_back(uint8_t(best));
    raw.insert(raw.end(), cand[best].begin(), cand[best].end());
  }
  return raw;
}

// LSB-first bit writer (RFC 1951 §3.1.1); Huffman codes are sent most significant bit first.
struct BitWriter {
  std::vector<uint8_t>& out;
  uint32_t acc = 0;
  int32_t n = 0;
  void bits(uint32_t value, int32_t count) {  // value's low `count` bits, LSB first
    for (int32_t i = 0; i < count; ++i) {
      acc |= ((value >> i) & 1u) << n;
      if (++n == 8) out.push_back(uint8_t(acc)), acc = 0, n = 0;
    }
  }
  void code(uint32_t code, int32_t len) {  // Huffman code, MSB first
    for (int32_t i = len - 1; i >= 0; --i) bits((code >> i) & 1u, 1);
  }
  void flush() {
    if (n > 0) out.push_back(uint8_t(acc)), acc = 0, n = 0;
  }
};

// The fixed literal/length code of RFC 1951 §3.2.6.
void put_literal_length(BitWriter& w, uint32_t sym) {
  if (sym < 144) w.code(0x30 + sym, 8);
  else if (sym < 256) w.code(0x190 + (sym - 144), 9);
  else if (sym < 280) w.code(sym - 256, 7);
  else w.code(0xC0 + (sym - 280), 8);
}

// One fixed-Huffman block. The only matches are runs of the previous byte (distance 1), which is what filtered
// plot scanlines consist of; a general LZ77 search would gain little here.
void deflate_fixed(const std::vector<uint8_t>& data, std::vector<uint8_t>& out) {
  static constexpr uint16_t kLenBase[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                            31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
  static constexpr uint8_t kLenExtra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                            2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
  BitWriter w{out};
  w.bits(1, 1);  // BFINAL
  w.bits(1, 2);  // BTYPE = 01, fixed Huffman
  size_t i = 0;
  while (i < data.size()) {
    size_t run = 0;
    if (i > 0)
      while (i + run < data.size() && run < 258 && data[i + run] == data[i - 1]) ++run;
    if (run >= 3) {
      int32_t c = 28;
      while (kLenBase[c] > run) --c;
      put_literal_length(w, uint32_t(257 + c));
      w.bits(uint32_t(run - kLenBase[c]), kLenExtra[c]);
      w.code(0, 5);  // distance code 0 = distance 1, no extra bits
      i += run;
    } else {
      put_literal_length(w, data[i]);
      ++i;
    }
  }
  put_literal_length(w, 256);  // end of block
  w.flush();
}

}  // namespace

uint32_t crc32_update(uint32_t crc, std::span<const uint8_t> bytes) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  uint32_t c = crc ^ 0xFFFFFFFFu;
  for (uint8_t b : bytes) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t adler32(std::span<const uint8_t> bytes) {
  uint32_t a = 1, b = 0;
  for (uint8_t x : bytes) {
    a = (a + x) % 65521u;
    b = (b + a) % 65521u;
  }
  return (b << 16) | a;
}

std::vector<uint8_t> encode_png_rgb(int32_t width, int32_t height, std::span<const uint8_t> rgb) {
  LCLLM_ASSERT(width > 0 && height > 0, "image must not be empty");
  LCLLM_ASSERT(rgb.size() == size_t(width) * size_t(height) * 3, "rgb must hold width * height * 3 bytes");
  std::vector<uint8_t> raw = filter_scanlines(width, height, rgb);
  std::vector<uint8_t> z = {0x78, 0x01};  // zlib CMF/FLG: deflate, 32K window, no dictionary, check bits
  deflate_fixed(raw, z);
  put_u32_be(z, adler32(raw));

  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> ihdr;
  put_u32_be(ihdr, uint32_t(width));
  put_u32_be(ihdr, uint32_t(height));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // bit depth 8, colour type 2 (RGB), deflate, adaptive filter, no interlace
  put_chunk(png, "IHDR", ihdr);
  put_chunk(png, "IDAT", z);
  put_chunk(png, "IEND", {});
  return png;
}

void write_png_rgb(const std::string& path, int32_t width, int32_t height, std::span<const uint8_t> rgb) {
  std::vector<uint8_t> png = encode_png_rgb(width, height, rgb);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(ErrorKind::ERROR_KIND_IO, "cannot write " + path + ": " + std::strerror(errno));
  out.write(reinterpret_cast<const char*>(png.data()), std::streamsize(png.size()));
  if (!out) throw Error(ErrorKind::ERROR_KIND_IO, "writing " + path + " failed: " + std::strerror(errno));
}

}  // namespace lcllm::plot
