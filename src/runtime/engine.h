// Engine: one loaded model on one backend with its paged KV cache. Plans each step (which tokens, positions,
// KV slots, pages), then runs forward_step; sequences are independent and may be forked.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "attention/attention_plan.h"
#include "attention/sequence_policy_state.h"
#include "backend/backend.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "kv/kv_cache.h"
#include "lcllm/sampling_params.h"
#include "runtime/forward.h"
#include "runtime/model_weights.h"

namespace lcllm {

struct EngineOptions {
  std::string model_path;        // directory with config.json + safetensors
  std::string device = "cpu";    // cpu, cuda (when built with the CUDA backend) or auto (cuda if a GPU is usable)
  int32_t threads = 0;           // CPU threads, 0 = all cores
  int32_t context_tokens = 4096; // KV capacity in tokens, all sequences together; 0 = all the device allows
  float gpu_memory_fraction = 0.9f;  // share of GPU memory weights + activations + KV may use
  bool enforce_eager = false;        // cuda: launch decode steps kernel by kernel instead of as CUDA graphs
  int32_t page_size = 16;        // tokens per KV page
  // Prefill chunk size: tokens per forward step. 0 = engine_auto_step_tokens(the backend): one step's prefill
  // attention and GEMMs then fill the GPU (a 256-row chunk of the 8B shape is 64 prefill CTAs on 132 SMs).
  int32_t max_step_tokens = 256;
  std::string policy = "full";   // attention plan: a preset name or a JSON plan file (attention_plan_resolve)
  std::optional<AttentionPlan> plan;  // when set, used instead of `policy` (validated against the model)
  // Store the KV of heads the plan only streams (STREAM in both phases) as a per-sequence window instead of in
  // the page pool (attention_kv_window.h). Off: same results, no memory saved (tests compare the two).
  bool kv_window = true;
  // Sequences that may hold windowed-head rings at once on backends that reserve them up front (cuda); 0: the
  // backend's default (16). `serve` sets it to --max-num-seqs.
  int32_t max_window_sequences = 0;
  // Prefix caching (KvCache): full prompt pages stay cached and later sequences with the same prefix start from
  // them. Off when windowed heads keep rings (their keys are not in pages). `serve` turns it on.
  bool prefix_caching = false;
  // KV cache precision (vLLM's --kv-cache-dtype): "auto" (the backend's own: fp32 on the CPU, bf16 on the GPU),
  // "bf16" or "fp8" (e4m3 with a power-of-two scale per head vector, kv/kv_quant.h, of Hadamard-rotated K and V,
  // kv/kv_rotation.h; the CPU emulates it exactly).
  std::string kv_cache_dtype = "auto";
  std::function<void(size_t, size_t)> load_progress;  // (tensors bound, total)
  // Benchmarks: bind seeded random bf16 weights in the config's shapes instead of reading safetensors, so
  // model_path may be a bare config.json (runtime/synthetic_weights.h).
  bool random_weights = false;
  uint64_t weight_seed = 0;
};

// The step size `max_step_tokens = 0` picks on `backend` ("cuda", "cpu"): 4096 on the GPU — SGLang's chunked prefill
// and vLLM's batched-token defaults are 2048-8192 on 80 GB cards; a 4096-row chunk of a 128k prompt keeps the
// prefill kernels at 5-8 waves of CTAs (docs/PERFORMANCE.md) — and 256 on the CPU, the step every CPU measurement
// and evaluation so far used (a larger one is not measured there).
int32_t engine_auto_step_tokens(const std::string& backend);

struct GenerateOptions {
  int32_t max_tokens = 16;
  SamplingParams sampling;
  std::vector<int32_t> stop_ids;  // generation ends after emitting one of these
  bool ignore_eos = false;
};

// One sequence's share of a batched step: `tokens` are appended to `seq` (chunked prefill: a slice of the prompt;
// decode: one sampled token).
struct SequenceChunk {
  int32_t seq = -1;
  std::span<const int32_t> tokens;  // [n_i] >= 1 token
  AttentionPhase phase = AttentionPhase::ATTENTION_PHASE_PREFILL;
  bool want_logits = true;          // return the logits of this chunk's last token
  const AttentionPlan* plan = nullptr;  // this sequence's plan (plan_for()); null: the step's (see Engine::step)
  // With want_logits: the caller takes only the argmax of the last token's logits (greedy decoding without
  // logprobs), computed on the backend (StepOutputs::argmax): no vocab-sized row reaches the host.
  bool argmax_only = false;
  // Engine::step_launch only: >= 0 when the chunk's one token is the argmax of row token_from_previous of the step
  // launched just before, not yet read by the host (`tokens` then holds any valid id, e.g. 0, as a placeholder).
  int32_t token_from_previous = -1;
};

// A step Engine::step_launch started and step_wait has not yet read.
struct LaunchedStep {
  Backend::HostCopy argmax;  // the step's argmax rows on their way to the host
  int32_t rows = 0;          // one per chunk, in chunk order (0 once waited for)
};

// What a step returns, in chunk order over the chunks with want_logits.
struct StepOutputs {
  std::vector<float> logits;    // [n_logits, vocab] of the chunks without argmax_only
  std::vector<int32_t> argmax;  // [n_argmax] of the chunks with argmax_only: the lowest id of the largest logit;
                                // -1 where the logits hold a NaN or nothing above -inf (Sampler throws on both)
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids (the stop token included when one ended it)
  std::string finish_reason;    // "stop" or "length"
  double prefill_seconds = 0;
  double decode_seconds = 0;    // from the first to the last generated token
  int32_t prompt_tokens = 0;
};

// The devices this build can run on, for messages and --help ("cpu" or "cpu, cuda").
std::string engine_devices();
// "auto" resolved: "cuda" when this build has the CUDA backend and a GPU is usable, else "cpu"; other names as given.
std::string engine_resolve_device(const std::string& device);

class Engine {
 public:
  // Throws lcllm::Error. The backend comes from options.device unless the caller passes one (tests run the same
  // engine over the CPU, CUDA and bf16-emulation backends); options.device then becomes backend->name().
  static std::unique_ptr<Engine> load(const EngineOptions& options, std::unique_ptr<Backend> backend = nullptr);

  const ModelConfig& config() const { return config_; }
  const EngineOptions& options() const { return options_; }
  const AttentionPlan& plan() const { return plan_; }
  size_t weight_bytes() const { return weights_.bytes; }
  // Bytes the bound weights occupy on the backend (bf16 matrices on the GPU, fp32 on the CPU).
  size_t weight_bytes_on_device() const { return weights_.device_bytes; }
  // The precision K/V values keep (--kv-cache-dtype) and what the pool stores (fp32 on the CPU, which emulates).
  KvDtype kv_dtype() const { return backend_->kv_dtype(); }
  KvDtype kv_storage_dtype() const { return backend_->kv_storage_dtype(); }
  // Host and device time of the decode steps the backend replayed so far (zero steps on the CPU).
  Backend::StepTiming step_timing() { return backend_->step_timing(); }
  // The page pool's K/V bytes (without windowed heads, which live in per-sequence rings).
  size_t kv_bytes_reserved() const;
  // The pool bytes a plan without windowed heads would reserve for the same capacity.
  size_t kv_bytes_full() const;
  // Bytes the rings of windowed heads hold now (live sequences).
  size_t kv_window_bytes() const { return backend_->kv_window_bytes(); }
  // Bytes one sequence's rings take (0 without windowed heads).
  size_t kv_window_bytes_per_sequence() const;
  const KvWindowLayout& kv_window() const { return kv_window_; }
  KvCache& kv_cache() { return *kv_; }
  const KvCache& kv_cache() const { return *kv_; }

  // Sequences: create/free/fork here (not on kv_cache()) so windowed KV rings and HiP masks follow the sequence.
  int32_t create_sequence();
  void free_sequence(int32_t seq);
  // Prefix caching: a sequence for `prompt` under `plan` (null: the engine's) that starts from the longest cached run
  // of the prompt's full pages; returns {sequence, prompt tokens already in the cache} ({new sequence, 0} when
  // caching is off). cache_prompt registers a sequence's prompt pages once its prompt has been computed.
  std::pair<int32_t, int32_t> create_sequence_for_prompt(std::span<const int32_t> prompt, const AttentionPlan* plan);
  void cache_prompt(int32_t seq, std::span<const int32_t> prompt, const AttentionPlan* plan);
  // What create_sequence_for_prompt would find cached now, changing nothing.
  KvCache::PrefixMatch match_prompt(std::span<const int32_t> prompt, const AttentionPlan* plan) const;
  int32_t fork_sequence(int32_t seq);

  // Appends `tokens` to `seq` in steps of at most `chunk` tokens (0: max_step_tokens) and returns the logits:
  // [tokens.size(), vocab] when all_logits, else [vocab] of the last token. Throws on invalid ids or a full cache
  // (the sequence is left as it was before the call). `phase` picks the plan half the tokens run under:
  // generate() feeds the prompt as PREFILL and each sampled token as DECODE.
  std::vector<float> feed(int32_t seq, std::span<const int32_t> tokens, bool all_logits, int32_t chunk = 0,
                          AttentionPhase phase = AttentionPhase::ATTENTION_PHASE_PREFILL);

  // One forward step over many sequences (continuous batching): every chunk's tokens are appended to its sequence
  // and run together, at most max_step_tokens in all, each sequence at most once. Returns [n_want, vocab] logits of
  // the last token of each chunk with want_logits, in chunk order. All or nothing: invalid ids, a repeated
  // sequence or a full cache throw with every sequence left as it was. Each chunk runs its own plan
  // (SequenceChunk::plan, a per-request policy from plan_for()); `plan` serves the chunks that name none, and the
  // engine's plan serves the rest. Sequences with different plans share the step (E11 item 1).
  std::vector<float> step(std::span<const SequenceChunk> chunks, const AttentionPlan* plan = nullptr);
  // The same step, returning the argmax alone for the chunks with argmax_only (step() leaves them out).
  StepOutputs step_outputs(std::span<const SequenceChunk> chunks, const AttentionPlan* plan = nullptr);
  int32_t max_step_tokens() const { return buffers_.max_tokens; }

  // Pipelined greedy decoding (vLLM's async scheduling, SGLang's overlap scheduler): step_launch starts a step and
  // returns before the backend has run it; step_wait reads its argmax rows (as StepOutputs::argmax). A chunk with
  // token_from_previous takes its token from the step launched before, so the host records and launches step n + 1
  // while the device runs step n, and the device never waits for the host between steps. Only for chunks
  // can_launch accepts: one decode token each, argmax_only, plans without HiP (whose masks the host keeps between
  // steps). At most two steps in flight, each waited for once, in order. Sequences change at launch as with
  // step_outputs; freeing a sequence whose step is in flight is safe (the backend runs its work in order).
  bool can_launch(std::span<const SequenceChunk> chunks, const AttentionPlan* plan = nullptr) const;
  LaunchedStep step_launch(std::span<const SequenceChunk> chunks, const AttentionPlan* plan = nullptr);
  std::vector<int32_t> step_wait(LaunchedStep& step);

  // A preset's plan for this model, checked runnable on this engine's backend (throws lcllm::Error otherwise).
  AttentionPlan plan_for(const std::string& preset) const;

  // Benchmarks only: appends n positions to `seq` without computing them; their K/V are whatever the pool holds
  // (zeros on a fresh pool). Decode timings at long context then cost no prefill. Throws when the cache is full.
  void extend_uncomputed(int32_t seq, int32_t n);

  // Prefill + sampling loop on a fresh sequence, freed at the end. on_token(id) is called for every token.
  // The single-request reference the scheduler is tested against (`run` and `serve` drive the Scheduler).
  GenerateResult generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                          const std::function<void(int32_t)>& on_token = {});

  // Throws INVALID_ARGUMENT naming the first id outside [0, vocab_size).
  void validate_tokens(std::span<const int32_t> tokens) const;

 private:
  Engine() = default;
  // Throws INVALID_ARGUMENT when `plan` (another than plan_) would read keys of heads whose KV is only a window.
  void check_fits_kv_window(const AttentionPlan& plan) const;
  // A step's host side (prepare_step): forward_step's input and the arrays its spans point into.
  struct PreparedStep {
    std::vector<int32_t> seqs, tokens, positions, rows, from_argmax;  // [n_seq], [n], [n], [n_want], [n]
    std::vector<int32_t> query_start, kv_len;                         // [n_seq + 1], [n_seq]
    std::vector<int64_t> slots;                                       // [n]
    std::vector<uint8_t> argmax_only;                                 // [n_want]
    std::vector<AttentionPhase> phases;                               // [n_seq]
    std::vector<const AttentionPlan*> plans;                          // [n_seq]
    std::vector<SequencePolicyState*> states;                         // [n_seq]
    CsrPages pages;
    StepInput in;
  };
  void prepare_step(std::span<const SequenceChunk> chunks, const AttentionPlan* plan, PreparedStep& step);

  EngineOptions options_;
  ModelConfig config_;
  std::unique_ptr<Checkpoint> checkpoint_;
  std::unique_ptr<Backend> backend_;
  ModelWeights weights_;
  AttentionPlan plan_;
  std::unique_ptr<KvCache> kv_;
  KvWindowLayout kv_window_;  // heads whose KV is a window only (empty: none)
  std::unordered_map<int32_t, SequencePolicyState> policy_state_;  // per live sequence (HiP decode masks)
  ForwardBuffers buffers_;
  int32_t launched_in_flight_ = 0;  // step_launch'ed steps not yet waited for
  int32_t last_launch_rows_ = 0;    // rows of the last launched step (token_from_previous must be below)
};

}  // namespace lcllm
