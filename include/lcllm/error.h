// Errors that come from outside the program: bad files, bad configs, bad requests, full caches.
//
// Three tiers (ARCHITECTURE.md §5.5): programmer/device bugs abort with file:line (LCLLM_ASSERT, CUDA_CHECK);
// bad input throws lcllm::Error carrying a category and a message that names the file, the field and the rule;
// every boundary (CLI main, HTTP handler) catches lcllm::Error, so no input can crash the process.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace lcllm {

enum class ErrorKind {
  ERROR_KIND_INVALID_FILE,      // a file that exists but is malformed (safetensors, config.json, tokenizer)
  ERROR_KIND_NOT_FOUND,         // a path or a tensor that is missing
  ERROR_KIND_UNSUPPORTED,       // well-formed but outside what lcllm implements (model_type, dtype, rope type)
  ERROR_KIND_INVALID_ARGUMENT,  // a bad value from the user (flag, request field)
  ERROR_KIND_OUT_OF_MEMORY,     // a pool (KV pages, device memory) cannot satisfy the request
  ERROR_KIND_IO,                // the operating system refused (open, mmap, read)
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

[[noreturn]] inline void assert_fail(const char* expr, const char* file, int line, const char* msg) {
  std::fprintf(stderr, "lcllm: internal error at %s:%d: %s (%s)\n", file, line, msg, expr);
  std::abort();
}

}  // namespace lcllm

// Programmer errors only (broken invariants), never for input validation.
#define LCLLM_ASSERT(cond, msg) \
  do { if (!(cond)) ::lcllm::assert_fail(#cond, __FILE__, __LINE__, (msg)); } while (0)
