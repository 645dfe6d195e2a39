// SafetensorsFile: maps one file read-only and validates it with safetensors_parse.
//
// Weights are used in place (ARCHITECTURE.md §3: never copied on the CPU path), so the whole file is mapped
// MAP_PRIVATE/PROT_READ and pages are faulted in on first touch. A file truncated by another process after we
// mapped it would raise SIGBUS on access; that is outside what a reader can guard against.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "io/safetensors.h"
#include "io/safetensors_internal.h"

namespace lcllm {

namespace {

// Closes the descriptor on every exit path; the mapping outlives it.
struct FdCloser {
  int fd;
  ~FdCloser() { if (fd >= 0) ::close(fd); }
};

[[noreturn]] void throw_os_error(const std::string& what, const std::string& path, int err) {
  const ErrorKind kind = err == ENOENT || err == ENOTDIR ? ErrorKind::ERROR_KIND_NOT_FOUND : ErrorKind::ERROR_KIND_IO;
  throw Error(kind, "cannot " + what + " safetensors file " + io_quote(path) + ": " + std::strerror(err));
}

}  // namespace

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; regular files ignore it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw_os_error("open", path, errno);
  FdCloser closer{fd};

  struct stat st{};
  if (::fstat(fd, &st) != 0) throw_os_error("stat", path, errno);
  if (S_ISDIR(st.st_mode)) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "safetensors file " + io_quote(path) +
                    " is a directory, expected a .safetensors file (Checkpoint::open accepts model directories)");
  }
  if (!S_ISREG(st.st_mode)) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "safetensors file " + io_quote(path) + " is not a regular file");
  }

  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  const auto size = static_cast<size_t>(st.st_size);
  if (size > 0) {  // mmap rejects length 0; an empty file is reported by the parser as too short
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) throw_os_error("mmap", path, errno);
    file->map_ = map;  // owned from here on: the destructor unmaps even if parsing throws
    file->map_size_ = size;
  }
  file->tensors_ = safetensors_parse(static_cast<const std::byte*>(file->map_), size, path, &file->metadata_);
  spdlog::debug("mapped safetensors file '{}': {} tensors, {} bytes", path, file->tensors_.size(), size);
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

const TensorView* SafetensorsFile::find(std::string_view name) const {
  // tensors_ is sorted by name (safetensors_parse's contract).
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const TensorView& t, std::string_view n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

}  // namespace lcllm
