// Minimal PNG encoder for plots: 8-bit RGB, no interlace, per-row None/Sub/Up filters and one fixed-Huffman
// deflate block whose only matches are byte runs (RFC 1951 §3.2.6). Plots are flat colours, so this gets most of
// zlib's compression without a dependency.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace lcllm::plot {

// CRC-32 (ISO-HDLC, as PNG chunks use) and Adler-32 (zlib trailer).
uint32_t crc32_update(uint32_t crc, std::span<const uint8_t> bytes);
uint32_t adler32(std::span<const uint8_t> bytes);

// The PNG file bytes of an image. rgb: [height, width, 3] row-major.
std::vector<uint8_t> encode_png_rgb(int32_t width, int32_t height, std::span<const uint8_t> rgb);

// Writes encode_png_rgb(...) to `path`; throws lcllm::Error (ERROR_KIND_IO) naming the path when it cannot.
void write_png_rgb(const std::string& path, int32_t width, int32_t height, std::span<const uint8_t> rgb);

}  // namespace lcllm::plot
