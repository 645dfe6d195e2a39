// libFuzzer target: tokenizer.json loading + encode/decode/streaming on hostile input.
// Input layout: a tokenizer.json document, optionally followed by a NUL byte and a text to encode (a fixed
// mixed-script text is used when there is none). Loading may fail only with lcllm::Error; anything else
// (crash, other exception, sanitizer report, hang) is a bug.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "lcllm/error.h"
#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = in.find('\0');
  const std::string_view json = in.substr(0, nul);
  const std::string_view text = nul == std::string_view::npos
                                    ? std::string_view("Hello <s> wor\xC3\xA9ld 123 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80\n\t x")
                                    : in.substr(nul + 1);
  std::unique_ptr<lcllm::Tokenizer> tok;
  try {
    tok = lcllm::Tokenizer::from_json(json, "fuzz.json");
  } catch (const lcllm::Error&) {
    return 0;
  }
  try {
    const auto ids = tok->encode(text, true);
    (void)tok->decode(ids, false);
    (void)tok->decode(ids, true);
    lcllm::IncrementalDetokenizer det(*tok);
    for (int32_t id : ids) (void)det.push(id);
    (void)det.finish();
    for (int32_t id : ids) (void)tok->token_text(id);
    (void)tok->vocab_size();
  } catch (const lcllm::Error&) {
    // e.g. a pathological regex hitting PCRE2's match limit
  }
  return 0;
}
