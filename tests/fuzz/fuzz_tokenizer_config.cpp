// libFuzzer target: the input is a tokenizer_config.json (corpus: the real Llama 2/3 and Qwen 3 files, trimmed).
// tokenizer_parse_config may only ever produce lcllm::Error; a crash, UB, another exception type or unbounded
// recursion is a bug (E12 item 4). What it accepts must be usable: special tokens are strings, and a chat template
// it returns must construct or fail with lcllm::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "lcllm/error.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const lcllm::TokenizerConfig c = lcllm::tokenizer_parse_config(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz tokenizer_config.json");
    // Sizes come from the input, which is bounded: a value larger than it would be a bug.
    if (c.chat_template.size() > size || c.bos_token.size() > size || c.eos_token.size() > size) __builtin_trap();
  } catch (const lcllm::Error&) {
  }
  return 0;
}
