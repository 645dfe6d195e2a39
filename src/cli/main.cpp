// lcllm command line: subcommands register themselves (commands.h); main parses, dispatches and turns
// lcllm::Error into one clear line and exit code 2 (bad input) or 1 (runtime failure).
#include <cstdio>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "lcllm/error.h"

int main(int argc, char** argv) {
  CLI::App app{"lcllm: long-context LLM inference with per-layer attention policies"};
  app.require_subcommand(1);
  app.fallthrough();  // --log-level may also follow the subcommand
  app.set_version_flag("--version", std::string("lcllm ") + LCLLM_VERSION);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "Log verbosity: trace, debug, info, warn, error, off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  lcllm::cli_set_command_line(argc, argv);
  std::vector<lcllm::CliHandler> handlers = {
      lcllm::cli_add_run(app),
      lcllm::cli_add_info(app),
      lcllm::cli_add_tokenize(app),
      lcllm::cli_add_policy(app),
      lcllm::cli_add_serve(app),
      lcllm::cli_add_eval(app),
      lcllm::cli_add_bench(app),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("lcllm"));
  spdlog::set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  spdlog::set_level(spdlog::level::from_str(log_level));
  try {
    for (auto& h : handlers) {
      int rc = h();
      if (rc >= 0) return rc;
    }
  } catch (const lcllm::Error& e) {
    std::fprintf(stderr, "lcllm: error: %s\n", e.what());
    return e.kind() == lcllm::ErrorKind::ERROR_KIND_OUT_OF_MEMORY ? 1 : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lcllm: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
