// libFuzzer target: safetensors_parse must either accept an image or throw lcllm::Error, never crash, and every
// view it accepts must lie inside the input. Built and run by tools/run_fuzz.sh (ASan + UBSan).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "io/safetensors.h"
#include "lcllm/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  std::map<std::string, std::string> metadata;
  std::vector<lcllm::TensorView> views;
  try {
    views = lcllm::safetensors_parse(bytes, size, "fuzz.safetensors", &metadata);
  } catch (const lcllm::Error&) {
    return 0;  // refusing bad input is the expected outcome
  }
  // An accepted view that breaks these would let a model read outside the file: make it a crash the fuzzer sees.
  for (const lcllm::TensorView& v : views) {
    const bool inside = v.data >= bytes && v.nbytes <= size && v.data <= bytes + (size - v.nbytes);
    const auto expect = static_cast<uint64_t>(v.numel()) * lcllm::dtype_size(v.dtype);
    if (!inside || expect != v.nbytes) std::abort();
    if (v.nbytes > 0) {
      volatile float first = v.at(0);  // ASan checks both ends of the range
      volatile float last = v.at(static_cast<size_t>(v.numel()) - 1);
      (void)first;
      (void)last;
    }
  }
  return 0;
}
