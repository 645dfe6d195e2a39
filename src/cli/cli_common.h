// Helpers shared by the subcommands: error-to-exit-code mapping and memory reporting.
#pragma once
#include <cstddef>
#include <string>

namespace lcllm {

std::string format_bytes(double bytes);
size_t peak_rss_bytes();  // the process's high-water resident memory (Linux getrusage)

}  // namespace lcllm
