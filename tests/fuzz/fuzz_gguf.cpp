// libFuzzer target: the input is a GGUF file. gguf_parse may only ever produce lcllm::Error; a crash, UB, a leak,
// an allocation sized by a claimed count, or a tensor view outside the input is a bug (E10 item 1). Accepted tensors
// of dequantizable types are dequantized, so the block decoders run on whatever bytes the fuzzer makes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "io/gguf.h"
#include "io/gguf_types.h"
#include "lcllm/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  try {
    const lcllm::GgufContents c = lcllm::gguf_parse(bytes, size, "fuzz.gguf");
    for (const lcllm::GgufTensorInfo& t : c.tensors) {
      if (t.data < bytes || t.data + t.nbytes > bytes + size) std::abort();
      const lcllm::GgmlTypeInfo* info = lcllm::ggml_type_info(t.type);
      if (!info || !info->dequantizable || t.n_elements() > (1 << 16)) continue;
      std::vector<float> out(size_t(t.n_elements()));
      lcllm::ggml_dequantize(t.type, t.data, out.data(), t.n_elements());
    }
  } catch (const lcllm::Error&) {
  }
  return 0;
}
