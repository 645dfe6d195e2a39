// libFuzzer target: the input is a Jinja chat template. It is compiled and rendered against a small fixed chat
// (system/user/assistant with reasoning and tool calls, a tool message, a tool schema) under tight limits.
// A malformed or hostile template may only ever produce lcllm::Error; anything else (a crash, UB, a leak, another
// exception type, a hang) is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "lcllm/error.h"
#include "tokenizer/chat_template.h"

namespace {

const nlohmann::ordered_json& fixed_messages() {
  static const nlohmann::ordered_json messages = nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Hi <b>there</b> \u00e9\u4e16 \ud83d\ude00"},
    {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nHello!", "reasoning_content": "hmm",
     "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"x": 1, "y": [1.5, null, true]}}}]},
    {"role": "tool", "content": "{\"ok\": true}"},
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": " describe "}]}
  ])");
  return messages;
}

const nlohmann::ordered_json& fixed_extra() {
  static const nlohmann::ordered_json extra = nlohmann::ordered_json::parse(R"({
    "bos_token": "<s>", "eos_token": "</s>", "enable_thinking": false,
    "tools": [{"type": "function", "function": {"name": "f", "description": "d",
               "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}}]
  })");
  return extra;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 64 * 1024) return 0;
  std::string source(reinterpret_cast<const char*>(data), size);
  lcllm::TemplateLimits limits;
  limits.max_recursion_depth = 8;
  limits.max_loop_iterations = 20000;
  limits.max_output_bytes = 1 << 16;
  try {
    lcllm::ChatTemplate tmpl(source);
    tmpl.render(fixed_messages(), true, fixed_extra(), limits);
  } catch (const lcllm::Error&) {
  }
  return 0;
}
