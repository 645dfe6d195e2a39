// Helpers shared by the subcommands: error-to-exit-code mapping, memory reporting, the --policy flag.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace lcllm {

class Engine;

// Adds `--policy NAME|FILE` to a subcommand with the help text every command shares (presets listed, where the
// rules are documented); run, bench, eval, serve and policy show use it so the flag reads the same everywhere.
// many: the value is a comma-separated list, each policy its own pass (eval).
CLI::Option* cli_add_policy_option(CLI::App* cmd, std::string& policy, bool many = false);
// --kv-cache-dtype auto|bf16|fp8 (EngineOptions::kv_cache_dtype).
CLI::Option* cli_add_kv_cache_dtype_option(CLI::App* cmd, std::string& dtype);
// "KV cache 1.00 GiB reserved" plus, when the plan windows streaming heads, what that saves:
// "KV cache 600 MiB reserved (streaming heads keep only a 576-token window: 424 MiB saved vs 1.00 GiB for all
// heads; their rings take 1.2 MiB per sequence)".
std::string describe_kv_memory(const Engine& engine);

// --seed on every command: a decimal integer in [0, 2^64 - 1]. CLI11 alone would wrap -1 to 2^64 - 1 and saturate
// 99999999999999999999 silently (E12 item 5).
CLI::Validator cli_seed_validator();

std::string format_bytes(double bytes);
size_t peak_rss_bytes();  // the process's high-water resident memory (Linux getrusage)

// The command line as typed (main() records it), for result files.
void cli_set_command_line(int argc, char** argv);
const std::string& cli_command_line();

}  // namespace lcllm
