// `lcllm calibrate MODEL --out configs/policies/NAME.json`: needle probes on the CPU reference backend measure what
// the hylra, retrieval and tidal plans need; writes the chosen plan plus a report (NAME.report.json with every
// measurement and all three plans, NAME.retrieval.png and NAME.overlap.png heat maps). docs/POLICIES.md §7.
#include <cstdio>

#include "calibrate/calibrate.h"
#include "cli/cli_common.h"
#include "cli/commands.h"
#include "cli/progress_bar.h"
#include "lcllm/error.h"

namespace lcllm {

namespace {

struct CalibrateArgs {
  CalibrateOptions o;
  std::string out;
  std::string plan = "hylra";
  bool quiet = false;
};

int calibrate(const CalibrateArgs& a) {
  ProgressBar bar("calibrating", !a.quiet);
  const CalibrationResult r = calibrate_run(a.o, [&](size_t done, size_t total) { bar.update(done, total); });
  bar.finish();
  const std::vector<std::string> files = calibration_write(r, a.o, a.plan, a.out);
  int32_t retrieval = 0;
  for (double s : r.retrieval_scores) retrieval += s > a.o.threshold ? 1 : 0;
  std::fprintf(stderr,
               "calibrated %s: %zu probes, %lld decode steps, top-k %d; retrieval heads %d of %zu (score > %.2f); "
               "tidal re-selection layer %d\n",
               a.o.model.c_str(), r.probes.size(), (long long)r.decode_steps, r.k_measured, retrieval,
               r.retrieval_scores.size(), a.o.threshold, r.tidal_reselect_layer);
  for (const auto& f : files) std::printf("wrote %s\n", f.c_str());
  return 0;
}

}  // namespace

CliHandler cli_add_calibrate(CLI::App& app) {
  auto a = std::make_shared<CalibrateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "calibrate",
      "Measure retrieval heads, per-layer sensitivity and top-k overlap with needle probes; write a plan + report");
  cmd->add_option("MODEL", a->o.model, "Model directory (config.json + *.safetensors + tokenizer)")->required();
  cmd->add_option("--out,-o", a->out,
                  "Plan file to write, e.g. configs/policies/NAME.json; NAME.report.json, NAME.retrieval.png and "
                  "NAME.overlap.png go beside it")
      ->required();
  cmd->add_option("--plan", a->plan, "Which calibrated plan --out holds (the report has all three)")
      ->capture_default_str()
      ->check(CLI::IsMember(calibration_plan_kinds()));
  cmd->add_option("--tokenizer", a->o.tokenizer, "Tokenizer directory or file (default: the model directory)");
  cmd->add_option("--probes", a->o.probes, "Needle probes (needle depths spread over 10%..90%)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--context", a->o.context_tokens, "Tokens per probe (filler + needle + question)")
      ->capture_default_str()
      ->check(CLI::Range(64, 1 << 20));
  cmd->add_option("--haystack", a->o.haystack,
                  "Natural text file for the probes' filler (e.g. tools/eval/make_license_haystack.sh's output); "
                  "default: built-in sentences in a cycle")
      ->check(CLI::ExistingFile);
  cmd->add_option("--seed", a->o.seed, "Seed for the needle values")->capture_default_str()->check(cli_seed_validator());
  cmd->add_option("--k", a->o.k, "Top-k budget written into the hylra and tidal plans")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--reference-context", a->o.reference_context,
                  "Context the plans' k is meant for; the probes measure top-k at the same share (k / this)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--budget", a->o.budget, "HyLRA: allowed attention-mass loss, mean per layer")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--threshold", a->o.threshold, "Retrieval: heads scoring above it keep full attention")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--sink", a->o.sink, "Retrieval: sink tokens streaming heads keep")->capture_default_str();
  cmd->add_option("--recent", a->o.recent, "Retrieval: recent tokens streaming heads keep")->capture_default_str();
  cmd->add_option("--threads,-t", a->o.threads, "CPU threads; 0 = all cores")->capture_default_str()->check(CLI::Range(0, 4096));
  cmd->add_flag("--quiet,-q", a->quiet, "No progress bar");
  return [cmd, a]() -> int { return cmd->parsed() ? calibrate(*a) : -1; };
}

}  // namespace lcllm
