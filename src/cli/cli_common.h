// Helpers shared by the subcommands: error-to-exit-code mapping and memory reporting.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lcllm {

std::string format_bytes(double bytes);
size_t peak_rss_bytes();  // the process's high-water resident memory (Linux getrusage)

// "4k,32k,128k" → {4096, 32768, 131072} (k = 1024, m = 1048576, plain integers too); every entry > 0. Throws
// ERROR_KIND_INVALID_ARGUMENT naming `flag` and the bad entry.
std::vector<int64_t> parse_token_counts(const std::string& text, const std::string& flag);

// The command line as typed (main() records it), for result files.
void cli_set_command_line(int argc, char** argv);
const std::string& cli_command_line();

}  // namespace lcllm
