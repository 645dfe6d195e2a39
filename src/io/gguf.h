// GGUF reader (E10 item 1): the container llama.cpp and its converters write — a header, typed metadata
// key/values, tensor infos, then the aligned tensor data (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
//
//   u32 magic "GGUF" | u32 version (2 or 3) | u64 n_tensors | u64 n_kv
//   n_kv × { string key | u32 value type | value }          string = u64 length + bytes (no terminator)
//   n_tensors × { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset }
//   padding to general.alignment (default 32) | tensor data (offsets relative to here, each aligned)
//
// Every rule is checked before anything is allocated from a count the file claims: counts and lengths must fit in
// the bytes that remain, dims are 1..4 and non-zero, n_elements × type size must not overflow and the row length
// must be a multiple of the type's block, offsets are aligned and every tensor lies inside the data section without
// overlapping another, names and keys are unique, types are known. A violation throws lcllm::Error
// (ERROR_KIND_INVALID_FILE) naming the file, the key or tensor, and the rule. Little-endian files only (GGUF v3
// big-endian files are refused by their magic/version).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lcllm {

// Metadata value types as GGUF stores them (u32).
enum class GgufType : uint32_t {
  GGUF_TYPE_UINT8 = 0,
  GGUF_TYPE_INT8 = 1,
  GGUF_TYPE_UINT16 = 2,
  GGUF_TYPE_INT16 = 3,
  GGUF_TYPE_UINT32 = 4,
  GGUF_TYPE_INT32 = 5,
  GGUF_TYPE_FLOAT32 = 6,
  GGUF_TYPE_BOOL = 7,
  GGUF_TYPE_STRING = 8,
  GGUF_TYPE_ARRAY = 9,
  GGUF_TYPE_UINT64 = 10,
  GGUF_TYPE_INT64 = 11,
  GGUF_TYPE_FLOAT64 = 12,
};
const char* gguf_type_name(GgufType t);

// One metadata value. Scalars: integers in `i` (unsigned ones too, up to 2^63 - 1; larger u64 values in `u`),
// floats in `f`, bools in `i` (0/1), strings in `s`. Arrays: `elem` is the element type and exactly one of
// `ints`, `floats`, `strings`, `arrays` holds the items.
struct GgufValue {
  GgufType type = GgufType::GGUF_TYPE_UINT8;
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string s;
  GgufType elem = GgufType::GGUF_TYPE_UINT8;
  std::vector<int64_t> ints;          // [n] integer and bool arrays
  std::vector<double> floats;         // [n] float arrays
  std::vector<std::string> strings;   // [n] string arrays
  std::vector<GgufValue> arrays;      // [n] arrays of arrays
  size_t size() const;                // items of an array (0 for scalars)
  bool is_integer() const;
  bool is_float() const;
};

struct GgufTensorInfo {
  std::string name;
  uint32_t type = 0;                  // ggml type id (io/gguf_types.h)
  std::vector<int64_t> ne;            // [n_dims] GGUF order: ne[0] is the row (innermost) length
  uint64_t offset = 0;                // in the data section
  uint64_t nbytes = 0;
  const std::byte* data = nullptr;    // into the mapped file
  int64_t n_elements() const;
};

struct GgufContents {
  uint32_t version = 0;
  uint64_t alignment = 32;
  std::map<std::string, GgufValue, std::less<>> metadata;
  std::vector<GgufTensorInfo> tensors;  // in file order
  size_t data_offset = 0;               // where the data section starts in the file
};

// Parses and validates a whole GGUF image held in memory (`filename` for messages). The tensor views point into
// `bytes`. This is what the fuzz target calls.
GgufContents gguf_parse(const std::byte* bytes, size_t size, const std::string& filename);

class GgufFile {
 public:
  static std::unique_ptr<GgufFile> open(const std::string& path);  // mmap + parse; throws lcllm::Error
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const GgufContents& contents() const { return contents_; }
  const std::string& path() const { return path_; }
  const GgufValue* find(std::string_view key) const;
  // The key's value, or an ERROR_KIND_INVALID_FILE naming the file and key when it is absent or of another kind.
  const GgufValue& require(std::string_view key) const;
  int64_t require_int(std::string_view key) const;
  double require_float(std::string_view key) const;  // integers accepted
  const std::string& require_string(std::string_view key) const;
  const GgufTensorInfo* tensor(std::string_view name) const;

 private:
  GgufFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  GgufContents contents_;
  std::map<std::string, size_t, std::less<>> by_name_;
};

// True when the file starts with the GGUF magic (used to pick the reader for a path).
bool gguf_is_file(const std::string& path);

}  // namespace lcllm
