// GGUF parsing and validation (see gguf.h for the layout and the rules). A bounds-checked cursor reads the image;
// every count the file claims is compared with the bytes that remain before anything is sized from it.
#include "io/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>
#include <set>

#include "io/gguf_types.h"
#include "io/safetensors_internal.h"  // io_quote
#include "lcllm/error.h"

namespace lcllm {

namespace {

constexpr uint32_t kMagic = 0x46554747;       // "GGUF" read little-endian
constexpr uint64_t kMaxKeyBytes = 65535;      // the spec's limit for keys
constexpr uint64_t kMaxNameBytes = 4096;      // tensor names (the spec says 64; converters exceed it slightly)
constexpr uint32_t kMaxDims = 4;
constexpr int kMaxArrayNesting = 4;

[[noreturn]] void fail(const std::string& file, const std::string& what) {
  throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, "GGUF file " + io_quote(file) + ": " + what);
}

// Little-endian cursor over the image; every read checks the bytes that remain.
class Cursor {
 public:
  Cursor(const std::byte* data, size_t size, const std::string& file) : data_(data), size_(size), file_(file) {}
  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  template <typename T>
  T read(const char* what) {
    if (left() < sizeof(T)) fail(file_, std::string("truncated while reading ") + what + " at byte " + std::to_string(pos_));
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string string(const char* what, uint64_t max_bytes) {
    const uint64_t n = read<uint64_t>(what);
    if (n > left()) {
      fail(file_, std::string(what) + " claims " + std::to_string(n) + " bytes at byte " + std::to_string(pos_) +
                      ", beyond the end of the file (" + std::to_string(left()) + " left)");
    }
    if (n > max_bytes) fail(file_, std::string(what) + " is " + std::to_string(n) + " bytes (at most " + std::to_string(max_bytes) + ")");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(n));
    pos_ += size_t(n);
    return s;
  }

  // A count of items each at least min_item_bytes long must fit in what remains.
  uint64_t count(const char* what, uint64_t min_item_bytes) {
    const uint64_t n = read<uint64_t>(what);
    if (min_item_bytes > 0 && n > left() / min_item_bytes) {
      fail(file_, std::string(what) + " is " + std::to_string(n) + ", more than the " + std::to_string(left()) +
                      " bytes left in the file can hold");
    }
    return n;
  }

  const std::string& file() const { return file_; }

 private:
  const std::byte* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& file_;
};

// The smallest encoding of one value of type t (arrays: an empty array), for bounding counts.
uint64_t min_value_bytes(GgufType t) {
  switch (t) {
    case GgufType::GGUF_TYPE_UINT8: case GgufType::GGUF_TYPE_INT8: case GgufType::GGUF_TYPE_BOOL: return 1;
    case GgufType::GGUF_TYPE_UINT16: case GgufType::GGUF_TYPE_INT16: return 2;
    case GgufType::GGUF_TYPE_UINT32: case GgufType::GGUF_TYPE_INT32: case GgufType::GGUF_TYPE_FLOAT32: return 4;
    case GgufType::GGUF_TYPE_UINT64: case GgufType::GGUF_TYPE_INT64: case GgufType::GGUF_TYPE_FLOAT64: return 8;
    case GgufType::GGUF_TYPE_STRING: return 8;
    case GgufType::GGUF_TYPE_ARRAY: return 12;
  }
  return 1;
}

bool known_type(uint32_t t) { return t <= uint32_t(GgufType::GGUF_TYPE_FLOAT64); }

bool utf8_valid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

GgufValue read_value(Cursor& c, GgufType type, const std::string& key, int depth);

void read_array(Cursor& c, GgufValue& v, const std::string& key, int depth) {
  if (depth >= kMaxArrayNesting) fail(c.file(), "metadata " + io_quote(key) + " nests arrays deeper than " + std::to_string(kMaxArrayNesting));
  const uint32_t elem = c.read<uint32_t>("an array element type");
  if (!known_type(elem)) fail(c.file(), "metadata " + io_quote(key) + " is an array of unknown type " + std::to_string(elem));
  v.elem = GgufType(elem);
  const uint64_t n = c.count("an array length", min_value_bytes(v.elem));
  for (uint64_t k = 0; k < n; ++k) {
    GgufValue item = read_value(c, v.elem, key, depth + 1);
    switch (v.elem) {
      case GgufType::GGUF_TYPE_STRING: v.strings.push_back(std::move(item.s)); break;
      case GgufType::GGUF_TYPE_FLOAT32: case GgufType::GGUF_TYPE_FLOAT64: v.floats.push_back(item.f); break;
      case GgufType::GGUF_TYPE_ARRAY: v.arrays.push_back(std::move(item)); break;
      case GgufType::GGUF_TYPE_UINT64:
        if (item.u > uint64_t(INT64_MAX)) fail(c.file(), "metadata " + io_quote(key) + " holds a u64 beyond 2^63 - 1");
        v.ints.push_back(item.i);
        break;
      default: v.ints.push_back(item.i); break;
    }
  }
}

GgufValue read_value(Cursor& c, GgufType type, const std::string& key, int depth) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufType::GGUF_TYPE_UINT8: v.i = c.read<uint8_t>("a u8"); break;
    case GgufType::GGUF_TYPE_INT8: v.i = c.read<int8_t>("an i8"); break;
    case GgufType::GGUF_TYPE_UINT16: v.i = c.read<uint16_t>("a u16"); break;
    case GgufType::GGUF_TYPE_INT16: v.i = c.read<int16_t>("an i16"); break;
    case GgufType::GGUF_TYPE_UINT32: v.i = c.read<uint32_t>("a u32"); break;
    case GgufType::GGUF_TYPE_INT32: v.i = c.read<int32_t>("an i32"); break;
    case GgufType::GGUF_TYPE_UINT64:
      v.u = c.read<uint64_t>("a u64");
      v.i = v.u > uint64_t(INT64_MAX) ? INT64_MAX : int64_t(v.u);
      break;
    case GgufType::GGUF_TYPE_INT64: v.i = c.read<int64_t>("an i64"); break;
    case GgufType::GGUF_TYPE_FLOAT32: v.f = c.read<float>("an f32"); break;
    case GgufType::GGUF_TYPE_FLOAT64: v.f = c.read<double>("an f64"); break;
    case GgufType::GGUF_TYPE_BOOL: {
      const uint8_t b = c.read<uint8_t>("a bool");
      if (b > 1) fail(c.file(), "metadata " + io_quote(key) + " holds a bool that is neither 0 nor 1 (" + std::to_string(b) + ")");
      v.i = b;
      break;
    }
    case GgufType::GGUF_TYPE_STRING:
      v.s = c.string("a string value", UINT64_MAX);
      if (!utf8_valid(v.s)) fail(c.file(), "metadata " + io_quote(key) + " holds a string that is not UTF-8");
      break;
    case GgufType::GGUF_TYPE_ARRAY: read_array(c, v, key, depth); break;
  }
  return v;
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::GGUF_TYPE_UINT8: return "u8";
    case GgufType::GGUF_TYPE_INT8: return "i8";
    case GgufType::GGUF_TYPE_UINT16: return "u16";
    case GgufType::GGUF_TYPE_INT16: return "i16";
    case GgufType::GGUF_TYPE_UINT32: return "u32";
    case GgufType::GGUF_TYPE_INT32: return "i32";
    case GgufType::GGUF_TYPE_FLOAT32: return "f32";
    case GgufType::GGUF_TYPE_BOOL: return "bool";
    case GgufType::GGUF_TYPE_STRING: return "string";
    case GgufType::GGUF_TYPE_ARRAY: return "array";
    case GgufType::GGUF_TYPE_UINT64: return "u64";
    case GgufType::GGUF_TYPE_INT64: return "i64";
    case GgufType::GGUF_TYPE_FLOAT64: return "f64";
  }
  return "?";
}

size_t GgufValue::size() const {
  if (type != GgufType::GGUF_TYPE_ARRAY) return 0;
  return ints.size() + floats.size() + strings.size() + arrays.size();
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::GGUF_TYPE_UINT8: case GgufType::GGUF_TYPE_INT8: case GgufType::GGUF_TYPE_UINT16:
    case GgufType::GGUF_TYPE_INT16: case GgufType::GGUF_TYPE_UINT32: case GgufType::GGUF_TYPE_INT32:
    case GgufType::GGUF_TYPE_UINT64: case GgufType::GGUF_TYPE_INT64:
      return true;
    default:
      return false;
  }
}

bool GgufValue::is_float() const {
  return type == GgufType::GGUF_TYPE_FLOAT32 || type == GgufType::GGUF_TYPE_FLOAT64;
}

int64_t GgufTensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;  // validated by gguf_parse: no overflow
  return n;
}

GgufContents gguf_parse(const std::byte* bytes, size_t size, const std::string& filename) {
  Cursor c(bytes, size, filename);
  GgufContents out;
  if (size < 4) fail(filename, "too short to be GGUF (" + std::to_string(size) + " bytes)");
  const uint32_t magic = c.read<uint32_t>("the magic");
  if (magic != kMagic) fail(filename, "does not start with the GGUF magic (not a GGUF file)");
  out.version = c.read<uint32_t>("the version");
  if (out.version != 2 && out.version != 3) {
    fail(filename, "GGUF version " + std::to_string(out.version) +
                       " is not supported (2 and 3 are; a byte-swapped version means a big-endian file)");
  }
  // Each tensor info is at least 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 (type) + 8 (offset) bytes, each
  // metadata entry at least 8 (key length) + 4 (type) + 1 (a u8) bytes.
  const uint64_t n_tensors = c.count("the tensor count", 32);
  const uint64_t n_kv = c.count("the metadata count", 13);

  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.string("a metadata key", kMaxKeyBytes);
    if (key.empty() || !utf8_valid(key)) fail(filename, "metadata key #" + std::to_string(k) + " is empty or not UTF-8");
    const uint32_t type = c.read<uint32_t>("a metadata type");
    if (!known_type(type)) fail(filename, "metadata " + io_quote(key) + " has unknown value type " + std::to_string(type));
    GgufValue v = read_value(c, GgufType(type), key, 0);
    if (out.metadata.count(key)) fail(filename, "duplicate metadata key " + io_quote(key));
    out.metadata.emplace(std::move(key), std::move(v));
  }
  if (auto it = out.metadata.find("general.alignment"); it != out.metadata.end()) {
    const GgufValue& a = it->second;
    if (!a.is_integer() || a.i <= 0 || (a.i & (a.i - 1)) != 0 || a.i > (1 << 20)) {
      fail(filename, "general.alignment must be a power of two up to 2^20, got " + (a.is_integer() ? std::to_string(a.i) : std::string(gguf_type_name(a.type))));
    }
    out.alignment = uint64_t(a.i);
  }

  std::set<std::string, std::less<>> names;
  out.tensors.reserve(size_t(n_tensors));
  for (uint64_t t = 0; t < n_tensors; ++t) {
    GgufTensorInfo ti;
    ti.name = c.string("a tensor name", kMaxNameBytes);
    if (ti.name.empty() || !utf8_valid(ti.name)) fail(filename, "tensor #" + std::to_string(t) + " has an empty or non-UTF-8 name");
    if (!names.insert(ti.name).second) fail(filename, "duplicate tensor name " + io_quote(ti.name));
    const std::string where = "tensor " + io_quote(ti.name);
    const uint32_t n_dims = c.read<uint32_t>("a tensor's dimension count");
    if (n_dims == 0 || n_dims > kMaxDims) fail(filename, where + " has " + std::to_string(n_dims) + " dimensions (1 to 4)");
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.read<uint64_t>("a tensor dimension");
      if (ne == 0 || ne > uint64_t(INT64_MAX)) fail(filename, where + " has dimension " + std::to_string(d) + " = " + std::to_string(ne));
      if (n_elements > uint64_t(INT64_MAX) / ne) fail(filename, where + ": its element count overflows 64 bits");
      n_elements *= ne;
      ti.ne.push_back(int64_t(ne));
    }
    ti.type = c.read<uint32_t>("a tensor type");
    const GgmlTypeInfo* info = ggml_type_info(ti.type);
    if (!info) fail(filename, where + " has unknown ggml type " + std::to_string(ti.type));
    if (ti.ne[0] % info->block_size != 0) {
      fail(filename, where + " rows of " + std::to_string(ti.ne[0]) + " elements are not a multiple of " + info->name +
                         "'s block of " + std::to_string(info->block_size));
    }
    const auto row = ggml_row_bytes(ti.type, uint64_t(ti.ne[0]));
    const uint64_t rows = n_elements / uint64_t(ti.ne[0]);
    if (!row || (*row > 0 && rows > UINT64_MAX / *row)) fail(filename, where + ": its size in bytes overflows 64 bits");
    ti.nbytes = *row * rows;
    ti.offset = c.read<uint64_t>("a tensor offset");
    if (ti.offset % out.alignment != 0) {
      fail(filename, where + " offset " + std::to_string(ti.offset) + " is not a multiple of the alignment " + std::to_string(out.alignment));
    }
    out.tensors.push_back(std::move(ti));
  }

  const uint64_t data_offset = (uint64_t(c.pos()) + out.alignment - 1) / out.alignment * out.alignment;
  if (out.tensors.empty()) {
    out.data_offset = size_t(std::min<uint64_t>(data_offset, size));
    return out;
  }
  if (data_offset > size) fail(filename, "the tensor data section starts past the end of the file");
  out.data_offset = size_t(data_offset);
  const uint64_t data_size = size - data_offset;
  // In offset order, each tensor must end before the next begins and inside the data section.
  std::vector<size_t> order(out.tensors.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return out.tensors[a].offset < out.tensors[b].offset; });
  for (size_t k = 0; k < order.size(); ++k) {
    GgufTensorInfo& ti = out.tensors[order[k]];
    if (ti.offset > data_size || ti.nbytes > data_size - ti.offset) {
      fail(filename, "tensor " + io_quote(ti.name) + " (" + std::to_string(ti.nbytes) + " bytes at data offset " +
                         std::to_string(ti.offset) + ") lies past the end of the file (" + std::to_string(data_size) +
                         " data bytes)");
    }
    if (k + 1 < order.size()) {
      const GgufTensorInfo& next = out.tensors[order[k + 1]];
      if (ti.offset + ti.nbytes > next.offset) {
        fail(filename, "tensor " + io_quote(ti.name) + " overlaps tensor " + io_quote(next.name));
      }
    }
    ti.data = bytes + data_offset + ti.offset;
  }
  return out;
}

bool gguf_is_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st{};
  uint32_t magic = 0;
  const bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::read(fd, &magic, 4) == 4 && magic == kMagic;
  ::close(fd);
  return ok;
}

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    throw Error(err == ENOENT || err == ENOTDIR ? ErrorKind::ERROR_KIND_NOT_FOUND : ErrorKind::ERROR_KIND_IO,
                "cannot open GGUF file " + io_quote(path) + ": " + std::strerror(err));
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "GGUF file " + io_quote(path) + " is not a regular file");
  }
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->path_ = path;
  const auto size = static_cast<size_t>(st.st_size);
  if (size > 0) {
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    if (map == MAP_FAILED) throw Error(ErrorKind::ERROR_KIND_IO, "cannot mmap GGUF file " + io_quote(path) + ": " + std::strerror(err));
    file->map_ = map;
    file->map_size_ = size;
  } else {
    ::close(fd);
  }
  file->contents_ = gguf_parse(static_cast<const std::byte*>(file->map_), size, path);
  for (size_t i = 0; i < file->contents_.tensors.size(); ++i) file->by_name_.emplace(file->contents_.tensors[i].name, i);
  return file;
}

GgufFile::~GgufFile() {
  if (map_) ::munmap(map_, map_size_);
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = contents_.metadata.find(key);
  return it == contents_.metadata.end() ? nullptr : &it->second;
}

const GgufValue& GgufFile::require(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) fail(path_, "the metadata key " + io_quote(key) + " is missing");
  return *v;
}

int64_t GgufFile::require_int(std::string_view key) const {
  const GgufValue& v = require(key);
  if (!v.is_integer()) fail(path_, "metadata " + io_quote(key) + " must be an integer, got " + gguf_type_name(v.type));
  return v.i;
}

double GgufFile::require_float(std::string_view key) const {
  const GgufValue& v = require(key);
  if (v.is_integer()) return double(v.i);
  if (!v.is_float()) fail(path_, "metadata " + io_quote(key) + " must be a number, got " + gguf_type_name(v.type));
  return v.f;
}

const std::string& GgufFile::require_string(std::string_view key) const {
  const GgufValue& v = require(key);
  if (v.type != GgufType::GGUF_TYPE_STRING) fail(path_, "metadata " + io_quote(key) + " must be a string, got " + gguf_type_name(v.type));
  return v.s;
}

const GgufTensorInfo* GgufFile::tensor(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &contents_.tensors[it->second];
}

}  // namespace lcllm
