// `lcllm run MODEL`: load a model, prefill a prompt, generate, report tokens/s and memory.
#include <chrono>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "cli/cli_common.h"
#include "io/text_file.h"
#include "cli/commands.h"
#include "cli/progress_bar.h"
#include "lcllm/error.h"
#include "runtime/engine.h"
#include "runtime/scheduler.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace lcllm {

namespace {

struct RunArgs {
  std::string model;
  std::string prompt_ids;
  std::string prompt;
  std::string prompt_file;
  bool chat = false;
  std::string system;
  std::string system_file;
  std::string tokenizer;
  std::string chat_template_file;
  bool print_ids = false;
  int32_t max_tokens = 32;
  SamplingParams sampling;
  std::string policy = "full";
  std::string device = "auto";
  int32_t threads = 0;
  int32_t ctx_size = 4096;
  float gpu_memory_fraction = 0.9f;
  bool enforce_eager = false;
  bool async_decode = false;
  std::string kv_cache_dtype = "auto";
  int32_t chunk_size = 0;  // 0: engine_auto_step_tokens (4096 on cuda, 256 on cpu)
  bool ignore_eos = false;
  bool quiet = false;
};

// Long prompts (E11 item 4): a 32k-token prompt does not fit in one argument (Linux allows 128 KiB), so --prompt and
// --system also come from a file (--prompt-file, --system-file) or from stdin (the value "-"; one of them at most).
constexpr size_t kMaxPromptFileBytes = size_t(256) << 20;

std::string read_stdin_text(const char* flag) {
  std::string out;
  char buf[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), stdin)) > 0) {
    out.append(buf, n);
    if (out.size() > kMaxPromptFileBytes) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                  std::string(flag) + " -: standard input holds more than " +
                      std::to_string(kMaxPromptFileBytes >> 20) + " MiB");
    }
  }
  return out;
}

void resolve_long_texts(RunArgs& a) {
  if (a.prompt == "-" && a.system == "-") {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--prompt - and --system - cannot both read standard input");
  }
  auto one = [](std::string& text, const std::string& file, const char* flag, const char* file_flag) {
    if (!file.empty()) {
      if (!text.empty()) {
        throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                    std::string("give ") + flag + " or " + file_flag + ", not both");
      }
      text = read_text_file(file, file_flag, kMaxPromptFileBytes);
      if (text.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, std::string(file_flag) + " '" + file + "' is empty");
    } else if (text == "-") {
      text = read_stdin_text(flag);
      if (text.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, std::string(flag) + " -: standard input is empty");
    }
  };
  one(a.prompt, a.prompt_file, "--prompt", "--prompt-file");
  one(a.system, a.system_file, "--system", "--system-file");
}

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    while (used < item.size() && item[used] == ' ') ++used;
    if (item.empty() || used != item.size() || v < 0 || v > INT32_MAX) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                  "--prompt-ids: '" + item + "' is not a token id (expected comma-separated non-negative integers)");
    }
    ids.push_back(int32_t(v));
  }
  return ids;
}


std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::ERROR_KIND_NOT_FOUND, "cannot read chat template file '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// --chat: the prompt is the user's message, rendered through the chat template as transformers'
// apply_chat_template does (generation prompt on), then tokenized without adding special tokens again.
std::string render_chat(const RunArgs& a, const Tokenizer& tok) {
  std::string source = a.chat_template_file.empty() ? tok.chat_template() : read_file(a.chat_template_file);
  if (source.empty()) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "--chat: the tokenizer has no chat_template; pass one with --chat-template FILE");
  }
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!a.system.empty()) messages.push_back({{"role", "system"}, {"content", a.system}});
  messages.push_back({{"role", "user"}, {"content", a.prompt}});
  nlohmann::ordered_json extra = {{"bos_token", tok.bos_token()}, {"eos_token", tok.eos_token()}};
  return ChatTemplate(source).render(messages, true, extra);
}

int run(RunArgs a) {
  resolve_long_texts(a);
  const int n_prompts = int(!a.prompt_ids.empty()) + int(!a.prompt.empty());
  if (n_prompts != 1) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "give exactly one prompt: --prompt TEXT (with --chat for the chat template) or --prompt-ids 1,2,3");
  }
  if (a.chat && a.prompt.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--chat needs --prompt TEXT");

  // The tokenizer: --tokenizer, else the model directory's own files (optional with --prompt-ids).
  std::unique_ptr<Tokenizer> tok;
  const std::string tok_path = a.tokenizer.empty() ? a.model : a.tokenizer;
  if (!a.tokenizer.empty() || Tokenizer::available(a.model)) {
    tok = Tokenizer::load(tok_path);
  } else if (!a.prompt.empty()) {
    throw Error(ErrorKind::ERROR_KIND_NOT_FOUND, "--prompt needs a tokenizer: '" + a.model +
                                                     "' has no tokenizer.json or tokenizer.model; pass --tokenizer "
                                                     "DIR_OR_FILE or use --prompt-ids");
  }
  std::vector<int32_t> prompt;
  if (!a.prompt_ids.empty()) {
    prompt = parse_ids(a.prompt_ids);
  } else if (a.chat) {
    prompt = tok->encode(render_chat(a, *tok), false);
  } else {
    prompt = tok->encode(a.prompt, true);
  }
  if (prompt.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "the prompt encodes to zero tokens");

  EngineOptions eo;
  eo.model_path = a.model;
  eo.device = a.device;
  eo.threads = a.threads;
  eo.context_tokens = a.ctx_size;
  eo.gpu_memory_fraction = a.gpu_memory_fraction;
  eo.enforce_eager = a.enforce_eager;
  eo.kv_cache_dtype = a.kv_cache_dtype;
  eo.max_step_tokens = a.chunk_size;
  eo.max_window_sequences = 1;  // one sequence: one windowed-head ring (cuda), not the backend's default 16
  eo.policy = a.policy;
  ProgressBar bar("loading weights", !a.quiet);
  eo.load_progress = [&](size_t done, size_t total) { bar.update(done, total); };
  auto engine = Engine::load(eo);
  bar.finish();
  const ModelConfig& c = engine->config();
  spdlog::info("model {} ({} layers, hidden {}), device {}, policy {}", c.model_type, c.n_layers, c.hidden_size,
               engine->options().device, engine->plan().name);

  // `run` drives the same scheduler as `serve` (E11 item 1): one request, its tokens streamed as they come.
  GenerationRequest g;
  g.prompt = prompt;
  g.max_tokens = a.max_tokens;
  g.sampling = a.sampling;
  if (!a.ignore_eos) {
    g.stop_ids = c.eos_token_ids;
    if (tok) g.stop_ids.insert(g.stop_ids.end(), tok->stop_ids().begin(), tok->stop_ids().end());
  }
  if (tok && tok->vocab_size() > c.vocab_size) {
    spdlog::warn("tokenizer has {} ids but the model only {}; ids beyond the model's vocabulary are rejected",
                 tok->vocab_size(), c.vocab_size);
  }
  engine->validate_tokens(prompt);  // a bad id is the user's error, named here rather than as an engine failure
  const KvCache& kv = engine->kv_cache();
  SchedulerOptions so;
  so.max_num_seqs = 1;
  so.async_decode = a.async_decode;
  so.max_waiting = 1;
  so.max_model_len = int32_t(std::min<int64_t>(INT32_MAX, int64_t(kv.n_pages()) * kv.page_size()));
  Scheduler scheduler(*engine, so);
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  std::shared_ptr<RequestHandle> handle;
  try {
    handle = scheduler.submit(g);
  } catch (const RequestRefused& e) {
    if (e.kind != RefusalKind::CONTEXT_LENGTH_EXCEEDED) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, e.what());
    throw Error(ErrorKind::ERROR_KIND_OUT_OF_MEMORY,
                "prompt (" + std::to_string(prompt.size()) + " tokens) + max_tokens (" + std::to_string(a.max_tokens) +
                    ") exceeds the KV cache (" + std::to_string(so.max_model_len) +
                    " tokens); raise --ctx-size or lower --max-tokens");
  }

  // Text streams to stdout as tokens arrive (pieces never split a UTF-8 character); ids only without a tokenizer.
  std::unique_ptr<IncrementalDetokenizer> detok;
  if (tok) detok = std::make_unique<IncrementalDetokenizer>(*tok, true);
  GenerateResult r;
  r.prompt_tokens = int32_t(prompt.size());
  auto t_first = t0, t_last = t0;
  for (bool done = false; !done;) {
    for (const TokenEvent& e : handle->wait(std::chrono::milliseconds(200))) {
      if (e.token >= 0) {
        (r.tokens.empty() ? t_first : t_last) = clock::now();
        r.tokens.push_back(e.token);
        if (detok) {
          std::fputs(detok->push(e.token).c_str(), stdout);
          std::fflush(stdout);
        }
      }
      if (!e.finish_reason.empty()) {
        r.finish_reason = e.finish_reason;
        done = true;
      }
    }
  }
  if (r.finish_reason == "error") {
    throw Error(ErrorKind::ERROR_KIND_IO, "the engine failed while generating (the reason is logged above)");
  }
  r.prefill_seconds = std::chrono::duration<double>(t_first - t0).count();
  r.decode_seconds = r.tokens.size() > 1 ? std::chrono::duration<double>(t_last - t_first).count() : 0.0;
  if (detok) std::printf("%s\n", detok->finish().c_str());
  if (!detok || a.print_ids) {
    std::string ids;
    for (size_t i = 0; i < r.tokens.size(); ++i) ids += (i ? "," : "") + std::to_string(r.tokens[i]);
    std::printf("%s\n", ids.c_str());
  }
  const double prefill_tps = r.prefill_seconds > 0 ? r.prompt_tokens / r.prefill_seconds : 0;
  // Prefill time = time to the first token (it includes sampling it); decode = the tokens after it.
  const double decode_tps = r.tokens.size() > 1 && r.decode_seconds > 0 ? double(r.tokens.size() - 1) / r.decode_seconds : 0;
  std::fprintf(stderr,
               "prompt %d tokens, prefill %.1f tokens/s (%.3f s); generated %zu tokens, decode %.1f tokens/s; "
               "finish: %s\nmemory: weights %s, %s, peak RSS %s\n",
               r.prompt_tokens, prefill_tps, r.prefill_seconds, r.tokens.size(), decode_tps, r.finish_reason.c_str(),
               format_bytes(double(engine->weight_bytes())).c_str(),
               describe_kv_memory(*engine).c_str(), format_bytes(double(peak_rss_bytes())).c_str());
  return 0;
}

}  // namespace

CliHandler cli_add_run(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "Generate tokens from a prompt with a model");
  cmd->add_option("MODEL", a->model, "Model directory (config.json + *.safetensors)")->required();
  cmd->add_option("--prompt,-p", a->prompt, "Prompt text (tokenized with the model's tokenizer); - reads standard input");
  cmd->add_option("--prompt-file", a->prompt_file, "Read the prompt text from this file (long prompts)");
  cmd->add_option("--prompt-ids", a->prompt_ids, "Prompt as comma-separated token ids, e.g. 1,2,3");
  cmd->add_flag("--chat", a->chat, "Treat --prompt as a user message and apply the chat template");
  cmd->add_option("--system", a->system, "System message for --chat; - reads standard input");
  cmd->add_option("--system-file", a->system_file, "Read the system message for --chat from this file");
  cmd->add_option("--chat-template", a->chat_template_file, "Jinja chat template file overriding the model's");
  cmd->add_option("--tokenizer", a->tokenizer,
                  "Tokenizer directory or tokenizer.json/tokenizer.model (default: the model directory)");
  cmd->add_flag("--print-ids", a->print_ids, "Also print the generated token ids");
  cmd->add_option("--max-tokens,-n", a->max_tokens, "Maximum tokens to generate (1 to 2^30; the context bounds it too)")
      ->capture_default_str()->check(CLI::Range(1, 1 << 30));
  cmd->add_option("--temperature", a->sampling.temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", a->sampling.top_k, "Keep the k most likely tokens; 0 = off")->capture_default_str();
  cmd->add_option("--top-p", a->sampling.top_p, "Nucleus sampling probability mass")->capture_default_str();
  cmd->add_option("--min-p", a->sampling.min_p, "Drop tokens below min_p x the top probability")->capture_default_str();
  cmd->add_option("--repetition-penalty", a->sampling.repetition_penalty,
                  "Penalise tokens already in prompt or output (HF style, 1 = off)")->capture_default_str();
  cmd->add_option("--frequency-penalty", a->sampling.frequency_penalty,
                  "Subtract penalty x count of each generated token (OpenAI style)")->capture_default_str();
  cmd->add_option("--presence-penalty", a->sampling.presence_penalty,
                  "Subtract penalty from every generated token (OpenAI style)")->capture_default_str();
  cmd->add_option("--seed", a->sampling.seed, "Random seed; same seed, same output")->capture_default_str()->check(cli_seed_validator());
  cli_add_policy_option(cmd, a->policy);
  cmd->add_option("--device", a->device, "Backend: auto (cuda when a GPU is usable, else cpu) or one of: " +
                                             engine_devices())->capture_default_str();
  cli_add_kv_cache_dtype_option(cmd, a->kv_cache_dtype);
  cmd->add_flag("--enforce-eager", a->enforce_eager,
               "Launch decode steps kernel by kernel instead of replaying them as CUDA graphs (cuda; like vLLM's --enforce-eager)");
  cmd->add_flag("--async-decode", a->async_decode,
               "Pipelined greedy decoding: launch each decode step before the host has read the previous one's tokens, so the GPU does not wait for the host between steps (like vLLM's --async-scheduling; greedy requests without logprobs, plans without HiP; same tokens)");
  cmd->add_option("--gpu-memory-fraction", a->gpu_memory_fraction,
                  "Share of GPU memory weights, activations and KV cache may use (cuda)")
      ->capture_default_str()
      ->check(CLI::Range(0.05f, 1.0f));
  cmd->add_option("--threads,-t", a->threads, "CPU threads; 0 = all cores")->capture_default_str()->check(CLI::Range(0, 4096));
  cmd->add_option("--ctx-size,-c", a->ctx_size, "KV cache capacity in tokens; 0 = as much as --gpu-memory-fraction allows (cuda)")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--chunk-size", a->chunk_size,
                  "Prefill chunk: tokens per forward step (1-65536); 0 = auto: 4096 on cuda (a long prompt's "
                  "prefill kernels fill the GPU), 256 on cpu")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 16));
  cmd->add_flag("--ignore-eos", a->ignore_eos, "Keep generating after an end-of-sequence token");
  cmd->add_flag("--quiet,-q", a->quiet, "No progress bar");
  return [cmd, a]() -> int { return cmd->parsed() ? run(*a) : -1; };
}

}  // namespace lcllm
