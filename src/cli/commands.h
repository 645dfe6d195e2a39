// Each `lcllm` subcommand lives in its own file and registers itself here: it adds its CLI11 subcommand and
// returns the handler main() runs when that subcommand was chosen. Handlers return the process exit code
// (0 ok, 1 runtime failure, 2 bad input: missing/invalid file or flag value).
#pragma once
#include <functional>

#include <CLI/CLI.hpp>

namespace lcllm {

using CliHandler = std::function<int()>;

CliHandler cli_add_run(CLI::App& app);
CliHandler cli_add_info(CLI::App& app);
CliHandler cli_add_tokenize(CLI::App& app);
CliHandler cli_add_policy(CLI::App& app);
CliHandler cli_add_serve(CLI::App& app);
CliHandler cli_add_eval(CLI::App& app);
CliHandler cli_add_bench(CLI::App& app);

}  // namespace lcllm
