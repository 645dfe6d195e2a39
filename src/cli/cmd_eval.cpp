// `lcllm eval niah|ruler|longbench MODEL`: long-context evaluation (docs/EVALUATION.md). The harness lives in
// src/eval; this file parses flags, shows progress and prints where the results went.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include <spdlog/spdlog.h>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "cli/progress_bar.h"
#include "eval/longbench.h"
#include "eval/niah.h"
#include "eval/result_io.h"
#include "eval/ruler.h"
#include "lcllm/error.h"
#include "runtime/engine.h"

namespace lcllm {

namespace {

struct CommonArgs {
  std::string model;
  std::string tokenizer;
  std::string policy = "full";
  std::string out;
  std::string device = "auto";
  int32_t threads = 0;
  int32_t chunk_size = 256;
  int32_t batch_size = 8;
  float gpu_memory_fraction = 0.9f;
  uint64_t seed = 0;
  int32_t max_new_tokens = 0;
  bool quiet = false;
  std::string haystack;  // niah, ruler: natural text file
  std::string kv_cache_dtype = "auto";
};

struct NiahArgs {
  CommonArgs c;
  std::string lengths = "1k,2k,4k";
  std::string depths = "0:100:10";
  int32_t samples = 1;
};

struct RulerArgs {
  CommonArgs c;
  std::string tasks = "niah_single,niah_multikey,niah_multivalue,niah_multiquery,vt,cwe";
  std::string lengths = "4k";
  int32_t samples = 10;
};

struct LongBenchArgs {
  CommonArgs c;
  std::string data;
  std::string datasets;
  int32_t max_length = 3500;
  bool chat = false;
  std::string chat_template;
  std::string model_name;
  int32_t limit = 0;
  bool longbench_e = false;
};

void add_common(CLI::App* cmd, CommonArgs& a, const std::string& out_default, bool many_policies) {
  a.out = out_default;
  cmd->add_option("MODEL", a.model, "Model directory (config.json, *.safetensors, tokenizer; lcllm_eval.json optional)")
      ->required();
  cmd->add_option("--tokenizer", a.tokenizer, "Tokenizer directory or file (default: the model directory)");
  cli_add_policy_option(cmd, a.policy, many_policies);
  cmd->add_option("--out,-o", a.out, "Output directory")->capture_default_str();
  cmd->add_option("--device", a.device, "Backend: auto (cuda when a GPU is usable, else cpu) or one of: " +
                                            engine_devices())->capture_default_str();
  cmd->add_option("--threads,-t", a.threads, "CPU threads; 0 = all cores")->capture_default_str()->check(CLI::Range(0, 4096));
  cmd->add_option("--chunk-size", a.chunk_size, "Prefill chunk: tokens per forward step (1-65536)")->capture_default_str()->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--batch-size", a.batch_size,
                  "Requests run together, 1-4096 (the KV cache holds this many prompts; on the cpu results do not depend on it)")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--gpu-memory-fraction", a.gpu_memory_fraction, "Share of GPU memory the engine may use (cuda)")
      ->capture_default_str()
      ->check(CLI::Range(0.05f, 1.0f));
  cmd->add_option("--seed", a.seed, "Seed of the task generator (haystacks, keys, values)")->capture_default_str()->check(cli_seed_validator());
  cli_add_kv_cache_dtype_option(cmd, a.kv_cache_dtype);
  cmd->add_flag("--quiet,-q", a.quiet, "No progress bar");
}

EvalEngineSettings engine_settings(const CommonArgs& a, ProgressBar* load_bar) {
  EvalEngineSettings s;
  s.device = a.device;
  s.threads = a.threads;
  s.chunk_size = a.chunk_size;
  s.batch_size = a.batch_size;
  s.gpu_memory_fraction = a.gpu_memory_fraction;
  s.kv_cache_dtype = a.kv_cache_dtype;
  if (load_bar) s.load_progress = [load_bar](size_t done, size_t total) { load_bar->update(done, total); };
  return s;
}

// One progress bar per policy (or dataset), with ETA.
class PassProgress {
 public:
  PassProgress(std::string prefix, bool enabled) : prefix_(std::move(prefix)), enabled_(enabled) {}
  ~PassProgress() { finish(); }
  void finish() {
    if (bar_) bar_->finish();
    bar_.reset();
  }
  void operator()(const std::string& label, size_t done, size_t total) {
    if (label != label_) {
      if (bar_) bar_->finish();
      label_ = label;
      bar_ = std::make_unique<ProgressBar>(prefix_ + " " + label, enabled_);
    }
    bar_->update(done, total);
  }

 private:
  std::string prefix_, label_;
  bool enabled_;
  std::unique_ptr<ProgressBar> bar_;
};

// niah and ruler: the session's KV dtype and haystack from the flags, and a log line naming what it reads.
void prepare_haystack_session(EvalSession& session, const CommonArgs& c, const char* task) {
  session.use_kv_cache_dtype(c.kv_cache_dtype);
  if (!c.haystack.empty()) session.use_haystack(c.haystack);
  spdlog::info("eval {}: {} ({}), task text: {}", task, session.model_name(), session.config().model_type,
               session.text().source);
}

// The run's comparison.md (accuracy and retained-probability tables) on stdout.
void print_comparison(const std::string& out_dir) {
  std::ifstream md(out_dir + "/comparison.md");
  std::printf("%s", std::string(std::istreambuf_iterator<char>(md), {}).c_str());
}

// ", retained.png" where the run wrote one (more than one policy), for the closing line's file list.
const char* retained_png_note(const std::string& out_dir) {
  return std::filesystem::exists(out_dir + "/retained.png") ? ", retained.png" : "";
}

int run_niah(const NiahArgs& a) {
  NiahOptions o;
  for (const auto& l : eval_split_list(a.lengths)) o.lengths.push_back(eval_parse_length(l, "--lengths"));
  o.depths = eval_parse_depths(a.depths, "--depths");
  o.samples = a.samples;
  o.seed = a.c.seed;
  o.max_new_tokens = a.c.max_new_tokens;
  o.out_dir = a.c.out;
  o.engine = engine_settings(a.c, nullptr);
  EvalSession session(a.c.model, eval_split_list(a.c.policy), a.c.tokenizer);
  prepare_haystack_session(session, a.c, "niah");
  PassProgress progress("niah", !a.c.quiet);
  auto cells = niah_run(session, o, std::ref(progress));
  progress.finish();
  print_comparison(o.out_dir);
  size_t resumed = 0;
  for (const auto& c : cells) resumed += c.resumed ? 1 : 0;
  std::fprintf(stderr, "%zu cells (%zu resumed); results in %s (summary.csv, comparison.md, heatmap_*.png%s)\n",
               cells.size(), resumed, o.out_dir.c_str(), retained_png_note(o.out_dir));
  return 0;
}

int run_ruler(const RulerArgs& a) {
  RulerOptions o;
  o.tasks = eval_split_list(a.tasks);
  for (const auto& l : eval_split_list(a.lengths)) o.lengths.push_back(eval_parse_length(l, "--lengths"));
  o.samples = a.samples;
  o.seed = a.c.seed;
  o.max_new_tokens = a.c.max_new_tokens;
  o.out_dir = a.c.out;
  o.engine = engine_settings(a.c, nullptr);
  EvalSession session(a.c.model, eval_split_list(a.c.policy), a.c.tokenizer);
  prepare_haystack_session(session, a.c, "ruler");
  PassProgress progress("ruler", !a.c.quiet);
  auto results = ruler_run(session, o, std::ref(progress));
  progress.finish();
  print_comparison(o.out_dir);
  std::fprintf(stderr, "%zu samples; results in %s (summary.csv, comparison.md%s, <policy>/<task>/len_*.jsonl)\n",
               results.size(), o.out_dir.c_str(), retained_png_note(o.out_dir));
  return 0;
}

int run_longbench(const LongBenchArgs& a) {
  LongBenchOptions o;
  o.data_dir = a.data;
  o.datasets = eval_split_list(a.datasets);
  o.max_length = a.max_length;
  o.chat = a.chat;
  o.chat_template_file = a.chat_template;
  o.model_name = a.model_name;
  o.limit = a.limit;
  o.longbench_e = a.longbench_e;
  o.out_dir = a.c.out;
  o.engine = engine_settings(a.c, nullptr);
  auto policies = eval_split_list(a.c.policy);
  if (policies.size() != 1) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "eval longbench: give one --policy (run again for another)");
  }
  EvalSession session(a.c.model, policies, a.c.tokenizer);
  session.use_kv_cache_dtype(a.c.kv_cache_dtype);
  PassProgress progress("longbench", !a.c.quiet);
  LongBenchReport r = longbench_run(session, o, std::ref(progress));
  progress.finish();
  for (const auto& s : r.skipped) spdlog::warn("longbench: skipped {}", s);
  for (const auto& [name, score] : r.result.items()) std::printf("%s: %s\n", name.c_str(), score.dump().c_str());
  std::fprintf(stderr, "predictions and result.json in %s\n", r.pred_dir.c_str());
  return 0;
}

}  // namespace

CliHandler cli_add_eval(CLI::App& app) {
  CLI::App* eval = app.add_subcommand("eval", "Long-context evaluation: NIAH, RULER tasks, LongBench");
  eval->require_subcommand(1);

  auto niah = std::make_shared<NiahArgs>();
  CLI::App* n = eval->add_subcommand("niah", "Needle in a haystack: lengths x depths per policy, heat maps");
  add_common(n, niah->c, "eval_niah", true);
  n->add_option("--lengths", niah->lengths, "Comma-separated prompt lengths in tokens (exact), e.g. 1k,2k,4k")
      ->capture_default_str();
  n->add_option("--depths", niah->depths, "Needle depths in percent: START:STOP:STEP or a comma list")
      ->capture_default_str();
  n->add_option("--samples", niah->samples, "Haystacks per (length, depth)")->capture_default_str();
  niah->c.max_new_tokens = 32;
  n->add_option("--max-new-tokens", niah->c.max_new_tokens, "Generation limit per answer")->capture_default_str();
  n->add_option("--haystack", niah->c.haystack,
                "Natural text file read in order as the haystack (e.g. a license or a book), instead of the built-in "
                "filler sentences");

  auto ruler = std::make_shared<RulerArgs>();
  CLI::App* r = eval->add_subcommand("ruler", "RULER synthetic tasks per policy: summary.csv + predictions");
  add_common(r, ruler->c, "eval_ruler", true);
  r->add_option("--tasks", ruler->tasks, "Comma-separated tasks")->capture_default_str();
  r->add_option("--lengths", ruler->lengths, "Comma-separated prompt lengths in tokens, e.g. 4k,8k")
      ->capture_default_str();
  r->add_option("--samples", ruler->samples, "Samples per (task, length)")->capture_default_str();
  r->add_option("--max-new-tokens", ruler->c.max_new_tokens,
                "Generation limit per answer; 0 = per task (niah 32, multi-value/query 64, vt 48, cwe 120)")
      ->capture_default_str();
  r->add_option("--haystack", ruler->c.haystack,
                "Natural text file read in order as the haystack of the niah tasks, instead of the built-in filler");

  auto lb = std::make_shared<LongBenchArgs>();
  CLI::App* l = eval->add_subcommand("longbench", "LongBench v1 predictions and scores (pred/<model>/, result.json)");
  add_common(l, lb->c, ".", false);
  l->add_option("--data", lb->data, "Directory with LongBench <dataset>.jsonl files")->required();
  l->add_option("--datasets", lb->datasets, "Comma-separated datasets (default: every <dataset>.jsonl in --data)");
  l->add_option("--max-length", lb->max_length, "Prompt tokens kept (truncated in the middle)")->capture_default_str();
  l->add_flag("--chat", lb->chat, "Wrap prompts in the model's chat template (not for few-shot and code datasets)");
  l->add_option("--chat-template", lb->chat_template, "Jinja chat template file overriding the model's");
  l->add_option("--model-name", lb->model_name, "Folder name under pred/ (default: model dir name [+ _policy])");
  l->add_option("--limit", lb->limit, "At most this many records per dataset; 0 = all")->capture_default_str();
  l->add_flag("--e", lb->longbench_e, "LongBench-E: write pred_e/<model>/ and score per length bin (0-4k, 4-8k, 8k+)");

  return [n, r, l, niah, ruler, lb]() -> int {
    if (n->parsed()) return run_niah(*niah);
    if (r->parsed()) return run_ruler(*ruler);
    if (l->parsed()) return run_longbench(*lb);
    return -1;
  };
}

}  // namespace lcllm
