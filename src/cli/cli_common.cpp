#include "cli/cli_common.h"

#include <cstdio>

#include "lcllm/error.h"
#include <sys/resource.h>

#include "attention/attention_plan.h"
#include "runtime/engine.h"

namespace lcllm {

CLI::Option* cli_add_kv_cache_dtype_option(CLI::App* cmd, std::string& dtype) {
  return cmd
      ->add_option("--kv-cache-dtype", dtype,
                   "KV cache precision: auto (fp32 on cpu, bf16 on cuda), bf16, or fp8 (e4m3 with one power-of-two "
                   "scale per head vector, K and V Hadamard-rotated before rounding: about half of bf16's memory "
                   "and decode reads; cpu emulates it exactly)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "bf16", "fp8", "fp8_e4m3"}));
}

CLI::Option* cli_add_policy_option(CLI::App* cmd, std::string& policy, bool many) {
  std::string presets;
  for (const auto& p : attention_plan_presets()) presets += (presets.empty() ? "" : ", ") + p;
  return cmd
      ->add_option("--policy", policy,
                   std::string(many ? "Comma-separated attention policies, each its own pass; each" : "Attention policy:") +
                       " a preset (" + presets +
                       ") or a JSON plan file (configs/policies/*.json, or one written by `lcllm calibrate`). "
                       "Presets: full = exact attention; streaming = sink 64 + recent 256 tokens; tidal = "
                       "TidalDecode top-k selection + reuse in decode; hylra = HyLRA per-layer full/select/reuse "
                       "plan; retrieval = retrieval heads full, the other heads stream and keep only their window "
                       "(needs calibrated scores, else all heads full); hip = HiP hierarchical block-sparse "
                       "attention (dense below 8k prompt / 192k decode tokens, where its search costs more than it "
                       "saves, and over a prompt's last 64 rows). `lcllm policy show MODEL --policy X` prints the "
                       "per-layer plan; rules and sources in docs/POLICIES.md")
      ->capture_default_str();
}

std::string describe_kv_memory(const Engine& e) {
  std::string s = "KV cache " + format_bytes(double(e.kv_bytes_reserved())) + " reserved (" +
                  std::to_string(e.kv_cache().n_pages() * int64_t(e.kv_cache().page_size())) + " tokens, " +
                  kv_dtype_name(e.kv_dtype()) + (e.kv_dtype() != e.kv_storage_dtype() ? " emulated" : "") + ")";
  if (e.kv_window().empty()) return s;
  const size_t full = e.kv_bytes_full(), pool = e.kv_bytes_reserved();
  return s + " (streaming heads keep only a " + std::to_string(e.kv_window().ring_len) + "-token window: " +
         format_bytes(double(full - pool)) + " saved vs " + format_bytes(double(full)) + " for all heads; their rings take " +
         format_bytes(double(e.kv_window_bytes_per_sequence())) + " per sequence)";
}

CLI::Validator cli_seed_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        constexpr const char* kMax = "18446744073709551615";
        const bool digits = !value.empty() && value.size() <= 20 &&
                            value.find_first_not_of("0123456789") == std::string::npos;
        if (!digits || (value.size() == 20 && value > kMax)) {
          return "must be an integer in [0, " + std::string(kMax) + "], got '" + value.substr(0, 40) + "'";
        }
        return "";
      },
      "UINT64");
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

size_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return size_t(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

namespace {
std::string& command_line_storage() {
  static std::string s;
  return s;
}
}  // namespace

void cli_set_command_line(int argc, char** argv) {
  std::string& s = command_line_storage();
  s.clear();
  for (int i = 0; i < argc; ++i) {
    if (i) s += ' ';
    s += i == 0 ? std::string("lcllm") : std::string(argv[i]);
  }
}

const std::string& cli_command_line() { return command_line_storage(); }

}  // namespace lcllm
