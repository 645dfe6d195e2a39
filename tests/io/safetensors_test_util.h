// Builds safetensors byte images in memory and writes them under a per-test temporary directory.
#pragma once
#include <stdlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/dtype.h"

namespace lcllm::test {

// u64 little-endian header length, the header text verbatim, then the data buffer.
inline std::string safetensors_image(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = char((n >> (8 * i)) & 0xff);
  return out + header + data;
}

// Appends tensors back to back, as a writer would, and pads the header with spaces to a multiple of 8 bytes
// (what the reference writer does, so the data buffer starts aligned).
class SafetensorsBuilder {
 public:
  SafetensorsBuilder& add_raw(const std::string& name, const std::string& dtype, const std::vector<int64_t>& shape,
                              const std::string& bytes) {
    header_[name] = {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {data_.size(), data_.size() + bytes.size()}}};
    data_ += bytes;
    return *this;
  }
  SafetensorsBuilder& add_f32(const std::string& name, const std::vector<int64_t>& shape, const std::vector<float>& v) {
    return add_raw(name, "F32", shape, std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4));
  }
  SafetensorsBuilder& add_f16_bits(const std::string& name, const std::vector<int64_t>& shape,
                                   const std::vector<uint16_t>& bits) {
    return add_raw(name, "F16", shape, std::string(reinterpret_cast<const char*>(bits.data()), bits.size() * 2));
  }
  SafetensorsBuilder& add_bf16(const std::string& name, const std::vector<int64_t>& shape, const std::vector<float>& v) {
    std::vector<uint16_t> bits;
    for (float f : v) bits.push_back(f32_to_bf16(f));
    return add_raw(name, "BF16", shape, std::string(reinterpret_cast<const char*>(bits.data()), bits.size() * 2));
  }
  SafetensorsBuilder& metadata(const std::string& key, const std::string& value) {
    header_["__metadata__"][key] = value;
    return *this;
  }
  std::string build() const {
    std::string header = header_.empty() ? "{}" : header_.dump();
    header.append((8 - header.size() % 8) % 8, ' ');
    return safetensors_image(header, data_);
  }

 private:
  nlohmann::json header_ = nlohmann::json::object();
  std::string data_;
};

// A fresh directory under /tmp, removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/lcllm-test-io-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Writes `bytes` to path()/name (creating parent folders) and returns the full path.
  std::string write(const std::string& name, const std::string& bytes) const {
    const auto p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

}  // namespace lcllm::test
