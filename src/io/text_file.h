// Reading a small text file a user or a client names (config.json, tokenizer files, plan files, chat templates,
// API key files) without trusting it (E12): only regular files, checked before opening, so a FIFO cannot hang the
// reader and /dev/zero cannot fill memory; and at most max_bytes, checked against the file's size before reading.
#pragma once
#include <cstddef>
#include <string>

namespace lcllm {

// The whole file. Throws lcllm::Error: NOT_FOUND when it does not exist, INVALID_FILE when it is not a regular
// file or is larger than max_bytes (the message names `what`, the path and the limit), IO on a read error.
std::string read_text_file(const std::string& path, const std::string& what, size_t max_bytes);

constexpr size_t kMaxConfigFileBytes = size_t(64) << 20;      // config.json, plans, templates, key files
constexpr size_t kMaxTokenizerFileBytes = size_t(512) << 20;  // tokenizer.json (Gemma 3's is ~33 MB)

}  // namespace lcllm
