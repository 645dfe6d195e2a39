#include "io/text_file.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "lcllm/error.h"

namespace lcllm {

std::string read_text_file(const std::string& path, const std::string& what, size_t max_bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw Error(ErrorKind::ERROR_KIND_NOT_FOUND, "cannot read " + what + " '" + path + "': no such file");
  }
  if (!S_ISREG(st.st_mode)) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_FILE,
                what + " '" + path + "' is not a regular file (a directory, FIFO or device cannot be read as one)");
  }
  if (st.st_size < 0 || size_t(st.st_size) > max_bytes) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, what + " '" + path + "' is " + std::to_string(st.st_size) +
                                                        " bytes; the limit is " + std::to_string(max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::ERROR_KIND_IO, "cannot open " + what + " '" + path + "' for reading");
  std::string text(size_t(st.st_size), '\0');
  in.read(text.data(), std::streamsize(text.size()));
  text.resize(size_t(in.gcount()));  // the file may have shrunk since stat; it cannot grow past what was sized
  if (in.bad()) throw Error(ErrorKind::ERROR_KIND_IO, "read error in " + what + " '" + path + "'");
  return text;
}

}  // namespace lcllm
