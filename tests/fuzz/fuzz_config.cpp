// libFuzzer target: the input is a model's config.json (configs/models/*.json, the parity fixtures' configs). A
// malformed config may only ever produce lcllm::Error (a message listing its problems); anything else — a crash, UB,
// another exception type, an allocation sized by a claimed field — is a bug (E12 item 4).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "io/json_file.h"
#include "lcllm/error.h"
#include "models/model_family.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const nlohmann::json j = lcllm::json_parse_bounded(std::string_view(reinterpret_cast<const char*>(data), size),
                                                        "fuzz config.json");
    const lcllm::ModelConfig c = lcllm::model_config_from_json(j, "fuzz config.json");
    // Whatever resolves must be self-consistent enough for the engine's own sizing.
    if (c.n_layers <= 0 || c.layers.size() != size_t(c.n_layers) || c.n_heads <= 0 || c.n_kv_heads <= 0 ||
        c.head_dim <= 0 || c.n_heads % c.n_kv_heads != 0) {
      __builtin_trap();
    }
  } catch (const lcllm::Error&) {
  }
  return 0;
}
