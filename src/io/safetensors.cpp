// safetensors_parse: validates a complete safetensors image in memory and returns views into it.
//
// The header is untrusted input (a server may be pointed at any file), so every rule of the format is checked
// before a single offset is used, every size computation is overflow-checked, and each failure names the file,
// the tensor and the rule. The rules follow the reference implementation (huggingface/safetensors): header
// length <= 100 MB, offsets relative to the data buffer, tensors tiling the buffer with no gap, overlap or
// trailing bytes.
#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>

#include "io/safetensors.h"
#include "io/safetensors_internal.h"

namespace lcllm {

namespace {

using nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's MAX_HEADER_SIZE
constexpr const char* kMetadataKey = "__metadata__";

// Every dtype the safetensors format defines; a known one we cannot read is "unsupported", anything else is
// "unknown" (a typo or corruption rather than a model lcllm does not handle yet).
constexpr std::string_view kSafetensorsDtypes[] = {"BOOL", "U8",     "I8",      "F8_E5M2", "F8_E4M3", "F8_E8M0",
                                                   "I16",  "U16",    "F16",     "BF16",    "I32",     "U32",
                                                   "F32",  "F64",    "I64",     "U64",     "F4",      "F6_E2M3",
                                                   "F6_E3M2", "C64", "F8_E4M3FNUZ", "F8_E5M2FNUZ"};

// Offset of the first byte that breaks UTF-8 (RFC 3629: no overlong forms, no surrogates, <= U+10FFFF),
// or nullopt when `s` is valid.
std::optional<size_t> utf8_find_invalid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) { ++i; continue; }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) { len = 2; }
    else if (c == 0xE0) { len = 3; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) { len = 3; }
    else if (c == 0xED) { len = 3; hi = 0x9F; }
    else if (c >= 0xEE && c <= 0xEF) { len = 3; }
    else if (c == 0xF0) { len = 4; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) { len = 4; }
    else if (c == 0xF4) { len = 4; hi = 0x8F; }
    else { return i; }
    if (s.size() - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      const unsigned char min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
      if (b < min || b > max) return i;
    }
    i += len;
  }
  return std::nullopt;
}

// A JSON integer >= 0 (nlohmann stores 5 as unsigned and -0 as signed zero); nullopt for anything else.
std::optional<uint64_t> json_to_count(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

// a * b when it does not pass `limit`.
std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b, uint64_t limit) {
  if (a != 0 && b > limit / a) return std::nullopt;
  return a * b;
}

// A JSON value as it appeared, cut short: a hostile header can put megabytes where a number belongs.
std::string json_excerpt(const json& v) {
  std::string s = v.dump();
  if (s.size() > 80) s = s.substr(0, 80) + "...";
  return s;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  constexpr size_t kMaxShown = 8;  // real tensors have a handful of dims; a corrupt shape may have millions
  std::string s = "[";
  for (size_t i = 0; i < shape.size() && i < kMaxShown; ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() > kMaxShown) s += ", ... (" + std::to_string(shape.size()) + " dims)";
  return s + "]";
}

struct Entry {
  TensorView view;
  uint64_t begin = 0, end = 0;  // byte range within the data buffer
};

class HeaderReader {
 public:
  HeaderReader(const std::string& file, uint64_t data_size) : file_(file), data_size_(data_size) {}

  Entry read_tensor(const std::string& name, const json& entry) const {
    if (!entry.is_object()) {
      fail(name, std::string("entry is a JSON ") + entry.type_name() +
                     ", expected an object with dtype, shape and data_offsets");
    }
    for (const auto& [key, value] : entry.items()) {
      (void)value;
      if (key != "dtype" && key != "shape" && key != "data_offsets") fail(name, "unknown field " + io_quote(key));
    }
    Entry e;
    e.view.name = name;
    e.view.file = file_;
    e.view.dtype = read_dtype(name, entry);
    e.view.shape = read_shape(name, entry);

    // Every partial product must fit int64, not just the total: TensorView::numel() multiplies in int64 in the
    // same order, and [2^62, 3, 0] has total 0 but overflows on the way.
    constexpr auto kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    uint64_t numel = 1;
    for (int64_t d : e.view.shape) {
      auto p = checked_mul(numel, static_cast<uint64_t>(d), kInt64Max);
      if (!p) fail(name, "shape " + shape_string(e.view.shape) + " has more elements than fit in int64 (overflow)");
      numel = *p;
    }
    auto nbytes = checked_mul(numel, dtype_size(e.view.dtype), std::numeric_limits<uint64_t>::max());
    if (!nbytes) fail(name, "byte size of shape " + shape_string(e.view.shape) + " overflows 64 bits");

    read_offsets(name, entry, e.begin, e.end);
    if (e.end - e.begin != *nbytes) {
      fail(name, "byte size mismatch: data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                     ") hold " + std::to_string(e.end - e.begin) + " bytes but shape " +
                     shape_string(e.view.shape) + " of " + dtype_name(e.view.dtype) + " needs " +
                     std::to_string(*nbytes));
    }
    e.view.nbytes = static_cast<size_t>(*nbytes);  // <= data_size, so it fits size_t
    return e;
  }

  void read_metadata(const json& meta, std::map<std::string, std::string>* out) const {
    if (!meta.is_object()) {
      fail("", std::string("__metadata__ is a JSON ") + meta.type_name() + ", expected an object of strings");
    }
    for (const auto& [key, value] : meta.items()) {
      if (!value.is_string()) {
        fail("", "__metadata__ value for key " + io_quote(key) + " is a JSON " + value.type_name() +
                     ", expected a string");
      }
      if (out) (*out)[key] = value.get<std::string>();
    }
  }

 private:
  [[noreturn]] void fail(const std::string& tensor, const std::string& rule) const {
    safetensors_throw(ErrorKind::ERROR_KIND_INVALID_FILE, file_, tensor, rule);
  }

  const json& field(const std::string& name, const json& entry, const char* key) const {
    auto it = entry.find(key);
    if (it == entry.end()) fail(name, std::string("missing field '") + key + "'");
    return *it;
  }

  DType read_dtype(const std::string& name, const json& entry) const {
    const json& v = field(name, entry, "dtype");
    if (!v.is_string()) fail(name, std::string("dtype is a JSON ") + v.type_name() + ", expected a string");
    const auto& s = v.get_ref<const std::string&>();
    if (auto t = dtype_from_safetensors_name(s)) return *t;
    const bool known = std::find(std::begin(kSafetensorsDtypes), std::end(kSafetensorsDtypes), s) !=
                       std::end(kSafetensorsDtypes);
    throw Error(known ? ErrorKind::ERROR_KIND_UNSUPPORTED : ErrorKind::ERROR_KIND_INVALID_FILE,
                std::string(known ? "unsupported" : "unknown") + " dtype " + io_quote(s) + " for tensor " +
                    io_quote(name) + " in file " + io_quote(file_) + " (lcllm reads F32, F16, BF16)");
  }

  std::vector<int64_t> read_shape(const std::string& name, const json& entry) const {
    const json& v = field(name, entry, "shape");
    if (!v.is_array()) fail(name, std::string("shape is a JSON ") + v.type_name() + ", expected an array");
    std::vector<int64_t> shape;
    shape.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      auto d = json_to_count(v[i]);
      if (!d) fail(name, "shape[" + std::to_string(i) + "] is " + json_excerpt(v[i]) + ", expected a non-negative integer");
      // A 0 elsewhere in the shape would hide a huge dimension from the product check; int64 is what views hold.
      if (*d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail(name, "shape[" + std::to_string(i) + "] = " + std::to_string(*d) + " does not fit int64 (overflow)");
      }
      shape.push_back(static_cast<int64_t>(*d));
    }
    return shape;
  }

  void read_offsets(const std::string& name, const json& entry, uint64_t& begin, uint64_t& end) const {
    const json& v = field(name, entry, "data_offsets");
    if (!v.is_array() || v.size() != 2) {
      fail(name, "data_offsets is " + json_excerpt(v) + ", expected an array of 2 non-negative integers");
    }
    auto b = json_to_count(v[0]), e = json_to_count(v[1]);
    if (!b || !e) fail(name, "data_offsets " + json_excerpt(v) + " must be 2 non-negative integers");
    begin = *b;
    end = *e;
    if (begin > end) {
      fail(name, "data_offsets begin " + std::to_string(begin) + " is after end " + std::to_string(end));
    }
    if (end > data_size_) {
      fail(name, "data_offsets end " + std::to_string(end) + " is beyond the data buffer (" +
                     std::to_string(data_size_) + " bytes)");
    }
  }

  const std::string& file_;
  uint64_t data_size_;
};

// Tensors must tile [0, data_size) exactly: an overlap lets two tensors alias, a gap or tail means bytes no
// header entry accounts for (a truncated header, or data smuggled past the validator).
void check_coverage(std::vector<Entry>& entries, uint64_t data_size, const std::string& file) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < covered) {
      safetensors_throw(ErrorKind::ERROR_KIND_INVALID_FILE, file, e.view.name,
                        "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                            ") overlap tensor " + io_quote(prev->view.name) + " which ends at " +
                            std::to_string(covered));
    }
    if (e.begin > covered) {
      const std::string where = prev ? "after tensor " + io_quote(prev->view.name) + " (ends at " +
                                           std::to_string(covered) + ")"
                                     : "at the start of the data buffer";
      safetensors_throw(ErrorKind::ERROR_KIND_INVALID_FILE, file, e.view.name,
                        "gap of " + std::to_string(e.begin - covered) + " unused bytes " + where +
                            " before this tensor (begins at " + std::to_string(e.begin) + ")");
    }
    covered = e.end;
    prev = &e;
  }
  if (covered != data_size) {
    const std::string after = prev ? "after the last tensor " + io_quote(prev->view.name) : "and no tensors";
    safetensors_throw(ErrorKind::ERROR_KIND_INVALID_FILE, file, "",
                      std::to_string(data_size - covered) + " trailing bytes " + after + " (data buffer is " +
                          std::to_string(data_size) + " bytes; every byte must belong to a tensor)");
  }
}

}  // namespace

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated by safetensors_parse: no overflow
  return n;
}

std::vector<TensorView> safetensors_parse(const std::byte* bytes, size_t size, const std::string& filename,
                                          std::map<std::string, std::string>* metadata) {
  auto fail = [&](const std::string& rule) {
    safetensors_throw(ErrorKind::ERROR_KIND_INVALID_FILE, filename, "", rule);
  };
  if (size < 8) {
    fail("file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length prefix");
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | std::to_integer<uint64_t>(bytes[i]);  // LE u64
  if (header_len == 0) fail("header length is 0 (a header holds at least '{}')");
  if (header_len > kMaxHeaderBytes) {
    fail("header length " + std::to_string(header_len) + " exceeds the limit of " +
         std::to_string(kMaxHeaderBytes) + " bytes");
  }
  if (header_len > size - 8) {
    fail("header length " + std::to_string(header_len) + " extends beyond the end of the file (" +
         std::to_string(size) + " bytes)");
  }
  const std::string_view header(reinterpret_cast<const char*>(bytes + 8), static_cast<size_t>(header_len));
  if (auto bad = utf8_find_invalid(header)) {
    fail("header is not valid UTF-8 (byte " + std::to_string(*bad) + " of the header)");
  }

  // Trailing spaces are legal: the reference writer pads the header so the data buffer starts 8-aligned.
  const json root = json_parse_strict(header, "safetensors file " + io_quote(filename) + " header", "tensor name");
  if (!root.is_object()) fail(std::string("header is a JSON ") + root.type_name() + ", expected an object");

  const std::byte* data = bytes + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  HeaderReader reader(filename, data_size);
  std::vector<Entry> entries;
  entries.reserve(root.size());
  for (const auto& [name, value] : root.items()) {
    if (name == kMetadataKey) {
      reader.read_metadata(value, metadata);
    } else {
      entries.push_back(reader.read_tensor(name, value));
    }
  }
  check_coverage(entries, data_size, filename);

  std::vector<TensorView> views;
  views.reserve(entries.size());
  for (Entry& e : entries) {
    e.view.data = data + e.begin;
    views.push_back(std::move(e.view));
  }
  std::sort(views.begin(), views.end(), [](const TensorView& a, const TensorView& b) { return a.name < b.name; });
  return views;
}

}  // namespace lcllm
