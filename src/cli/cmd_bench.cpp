// `lcllm bench MODEL`: end-to-end prefill and decode speed on one sequence, each as a fraction of its floor
// (runtime/roofline.h) with the card's copy bandwidth and GEMM rate measured in the same run; memory used.
// MODEL may be a bare config.json (configs/models/): random bf16 weights in the model's real shapes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <random>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "cli/progress_bar.h"
#include "eval/result_io.h"
#include "lcllm/error.h"
#include "plot/line_plot.h"
#include "runtime/engine.h"
#include "runtime/roofline.h"
#ifdef LCLLM_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_roofline.h"
#endif

namespace lcllm {
namespace {

struct BenchArgs {
  std::string model;
  bool random_weights = false;
  std::string prefill = "4k";
  std::string decode = "4k";
  int32_t decode_steps = 32;
  int32_t chunk_size = 4096;
  std::string policy = "full";
  std::string device = "auto";
  int32_t threads = 0;
  float gpu_memory_fraction = 0.9f;
  bool enforce_eager = false;
  bool async_decode = false;
  std::string kv_cache_dtype = "auto";
  uint64_t seed = 0;
  std::string json_path;
  std::string plot_prefix;
  bool quiet = false;
};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string today() {
  std::time_t t = std::time(nullptr);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

int bench(const BenchArgs& a) {
  // The same length syntax as `lcllm eval --lengths` (4k, 1.5k, 1m), parsed by the same code.
  auto token_counts = [](const std::string& text, const std::string& flag) {
    std::vector<int64_t> out;
    for (const std::string& item : eval_split_list(text)) out.push_back(eval_parse_length(item, flag));
    return out;
  };
  const std::vector<int64_t> prefill_lengths = token_counts(a.prefill, "--prefill");
  const std::vector<int64_t> decode_lengths = token_counts(a.decode, "--decode");
  if (a.decode_steps < 1) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--decode-steps must be >= 1");
  int64_t ctx = 64;
  for (int64_t n : prefill_lengths) ctx = std::max(ctx, n);
  for (int64_t n : decode_lengths) ctx = std::max(ctx, n + a.decode_steps);
  if (ctx > INT32_MAX / 2) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "lengths above 1G tokens");

  nlohmann::ordered_json out;
  out["date"] = today();
  out["command"] = cli_command_line();
  out["model"] = a.model;
  const std::string device = engine_resolve_device(a.device);
  double copy_gbps = 0, gemm_tflops = 0;
#ifdef LCLLM_HAVE_CUDA
  if (device == "cuda") {
    // Before the engine takes its share of memory: the copy test needs 4 GiB.
    copy_gbps = cuda_copy_bandwidth_gbps();
    gemm_tflops = cuda_bf16_gemm_tflops();
    out["card"] = cuda_device_info().name;
    out["cuda_graphs"] = !a.enforce_eager && cuda_graphs_env_enabled();
  }
#endif
  out["async_decode"] = a.async_decode;
  if (!out.contains("card")) out["card"] = "cpu";
  out["copy_gbps"] = copy_gbps;
  out["gemm_tflops"] = gemm_tflops;

  EngineOptions eo;
  eo.model_path = a.model;
  eo.random_weights = a.random_weights || (a.model.size() > 5 && a.model.ends_with(".json"));
  eo.weight_seed = a.seed;
  eo.device = a.device;
  eo.threads = a.threads;
  eo.context_tokens = int32_t(ctx);
  eo.gpu_memory_fraction = a.gpu_memory_fraction;
  eo.enforce_eager = a.enforce_eager;
  eo.kv_cache_dtype = a.kv_cache_dtype;
  eo.max_step_tokens = a.chunk_size;
  const std::vector<std::string> policies = eval_split_list(a.policy);
  if (policies.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--policy needs at least one policy");
  eo.policy = policies[0];
  // One policy: windowed streaming heads keep only their window (the memory the plan saves is what is reserved and
  // measured). A list runs every policy on this one engine, which then keeps every head's keys.
  eo.kv_window = policies.size() == 1;
  eo.max_window_sequences = 1;  // one sequence at a time
  ProgressBar bar("loading weights", !a.quiet);
  eo.load_progress = [&](size_t done, size_t total) { bar.update(done, total); };
  auto engine = Engine::load(eo);
  bar.finish();
  const ModelConfig& c = engine->config();
  const double weight_bytes = double(engine->weight_bytes_on_device());
  out["device"] = engine->options().device;
  out["policy"] = a.policy;
  out["random_weights"] = eo.random_weights;
  out["chunk_size"] = a.chunk_size;
  out["weight_bytes"] = weight_bytes;
  out["kv_bytes_reserved"] = engine->kv_bytes_reserved();
  out["kv_cache_dtype"] = kv_dtype_name(engine->kv_dtype());
  out["kv_bytes_per_token"] = kv_bytes_per_token(c, engine->kv_storage_dtype());

  std::mt19937 rng(uint32_t(a.seed));
  std::uniform_int_distribution<int32_t> token(0, c.vocab_size - 1);
  auto random_tokens = [&](int64_t n) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& t : ids) t = token(rng);
    return ids;
  };
  // Every policy's plan: the first is the engine's own, the others run on the same engine (weights loaded once);
  // plans the backend cannot run stop here.
  std::vector<AttentionPlan> plans;  // [policies]
  for (const std::string& policy : policies) plans.push_back(policy == policies[0] ? engine->plan() : engine->plan_for(policy));
  // A prompt prefilled under `plan` in --chunk-size steps (as `run` and `serve` feed one), returning once the last
  // token's logits are on the host: the time to first token.
  auto prefill_seconds = [&](std::span<const int32_t> ids, const AttentionPlan& plan) {
    const int32_t seq = engine->create_sequence();
    auto t0 = Clock::now();
    for (size_t begin = 0; begin < ids.size(); begin += size_t(a.chunk_size)) {
      SequenceChunk chunk;
      chunk.seq = seq;
      chunk.tokens = ids.subspan(begin, std::min(ids.size() - begin, size_t(a.chunk_size)));
      chunk.phase = AttentionPhase::ATTENTION_PHASE_PREFILL;
      chunk.want_logits = begin + chunk.tokens.size() == ids.size();
      engine->step(std::span<const SequenceChunk>(&chunk, 1), &plan);
    }
    const double s = seconds_since(t0);
    engine->free_sequence(seq);
    return s;
  };
  for (const AttentionPlan& plan : plans) {  // warm-up: kernels loaded, cuBLAS heuristics cached, allocator grown
    prefill_seconds(random_tokens(std::min<int64_t>(ctx, 256)), plan);
  }

  std::printf("%s on %s (%s): weights %s, KV reserved %s (%s) for %lld tokens\n", a.model.c_str(),
              out["card"].get<std::string>().c_str(), engine->options().device.c_str(),
              format_bytes(weight_bytes).c_str(), format_bytes(double(engine->kv_bytes_reserved())).c_str(),
              kv_dtype_name(engine->kv_dtype()), static_cast<long long>(ctx));
  if (copy_gbps > 0) std::printf("measured: copy %.0f GB/s, bf16 GEMM %.0f TFLOP/s\n", copy_gbps, gemm_tflops);

  // Prefill: the same random prompt of each length under every policy. The floor is the dense model's FLOPs at
  // the measured GEMM rate (a sparse plan's attention does less, so it can pass 100%).
  nlohmann::ordered_json prefill = nlohmann::ordered_json::array();
  std::printf("%-12s %10s %14s %10s %10s %9s %9s\n", "policy", "prefill", "tokens/s", "TTFT s", "floor s", "of floor",
              "vs full");
  std::vector<std::vector<int32_t>> prompts;  // [prefill lengths]
  for (int64_t n : prefill_lengths) prompts.push_back(random_tokens(n));
  std::map<int64_t, double> full_ttft;  // prompt tokens -> TTFT of the FULL plan, when it is one of the policies
  for (size_t pi = 0; pi < policies.size(); ++pi) {
    for (size_t li = 0; li < prefill_lengths.size(); ++li) {
      const int64_t n = prefill_lengths[li];
      const double s = prefill_seconds(prompts[li], plans[pi]);
      const double flops = prefill_flops(c, 0, n);
      const double floor_s = gemm_tflops > 0 ? flops / (gemm_tflops * 1e12) : 0;
      if (attention_plan_is_full(plans[pi])) full_ttft[n] = s;
      const double speedup = full_ttft.count(n) ? full_ttft[n] / s : 0;
      std::printf("%-12s %10lld %14.0f %10.3f %10.3f %8.0f%% %8.2fx\n", policies[pi].c_str(), static_cast<long long>(n),
                  double(n) / s, s, floor_s, floor_s > 0 ? 100 * floor_s / s : 0.0, speedup);
      prefill.push_back({{"policy", policies[pi]}, {"tokens", n}, {"seconds", s}, {"tokens_per_s", double(n) / s},
                         {"ttft_s", s}, {"flops", flops}, {"floor_s", floor_s},
                         {"fraction_of_floor", floor_s > 0 ? floor_s / s : 0}, {"speedup_vs_full", speedup}});
    }
  }
  out["prefill"] = prefill;

  nlohmann::ordered_json decode = nlohmann::ordered_json::array();
  // GPU ms: the step's graph on the device (events around each replay); busy = GPU ms / ms/token. The rest of a
  // step is the host's: recording the step's launches, then waiting for its outputs.
  std::printf("%-12s %10s %12s %12s %10s %9s %9s %9s %6s\n", "policy", "decode at", "ms/token", "KV read/tok",
              "floor ms", "of floor", "vs full", "GPU ms", "busy");
  std::map<int64_t, double> full_ms;  // context -> ms/token of the FULL plan, when it is one of the policies
  for (size_t pi = 0; pi < policies.size(); ++pi) {
    const std::string& policy = policies[pi];
    const AttentionPlan& plan = plans[pi];
    for (int64_t n : decode_lengths) {
      const int32_t seq = engine->create_sequence();
      engine->extend_uncomputed(seq, int32_t(n - 1));
      int32_t tok = token(rng);
      // Greedy, as `run` and `serve` decode greedy requests: the backend's argmax.
      auto decode_chunk = [&](int32_t token_from_previous) {
        SequenceChunk chunk;
        chunk.seq = seq;
        chunk.tokens = std::span<const int32_t>(&tok, 1);
        chunk.phase = AttentionPhase::ATTENTION_PHASE_DECODE;
        chunk.argmax_only = true;
        chunk.token_from_previous = token_from_previous;
        return chunk;
      };
      auto check_token = [](int32_t id) {
        if (id < 0) throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, "the decode logits hold a NaN: check the weights");
        return id;
      };
      auto decode_one = [&] {
        const SequenceChunk chunk = decode_chunk(-1);
        tok = check_token(engine->step_outputs(std::span<const SequenceChunk>(&chunk, 1), &plan).argmax.at(0));
      };
      // --async-decode: step i + 1 is launched on step i's argmax before step i is read (Engine::step_launch), as the
      // scheduler does; the last one launched is read after the clock stops.
      std::optional<LaunchedStep> in_flight;
      auto decode_chained = [&] {
        const SequenceChunk chunk = decode_chunk(in_flight ? 0 : -1);
        LaunchedStep next = engine->step_launch(std::span<const SequenceChunk>(&chunk, 1), &plan);
        if (in_flight) check_token(engine->step_wait(*in_flight).at(0));
        in_flight = std::move(next);
      };
      const SequenceChunk probe = decode_chunk(-1);
      const bool chained = a.async_decode && engine->can_launch(std::span<const SequenceChunk>(&probe, 1), &plan);
      decode_one();  // warm-up: a new graph for this plan and length
      if (chained) {  // and the graphs of chained steps (each half of the staging ring has its own)
        for (int32_t i = 0; i < 3; ++i) decode_chained();
      }
      const Backend::StepTiming before = engine->step_timing();
      auto t0 = Clock::now();
      for (int32_t i = 0; i < a.decode_steps; ++i) chained ? decode_chained() : decode_one();
      const double ms = seconds_since(t0) * 1e3 / a.decode_steps;
      if (in_flight) engine->step_wait(*in_flight);
      const Backend::StepTiming after = engine->step_timing();
      const int64_t timed = after.steps - before.steps;  // replayed steps (0 on the CPU or with graphs off)
      const double device_ms = timed > 0 ? (after.device_ms - before.device_ms) / double(timed) : 0;
      const double record_ms = timed > 0 ? (after.host_ms - before.host_ms) / double(timed) : 0;
      engine->free_sequence(seq);
      const int64_t mid_context = n + 1 + a.decode_steps / 2;
      const double kv_read = decode_kv_bytes_read(plan, c, mid_context, engine->kv_storage_dtype());
      const double bytes = weight_bytes + kv_read;
      const double floor_ms = copy_gbps > 0 ? bytes / (copy_gbps * 1e9) * 1e3 : 0;
      if (attention_plan_is_full(plan)) full_ms[n] = ms;
      const double speedup = full_ms.count(n) ? full_ms[n] / ms : 0;
      std::printf("%-12s %10lld %12.3f %12s %10.3f %8.0f%% %8.2fx", policy.c_str(), static_cast<long long>(n), ms,
                  format_bytes(kv_read).c_str(), floor_ms, floor_ms > 0 ? 100 * floor_ms / ms : 0.0, speedup);
      if (timed > 0) std::printf(" %9.3f %5.1f%%", device_ms, 100 * device_ms / ms);
      std::printf("\n");
      decode.push_back({{"policy", policy}, {"context", n}, {"ms_per_token", ms}, {"tokens_per_s", 1e3 / ms},
                        {"kv_bytes_read_per_token", kv_read}, {"bytes_per_token", bytes}, {"floor_ms", floor_ms},
                        {"fraction_of_floor", floor_ms > 0 ? floor_ms / ms : 0}, {"speedup_vs_full", speedup},
                        {"graph_steps_timed", timed}, {"device_ms_per_token", device_ms},
                        {"host_record_ms_per_token", record_ms}});
    }
  }
  out["decode"] = decode;
#ifdef LCLLM_HAVE_CUDA
  if (device == "cuda") out["device_memory_used_bytes"] = cuda_device_info().used_bytes;
#endif
  out["peak_rss_bytes"] = peak_rss_bytes();
  std::printf("memory: weights %s, KV %s, peak host RSS %s\n", format_bytes(weight_bytes).c_str(),
              format_bytes(double(engine->kv_bytes_reserved())).c_str(), format_bytes(double(peak_rss_bytes())).c_str());

  if (!a.json_path.empty()) {
    std::ofstream f(a.json_path);
    if (!f) throw Error(ErrorKind::ERROR_KIND_IO, "cannot write --json file '" + a.json_path + "'");
    f << out.dump(2) << "\n";
  }
  if (!a.plot_prefix.empty() && decode_lengths.size() > 1) {
    plot::LinePlot p;
    p.title = "decode ms/token: " + a.model;
    p.x_label = "context tokens";
    p.y_label = "ms per token";
    p.log_x = true;
    for (const std::string& policy : policies) {  // one line per policy, and each policy's floor
      plot::Series measured{"lcllm " + engine->options().device + " " + policy, {}, {}},
          floor{"floor " + policy, {}, {}};
      for (const auto& d : decode) {
        if (d["policy"].get<std::string>() != policy) continue;
        measured.x.push_back(d["context"].get<double>());
        measured.y.push_back(d["ms_per_token"].get<double>());
        floor.x.push_back(d["context"].get<double>());
        floor.y.push_back(d["floor_ms"].get<double>());
      }
      p.series.push_back(measured);
      if (copy_gbps > 0) p.series.push_back(floor);
    }
    plot::write_line_plot_png(p, a.plot_prefix + "_decode.png");
  }
  return 0;
}

}  // namespace

CliHandler cli_add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "End-to-end speed on one sequence: prefill tokens/s and time to first token, decode ms/token, each "
               "against its floor measured on the same card (copy bandwidth, bf16 GEMM rate); memory used");
  cmd->add_option("model", a->model, "Model directory, or a config.json (then the weights are random bf16)")
      ->required();
  cmd->add_flag("--random-weights", a->random_weights,
                "Random bf16 weights in the config's shapes even when the directory has safetensors");
  cmd->add_option("--prefill", a->prefill, "Prompt lengths to prefill, comma-separated (k = 1024, m = 1048576)")
      ->capture_default_str();
  cmd->add_option("--decode", a->decode, "Context lengths to decode at, comma-separated (the context's K/V is "
                                         "left uncomputed: decode cost does not depend on the values)")
      ->capture_default_str();
  cmd->add_option("--decode-steps", a->decode_steps, "Tokens generated (and timed) per decode length")
      ->capture_default_str();
  cmd->add_option("--chunk-size", a->chunk_size, "Prefill tokens per forward step (1-65536)")->capture_default_str()->check(CLI::Range(1, 1 << 16));
  cli_add_policy_option(cmd, a->policy, true);  // each decodes every --decode length on the same loaded weights
  cmd->add_option("--device", a->device, "auto, cpu or cuda")->capture_default_str();
  cmd->add_option("--threads,-t", a->threads, "CPU threads, 0 = all cores")->capture_default_str()->check(CLI::Range(0, 4096));
  cli_add_kv_cache_dtype_option(cmd, a->kv_cache_dtype);
  cmd->add_flag("--enforce-eager", a->enforce_eager,
               "Launch decode steps kernel by kernel instead of replaying them as CUDA graphs (cuda; like vLLM's --enforce-eager)");
  cmd->add_flag("--async-decode", a->async_decode,
               "Pipelined greedy decoding: launch each decode step before the host has read the previous one's tokens, so the GPU does not wait for the host between steps (like vLLM's --async-scheduling; greedy requests without logprobs, plans without HiP; as run and serve with --async-decode)");
  cmd->add_option("--gpu-memory-fraction", a->gpu_memory_fraction,
                  "Share of GPU memory weights, activations and KV may use")
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "Seed of the random weights and prompt tokens")->capture_default_str()->check(cli_seed_validator());
  cmd->add_option("--json", a->json_path, "Write the results (with card, date, command) as JSON to this file");
  cmd->add_option("--plot", a->plot_prefix, "Write PREFIX_decode.png (ms/token and floor against context length)");
  cmd->add_flag("--quiet,-q", a->quiet, "No progress bar");
  return [cmd, a]() -> int {
    if (!cmd->parsed()) return -1;
    return bench(*a);
  };
}

}  // namespace lcllm
