// A GGUF image builder for tests: metadata and tensors in, bytes out, with hooks to break any field (the corrupt-file
// cases of tests/io/test_gguf.cpp and the fuzz corpus).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace lcllm::test {

// A real GGUF model fetched by tools/fetch_models.sh (LCLLM_MODEL_CACHE, default ~/.cache/lcllm/models), or "" when
// it is not there (the tests that need it then warn and skip).
inline std::string gguf_model_file(const std::string& name) {
  const char* env = std::getenv("LCLLM_MODEL_CACHE");
  const char* home = std::getenv("HOME");
  const std::string dir = env ? env : std::string(home ? home : ".") + "/.cache/lcllm/models";
  const std::string path = dir + "/" + name;
  return std::filesystem::exists(path) ? path : "";
}

class GgufBuilder {
 public:
  // Raw little-endian appends, for building broken files by hand.
  template <typename T>
  static void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  static void put_string(std::string& out, const std::string& s) {
    put<uint64_t>(out, s.size());
    out += s;
  }

  uint32_t version = 3;
  uint32_t magic = 0x46554747;
  uint64_t alignment = 32;
  std::string kv_bytes;       // the encoded metadata entries
  uint64_t n_kv = 0;
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type = 0;
    std::string data;        // raw bytes
    int64_t offset = -1;     // -1: placed after the previous tensor, aligned
  };
  std::vector<Tensor> tensors;
  int64_t n_tensors_override = -1, n_kv_override = -1;

  GgufBuilder& kv_u32(const std::string& key, uint32_t v) { return raw_kv(key, 4, &v, 4); }
  GgufBuilder& kv_i32(const std::string& key, int32_t v) { return raw_kv(key, 5, &v, 4); }
  GgufBuilder& kv_f32(const std::string& key, float v) { return raw_kv(key, 6, &v, 4); }
  GgufBuilder& kv_u64(const std::string& key, uint64_t v) { return raw_kv(key, 10, &v, 8); }
  GgufBuilder& kv_bool(const std::string& key, bool v) {
    const uint8_t b = v ? 1 : 0;
    return raw_kv(key, 7, &b, 1);
  }
  GgufBuilder& kv_string(const std::string& key, const std::string& v) {
    put_string(kv_bytes, key);
    put<uint32_t>(kv_bytes, 8);
    put_string(kv_bytes, v);
    ++n_kv;
    return *this;
  }
  GgufBuilder& kv_strings(const std::string& key, const std::vector<std::string>& v) {
    put_string(kv_bytes, key);
    put<uint32_t>(kv_bytes, 9);
    put<uint32_t>(kv_bytes, 8);
    put<uint64_t>(kv_bytes, v.size());
    for (const auto& s : v) put_string(kv_bytes, s);
    ++n_kv;
    return *this;
  }
  GgufBuilder& kv_f32s(const std::string& key, const std::vector<float>& v) {
    put_string(kv_bytes, key);
    put<uint32_t>(kv_bytes, 9);
    put<uint32_t>(kv_bytes, 6);
    put<uint64_t>(kv_bytes, v.size());
    for (float f : v) put<float>(kv_bytes, f);
    ++n_kv;
    return *this;
  }
  GgufBuilder& kv_i32s(const std::string& key, const std::vector<int32_t>& v) {
    put_string(kv_bytes, key);
    put<uint32_t>(kv_bytes, 9);
    put<uint32_t>(kv_bytes, 5);
    put<uint64_t>(kv_bytes, v.size());
    for (int32_t x : v) put<int32_t>(kv_bytes, x);
    ++n_kv;
    return *this;
  }
  GgufBuilder& raw_kv(const std::string& key, uint32_t type, const void* value, size_t n) {
    put_string(kv_bytes, key);
    put<uint32_t>(kv_bytes, type);
    kv_bytes.append(static_cast<const char*>(value), n);
    ++n_kv;
    return *this;
  }
  // An F32 tensor with the given GGUF dims (ne[0] innermost) and values 0, 1, 2, ...
  GgufBuilder& tensor_f32(const std::string& name, std::vector<uint64_t> ne) {
    uint64_t n = 1;
    for (uint64_t d : ne) n *= d;
    std::string data(size_t(n) * 4, '\0');
    for (uint64_t i = 0; i < n; ++i) {
      const float f = float(i);
      std::memcpy(&data[size_t(i) * 4], &f, 4);
    }
    tensors.push_back(Tensor{name, std::move(ne), 0, std::move(data), -1});
    return *this;
  }

  std::string build() const {
    std::string out;
    put<uint32_t>(out, magic);
    put<uint32_t>(out, version);
    put<uint64_t>(out, n_tensors_override >= 0 ? uint64_t(n_tensors_override) : tensors.size());
    put<uint64_t>(out, n_kv_override >= 0 ? uint64_t(n_kv_override) : n_kv);
    out += kv_bytes;
    std::vector<uint64_t> offsets;
    uint64_t next = 0;
    for (const Tensor& t : tensors) {
      const uint64_t off = t.offset >= 0 ? uint64_t(t.offset) : next;
      offsets.push_back(off);
      if (t.offset < 0) next = (std::max(next, off + t.data.size()) + alignment - 1) / alignment * alignment;
    }
    for (size_t i = 0; i < tensors.size(); ++i) {
      const Tensor& t = tensors[i];
      put_string(out, t.name);
      put<uint32_t>(out, uint32_t(t.ne.size()));
      for (uint64_t d : t.ne) put<uint64_t>(out, d);
      put<uint32_t>(out, t.type);
      put<uint64_t>(out, offsets[i]);
    }
    const size_t data_start = (out.size() + alignment - 1) / alignment * alignment;
    out.resize(data_start, '\0');
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (tensors[i].data.empty()) continue;  // a tensor whose bytes a test leaves out (offsets past the end)
      const size_t at = data_start + size_t(offsets[i]);
      if (out.size() < at + tensors[i].data.size()) out.resize(at + tensors[i].data.size(), '\0');
      std::memcpy(&out[at], tensors[i].data.data(), tensors[i].data.size());
    }
    return out;
  }
};

}  // namespace lcllm::test
