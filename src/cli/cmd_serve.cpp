// `lcllm serve MODEL`: the OpenAI-compatible HTTP server (src/server/). Every flag can also come from an
// environment variable (LCLLM_<FLAG>, e.g. LCLLM_PORT=9000); a flag on the command line wins.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "io/text_file.h"
#include "cli/progress_bar.h"
#include "lcllm/error.h"
#include "models/model_family.h"
#include "runtime/engine.h"
#include "server/http_server.h"
#include "runtime/scheduler.h"

namespace lcllm {

namespace {

// Upper bounds of the flags that size thread pools and per-step buffers: beyond them a typo (999999999) would abort
// on thread creation or allocation instead of getting a message (E12).
constexpr int32_t kMaxNumSeqs = 4096, kMaxWaiting = 65536, kMaxHttpThreads = 1024, kMaxChunkTokens = 1 << 16;

struct ServeArgs {
  std::string model;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string policy = "full";
  std::string api_key;
  bool api_key_given = false;  // --api-key (or LCLLM_API_KEY) was set, possibly to ""
  std::string api_key_file;
  int32_t max_num_seqs = 16;
  int32_t max_model_len = 0;
  int32_t max_waiting = 64;
  std::string served_model_name;
  std::string device = "auto";
  int32_t threads = 0;
  int32_t ctx_size = 0;
  float gpu_memory_fraction = 0.9f;
  bool enforce_eager = false;
  bool async_decode = false;
  std::string kv_cache_dtype = "auto";
  int32_t chunk_size = 0;  // 0: engine_auto_step_tokens (4096 on cuda, 256 on cpu)
  int32_t default_max_tokens = 256;
  size_t max_body_bytes = 8u << 20;
  int http_threads = 0;
  int read_timeout = 30;
  int64_t max_connections = 1024;
  int64_t max_connections_per_client = 256;
  int shutdown_timeout = 30;
  std::string chat_template_file;
  bool no_prefix_caching = false;
};

std::string read_text(const std::string& path, const char* what) {
  return read_text_file(path, what, kMaxConfigFileBytes);
}

std::vector<std::string> api_keys(const ServeArgs& a) {
  // An empty key would silently turn authentication off (E12): refuse it rather than guess what was meant.
  if (a.api_key_given && a.api_key.empty()) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "--api-key (or LCLLM_API_KEY) is empty: give a key, or leave it out to serve without authentication");
  }
  std::vector<std::string> keys;
  if (!a.api_key.empty()) keys.push_back(a.api_key);
  if (!a.api_key_file.empty()) {
    std::istringstream lines(read_text(a.api_key_file, "API key file"));
    std::string line;
    while (std::getline(lines, line)) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty() && line[0] != '#') keys.push_back(line);
    }
    if (keys.empty()) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--api-key-file '" + a.api_key_file + "' holds no key");
    }
  }
  return keys;
}

int serve(const ServeArgs& a) {
  // SIGTERM/SIGINT are taken by a thread with sigwait: blocked here, before any thread starts, so all inherit it.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not kill the server

  if (a.max_num_seqs < 1) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--max-num-seqs must be >= 1");
  if (a.max_waiting < 0) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--max-waiting must be >= 0");
  if (a.max_model_len < 0) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--max-model-len must be >= 0");
  HttpServerOptions ho;
  ho.host = a.host;
  ho.port = a.port;
  ho.api_keys = api_keys(a);
  ho.max_body_bytes = a.max_body_bytes;
  ho.read_timeout_s = a.read_timeout;
  ho.max_connections = size_t(a.max_connections);
  ho.max_connections_per_client = size_t(a.max_connections_per_client);
  // Auto: one worker per running or waiting request, plus room for /health and /metrics; capped so that the flags'
  // largest values cannot ask the system for more threads than it gives.
  ho.threads = a.http_threads > 0 ? a.http_threads : std::min(a.max_num_seqs + a.max_waiting + 16, kMaxHttpThreads);
  ServerMetrics metrics;
  HttpServer http(ho, metrics);
  http.start();  // /health answers 503 while the model loads
  std::fprintf(stderr, "lcllm serve: listening on http://%s:%d (loading %s)\n", a.host.c_str(), http.port(),
               a.model.c_str());

  auto tokenizer = Tokenizer::load(a.model);
  std::unique_ptr<ChatTemplate> chat_template;
  const std::string tpl = a.chat_template_file.empty() ? tokenizer->chat_template()
                                                        : read_text(a.chat_template_file, "chat template file");
  if (!tpl.empty()) chat_template = std::make_unique<ChatTemplate>(tpl);
  else spdlog::warn("the model has no chat template: /v1/chat/completions will answer 400");

  EngineOptions eo;
  eo.model_path = a.model;
  eo.device = a.device;
  eo.threads = a.threads;
  eo.gpu_memory_fraction = a.gpu_memory_fraction;
  eo.enforce_eager = a.enforce_eager;
  eo.kv_cache_dtype = a.kv_cache_dtype;
  eo.max_step_tokens = a.chunk_size;
  eo.policy = a.policy;
  eo.max_window_sequences = a.max_num_seqs;  // windowed-head rings (cuda): one per running sequence
  eo.prefix_caching = !a.no_prefix_caching;
  const ModelConfig probe = model_config_load(a.model);
  const int64_t model_len = probe.max_position_embeddings > 0 ? probe.max_position_embeddings : 4096;
  const int32_t max_model_len = a.max_model_len > 0 ? a.max_model_len : int32_t(std::min<int64_t>(model_len, 1 << 30));
  // --ctx-size 0: on the GPU all the memory --gpu-memory-fraction leaves; on the CPU room for up to four
  // full-length sequences (the CPU has no memory budget to size it from).
  const bool gpu = engine_resolve_device(a.device) == "cuda";
  eo.context_tokens = a.ctx_size > 0 ? a.ctx_size
                      : gpu          ? 0
                                     : int32_t(std::min<int64_t>(int64_t(max_model_len) * std::min(a.max_num_seqs, 4),
                                                                 1 << 30));
  ProgressBar bar("loading weights", true);
  eo.load_progress = [&](size_t done, size_t total) { bar.update(done, total); };
  auto engine = Engine::load(eo);
  bar.finish();

  ServeContext ctx;
  ctx.tokenizer = tokenizer.get();
  ctx.chat_template = chat_template.get();
  ctx.model_name = a.served_model_name.empty() ? a.model : a.served_model_name;
  ctx.limits.max_model_len = max_model_len;
  ctx.limits.vocab_size = std::min(engine->config().vocab_size, tokenizer->vocab_size());
  ctx.limits.policies = attention_plan_presets();
  ctx.default_max_tokens = a.default_max_tokens;
  ctx.eos_ids = engine->config().eos_token_ids;
  ctx.eos_ids.insert(ctx.eos_ids.end(), tokenizer->stop_ids().begin(), tokenizer->stop_ids().end());
  SchedulerOptions so;
  so.max_num_seqs = a.max_num_seqs;
  so.async_decode = a.async_decode;
  so.max_waiting = a.max_waiting;
  so.max_model_len = max_model_len;
  Scheduler scheduler(*engine, so, &metrics);
  ctx.scheduler = &scheduler;
  http.set_ready(&ctx, max_model_len, std::time(nullptr));
  std::fprintf(stderr,
               "lcllm serve: ready: model '%s' on %s, policy %s, max-model-len %d, KV %d tokens (%s%s), "
               "max-num-seqs %d\n",
               ctx.model_name.c_str(), engine->options().device.c_str(), engine->plan().name.c_str(), max_model_len,
               engine->kv_cache().n_pages() * engine->kv_cache().page_size(), kv_dtype_name(engine->kv_dtype()),
               engine->kv_dtype() != engine->kv_storage_dtype() ? " emulated" : "", so.max_num_seqs);

  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "lcllm serve: %s: finishing running requests (up to %d s), then stopping\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT", a.shutdown_timeout);
  http.set_draining();
  scheduler.drain(std::chrono::seconds(a.shutdown_timeout));
  // Let the handlers write the last events of their streams before the listener closes.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  http.stop();
  std::fprintf(stderr, "lcllm serve: stopped\n");
  return 0;
}

}  // namespace

CliHandler cli_add_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API");
  cmd->add_option("MODEL", a->model, "Model directory (config.json + *.safetensors + tokenizer)")
      ->envname("LCLLM_MODEL")->required();
  cmd->add_option("--host", a->host, "Address to listen on (0.0.0.0: every interface)")
      ->envname("LCLLM_HOST")->capture_default_str();
  cmd->add_option("--port", a->port, "TCP port; 0 = any free port")
      ->envname("LCLLM_PORT")->capture_default_str()->check(CLI::Range(0, 65535));
  CLI::Option* policy = cli_add_policy_option(cmd, a->policy);
  policy->description("The default policy; requests may pick a preset with \"attention_policy\". " +
                      policy->get_description());
  policy->envname("LCLLM_POLICY");
  CLI::Option* api_key = cmd->add_option("--api-key", a->api_key, "Require 'Authorization: Bearer KEY' on /v1 routes (not empty)")
      ->envname("LCLLM_API_KEY");
  cmd->add_option("--api-key-file", a->api_key_file, "File of accepted API keys, one per line ('#' comments)")
      ->envname("LCLLM_API_KEY_FILE");
  cmd->add_option("--max-num-seqs", a->max_num_seqs, "Sequences in the running batch (continuous batching)")
      ->envname("LCLLM_MAX_NUM_SEQS")->capture_default_str()->check(CLI::Range(1, kMaxNumSeqs));
  cmd->add_option("--max-model-len", a->max_model_len,
                  "Longest prompt + max_tokens of one request; 0 = the model's max_position_embeddings")
      ->envname("LCLLM_MAX_MODEL_LEN")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-waiting", a->max_waiting, "Requests that may wait for admission; beyond: 429")
      ->envname("LCLLM_MAX_WAITING")->capture_default_str()->check(CLI::Range(0, kMaxWaiting));
  cmd->add_option("--served-model-name", a->served_model_name, "Model name in the API (default: MODEL as given)")
      ->envname("LCLLM_SERVED_MODEL_NAME");
  cmd->add_option("--default-max-tokens", a->default_max_tokens,
                  "max_tokens of requests that give none (capped by the context left)")
      ->envname("LCLLM_DEFAULT_MAX_TOKENS")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--device", a->device, "Backend: auto (cuda when a GPU is usable, else cpu) or one of: " +
                                             engine_devices())->envname("LCLLM_DEVICE")->capture_default_str();
  cmd->add_option("--threads,-t", a->threads, "CPU threads; 0 = all cores")
      ->envname("LCLLM_THREADS")->capture_default_str()->check(CLI::Range(0, 4096));
  cmd->add_option("--ctx-size,-c", a->ctx_size,
                  "KV cache capacity in tokens, all sequences together; 0 = what --gpu-memory-fraction leaves (cuda), "
                  "min(max-num-seqs, 4) x max-model-len (cpu)")
      ->envname("LCLLM_CTX_SIZE")->capture_default_str()->check(CLI::NonNegativeNumber);
  cli_add_kv_cache_dtype_option(cmd, a->kv_cache_dtype)->envname("LCLLM_KV_CACHE_DTYPE");
  cmd->add_flag("--enforce-eager", a->enforce_eager,
               "Launch decode steps kernel by kernel instead of replaying them as CUDA graphs (cuda; like vLLM's --enforce-eager)")->envname("LCLLM_ENFORCE_EAGER");
  cmd->add_flag("--async-decode", a->async_decode,
               "Pipelined greedy decoding: launch each decode step before the host has read the previous one's tokens, so the GPU does not wait for the host between steps (like vLLM's --async-scheduling; greedy requests without logprobs, plans without HiP; same tokens)")->envname("LCLLM_ASYNC_DECODE");
  cmd->add_option("--gpu-memory-fraction", a->gpu_memory_fraction,
                  "Share of GPU memory weights, activations and KV cache may use (cuda)")
      ->envname("LCLLM_GPU_MEMORY_FRACTION")->capture_default_str()->check(CLI::Range(0.05f, 1.0f));
  cmd->add_option("--chunk-size", a->chunk_size,
                  "Tokens per forward step (prefill chunks + decode tokens); 0 = auto: 4096 on cuda (like vLLM's "
                  "--max-num-batched-tokens / SGLang's --chunked-prefill-size: larger steps prefill faster, smaller "
                  "ones stall running streams less), 256 on cpu")
      ->envname("LCLLM_CHUNK_SIZE")->capture_default_str()->check(CLI::Range(0, kMaxChunkTokens));
  cmd->add_option("--chat-template", a->chat_template_file, "Jinja chat template file overriding the model's")
      ->envname("LCLLM_CHAT_TEMPLATE");
  cmd->add_flag("--no-prefix-caching", a->no_prefix_caching,
                "Do not keep prompt pages for reuse by later requests with the same prefix (on by default, like "
                "SGLang's radix cache; off anyway when streaming heads keep only windows)")
      ->envname("LCLLM_NO_PREFIX_CACHING");
  cmd->add_option("--max-body-bytes", a->max_body_bytes, "Largest request body; beyond: 413")
      ->envname("LCLLM_MAX_BODY_BYTES")->capture_default_str()->check(CLI::Range(size_t(1), size_t(1) << 30));
  cmd->add_option("--http-threads", a->http_threads,
                  "HTTP worker threads; 0 = max-num-seqs + max-waiting + 16, at most 1024")
      ->envname("LCLLM_HTTP_THREADS")->capture_default_str()->check(CLI::Range(0, kMaxHttpThreads));
  cmd->add_option("--read-timeout", a->read_timeout,
                  "Seconds a client has to send a whole request, head and body (then 408); also the longest wait "
                  "for a client to take a piece of a response")
      ->envname("LCLLM_READ_TIMEOUT")->capture_default_str()->check(CLI::Range(1, 3600));
  cmd->add_option("--max-connections", a->max_connections,
                  "Open HTTP connections, all clients together; at the limit a new connection closes the one that "
                  "has waited longest for its request to arrive")
      ->envname("LCLLM_MAX_CONNECTIONS")->capture_default_str()->check(CLI::Range(int64_t(8), int64_t(1) << 20));
  cmd->add_option("--max-connections-per-client", a->max_connections_per_client,
                  "Open HTTP connections from one client address (beyond: 429); 0 = no limit (behind a proxy)")
      ->envname("LCLLM_MAX_CONNECTIONS_PER_CLIENT")->capture_default_str()
      ->check(CLI::Range(int64_t(0), int64_t(1) << 20));
  cmd->add_option("--shutdown-timeout", a->shutdown_timeout,
                  "Seconds SIGTERM waits for running requests before cancelling them")
      ->envname("LCLLM_SHUTDOWN_TIMEOUT")->capture_default_str()->check(CLI::Range(0, 3600));
  return [cmd, a, api_key]() -> int {
    if (!cmd->parsed()) return -1;
    a->api_key_given = api_key->count() > 0;
    return serve(*a);
  };
}

}  // namespace lcllm
