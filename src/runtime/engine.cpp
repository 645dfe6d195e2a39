#include "runtime/engine.h"

#include <unistd.h>

#include <cstdio>

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "attention/attention_kv_window.h"
#include "models/gguf_model.h"
#include "lcllm/error.h"
#include "models/model_family.h"
#include "runtime/roofline.h"
#include "runtime/sampler.h"
#include "runtime/synthetic_weights.h"
#ifdef LCLLM_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace lcllm {

namespace {

// "" when `backend` runs every policy of `plan`, else what it lacks ("sparse attention", "HiP attention").
std::string backend_missing_policy(const Backend& backend, const AttentionPlan& plan) {
  bool sparse = false, hip = false;
  for (const LayerPlan& layer : plan.layers) {
    for (const auto* groups : {&layer.prefill, &layer.decode}) {
      for (const HeadGroupPolicy& g : *groups) {
        sparse = sparse || g.policy != AttentionPolicy::ATTENTION_POLICY_FULL;
        hip = hip || g.policy == AttentionPolicy::ATTENTION_POLICY_HIP;
      }
    }
  }
  if (sparse && !backend.supports_key_sets()) return "sparse attention";
  if (hip && !backend.supports_hip()) return "HiP attention";
  return "";
}

std::unique_ptr<Backend> backend_for_device(const std::string& device, const EngineOptions& options) {
  if (device == "cpu") return backend_create_cpu(options.threads);
#ifdef LCLLM_HAVE_CUDA
  if (device == "cuda") {  // throws without a usable GPU
    return backend_create_cuda(0, options.gpu_memory_fraction, !options.enforce_eager);
  }
#endif
  throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
              "device '" + device + "' is not available in this build (devices: " + engine_devices() + ")");
}

// --kv-cache-dtype's values other than "auto".
KvDtype kv_dtype_parse(const std::string& name) {
  if (name == "bf16") return KvDtype::KV_DTYPE_BF16;
  if (name == "fp8" || name == "fp8_e4m3") return KvDtype::KV_DTYPE_FP8_E4M3;
  throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
              "--kv-cache-dtype '" + name + "' is not one of auto, bf16, fp8 (fp8_e4m3)");
}

}  // namespace

int32_t engine_auto_step_tokens(const std::string& backend) { return backend == "cuda" ? 4096 : 256; }

std::unique_ptr<Engine> Engine::load(const EngineOptions& options, std::unique_ptr<Backend> backend) {
  if (options.context_tokens < 0) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "context size must be positive, got " +
                                                            std::to_string(options.context_tokens));
  }
  if (options.page_size <= 0 || options.max_step_tokens < 0) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "page size must be positive and step size not negative");
  }
  std::unique_ptr<Engine> e(new Engine());
  e->options_ = options;
  e->config_ = model_config_load(options.model_path);
  if (options.plan) {
    attention_plan_validate(*options.plan, e->config_, "plan '" + options.plan->name + "'");
    e->plan_ = *options.plan;
  } else {
    e->plan_ = attention_plan_resolve(options.policy, e->config_);
  }
  e->checkpoint_ = std::make_unique<Checkpoint>(
      options.random_weights ? synthetic_checkpoint(e->config_, options.weight_seed, options.model_path)
                             : model_checkpoint_open(options.model_path));
  e->backend_ = backend ? std::move(backend) : backend_for_device(engine_resolve_device(options.device), options);
  e->options_.device = e->backend_->name();
  // A sparse plan runs only where the backend has its policies: stop now rather than fall back to FULL.
  // With --device auto the plan decides: a plan the GPU backend cannot run runs on the CPU backend.
  if (const std::string missing = backend_missing_policy(*e->backend_, e->plan_); !missing.empty()) {
    if (options.device == "auto") {
      spdlog::warn("attention policy '{}' needs {}, which the {} backend does not have yet: running on the cpu "
                   "backend", e->plan_.name, missing, e->backend_->name());
      e->options_.device = "cpu";
      e->backend_ = backend_create_cpu(options.threads);
    } else {
      throw Error(ErrorKind::ERROR_KIND_UNSUPPORTED,
                  "attention policy '" + e->plan_.name + "' needs " + missing + ", which is not implemented on the " +
                      e->backend_->name() + " backend; use --device cpu or --policy full");
    }
  }
  if (options.kv_cache_dtype != "auto") e->backend_->kv_set_dtype(kv_dtype_parse(options.kv_cache_dtype));
  if (e->options_.max_step_tokens == 0) e->options_.max_step_tokens = engine_auto_step_tokens(e->backend_->name());
  const int32_t step_tokens = e->options_.max_step_tokens;
  e->weights_ = model_weights_bind(e->config_, *e->checkpoint_, *e->backend_, options.load_progress);
  e->buffers_ = forward_buffers_alloc(*e->backend_, e->config_, step_tokens);
  // Streaming heads keep only their window (retrieval preset, DuoAttention): the pool stores the other heads.
  if (options.kv_window && e->backend_->supports_kv_window()) {
    e->kv_window_ = attention_kv_window_layout(e->plan_, step_tokens);
    e->kv_window_.max_sequences = options.max_window_sequences;
    e->kv_window_.head_dim = e->config_.head_dim;
    if (!e->kv_window_.empty()) e->backend_->kv_window_configure(e->kv_window_);
  }
  int64_t pool_heads = 0;  // (layer, KV head) pairs stored in the page pool
  for (int32_t l = 0; l < e->config_.n_layers; ++l) {
    pool_heads += e->config_.n_kv_heads - (e->kv_window_.empty() ? 0 : e->kv_window_.windowed_heads(l));
  }
  // KV last, so `--ctx-size 0` can take whatever memory the weights and activations left.
  const size_t page_bytes = size_t(2) * size_t(std::max<int64_t>(pool_heads, 1)) * size_t(options.page_size) *
                            size_t(kv_vector_bytes(e->backend_->kv_storage_dtype(), e->config_.head_dim));
  if (options.context_tokens < 0) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "the KV cache size (--ctx-size) must be >= 0 tokens");
  }
  int64_t n_pages = (int64_t(options.context_tokens) + options.page_size - 1) / options.page_size;
  if (options.context_tokens > 0 && e->backend_->kv_budget_bytes() == SIZE_MAX) {
    // A backend without a memory budget (the CPU) allocates what it is asked for: check the request against the
    // machine's memory first, so an absurd --ctx-size is a message, not std::bad_alloc (E12).
    const double need = double(n_pages) * double(page_bytes);
    const double have = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGESIZE));
    if (have > 0 && need > have) {
      char msg[256];
      std::snprintf(msg, sizeof msg,
                    "a KV cache of %d tokens needs %.1f GiB and this machine has %.1f GiB of memory: lower --ctx-size",
                    options.context_tokens, need / double(1ull << 30), have / double(1ull << 30));
      throw Error(ErrorKind::ERROR_KIND_OUT_OF_MEMORY, msg);
    }
  }
  if (options.context_tokens == 0) {
    const size_t budget = e->backend_->kv_budget_bytes();
    n_pages = budget == SIZE_MAX ? (4096 + options.page_size - 1) / options.page_size
                                 : int64_t(std::min<size_t>(budget / page_bytes, size_t(INT32_MAX)));
    if (n_pages <= 0) throw Error(ErrorKind::ERROR_KIND_OUT_OF_MEMORY, "no device memory left for the KV cache");
  }
  e->kv_ = std::make_unique<KvCache>(KvCacheConfig{options.page_size, int32_t(n_pages)});
  e->kv_->set_prefix_caching(options.prefix_caching && e->kv_window_.empty());
  e->backend_->kv_reserve(e->config_.n_layers, int32_t(n_pages), options.page_size, e->config_.n_kv_heads,
                          e->config_.head_dim);
  return e;
}

std::string engine_devices() {
#ifdef LCLLM_HAVE_CUDA
  return "cpu, cuda";
#else
  return "cpu";
#endif
}

std::string engine_resolve_device(const std::string& device) {
  if (device != "auto") return device;
#ifdef LCLLM_HAVE_CUDA
  if (cuda_device_available()) return "cuda";
#endif
  return "cpu";
}

size_t Engine::kv_bytes_full() const {
  return size_t(kv_->n_pages()) * size_t(kv_->page_size()) *
         size_t(kv_bytes_per_token(config_, backend_->kv_storage_dtype()));
}

size_t Engine::kv_bytes_reserved() const {
  const KvMemoryEstimate m = attention_kv_memory(config_, kv_window_, int64_t(kv_->n_pages()) * kv_->page_size(), 0,
                                                 backend_->kv_storage_dtype());
  return m.plan_bytes;
}

size_t Engine::kv_window_bytes_per_sequence() const {
  if (kv_window_.empty()) return 0;
  return attention_kv_memory(config_, kv_window_, 0, 1, backend_->kv_storage_dtype()).ring_bytes_per_sequence;
}

int32_t Engine::create_sequence() {
  const int32_t seq = kv_->create_sequence();
  policy_state_[seq] = {};
  return seq;
}

namespace {

// What a cached page holds depends on the tokens and on how the plan computed them in prefill (a sparse prefill
// changes the hidden states of later layers); the decode phase does not touch prompt pages. The salt hashes every
// (layer, KV head)'s prefill policy, so that full, tidal and hylra — dense prefill alike — share their pages, and
// group boundaries that do not change a policy do not change the salt.
uint64_t plan_salt(const AttentionPlan& plan) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](int64_t v) {
    for (int b = 0; b < 8; ++b) {
      h ^= uint64_t(v >> (8 * b)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  for (const LayerPlan& l : plan.layers) {
    for (const HeadGroupPolicy& g : l.prefill) {
      for (int32_t kv = g.kv_head_begin; kv < g.kv_head_end; ++kv) {
        mix(kv);
        mix(int64_t(g.policy));
        if (g.policy == AttentionPolicy::ATTENTION_POLICY_FULL) continue;
        for (int64_t v : {int64_t(g.k), int64_t(g.from), int64_t(g.sink), int64_t(g.recent), int64_t(g.hip.k),
                          int64_t(g.hip.block_size_q), int64_t(g.hip.block_size_k), int64_t(g.hip.sink),
                          int64_t(g.hip.recent), int64_t(g.hip.refresh_every),
                          int64_t(g.hip.coarse_refresh_every), int64_t(g.hip.coarse_piece_keys),
                          int64_t(g.hip.dense_below), int64_t(g.hip.dense_tail)}) {
          mix(v);
        }
      }
    }
    mix(-1);  // layer boundary
  }
  return h;
}

}  // namespace

// HiP's prefill cuts query blocks from the start of each chunk, and its dense_tail rows depend on where the prompt
// ends, so what a page holds depends on how its prompt was chunked and how long it was, not only on its tokens: such
// plans are not prefix-cached.
static bool prefill_is_chunk_dependent(const AttentionPlan& plan) {
  for (const LayerPlan& l : plan.layers) {
    for (const HeadGroupPolicy& g : l.prefill) {
      if (g.policy == AttentionPolicy::ATTENTION_POLICY_HIP) return true;
    }
  }
  return false;
}

std::pair<int32_t, int32_t> Engine::create_sequence_for_prompt(std::span<const int32_t> prompt,
                                                               const AttentionPlan* plan) {
  if (!kv_->prefix_caching() || prefill_is_chunk_dependent(plan ? *plan : plan_)) return {create_sequence(), 0};
  const auto [seq, cached] = kv_->create_sequence_from_prefix(prompt, plan_salt(plan ? *plan : plan_));
  policy_state_[seq] = {};
  return {seq, cached};
}

KvCache::PrefixMatch Engine::match_prompt(std::span<const int32_t> prompt, const AttentionPlan* plan) const {
  if (!kv_->prefix_caching() || prefill_is_chunk_dependent(plan ? *plan : plan_)) return {};
  return kv_->match_prefix(prompt, plan_salt(plan ? *plan : plan_));
}

void Engine::cache_prompt(int32_t seq, std::span<const int32_t> prompt, const AttentionPlan* plan) {
  if (kv_->prefix_caching() && !prefill_is_chunk_dependent(plan ? *plan : plan_)) {
    kv_->register_prefix(seq, prompt, plan_salt(plan ? *plan : plan_));
  }
}

void Engine::free_sequence(int32_t seq) {
  kv_->free_sequence(seq);  // throws for an unknown id, before anything else changes
  backend_->kv_window_release(seq);
  backend_->hip_cache_release(seq);
  policy_state_.erase(seq);
}

int32_t Engine::fork_sequence(int32_t seq) {
  const int32_t fork = kv_->fork_sequence(seq);
  try {
    backend_->kv_window_fork(seq, fork);  // may find no free ring (cuda)
  } catch (...) {
    kv_->free_sequence(fork);
    throw;
  }
  auto it = policy_state_.find(seq);
  policy_state_[fork] = it == policy_state_.end() ? SequencePolicyState{} : it->second;
  // A fork searches its HiP decode masks anew: a mask the backend keeps belongs to the original's rows, which the
  // original overwrites at its next search (forks come after the prompt's prefill, which had invalidated them anyway).
  for (HipCachedMask& m : policy_state_[fork].hip) m.valid = m.stage_valid = false;
  return fork;
}

void Engine::extend_uncomputed(int32_t seq, int32_t n) {
  if (n < 0) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "cannot extend a sequence by a negative length");
  AppendPlan append = kv_->append_tokens(seq, n);
  backend_->kv_copy_pages(append.copies);
}

void Engine::validate_tokens(std::span<const int32_t> tokens) const {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= config_.vocab_size) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                  "token id " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                      " is outside the vocabulary [0, " + std::to_string(config_.vocab_size) + ")");
    }
  }
}

std::vector<float> Engine::feed(int32_t seq, std::span<const int32_t> tokens, bool all_logits, int32_t chunk,
                                AttentionPhase phase) {
  validate_tokens(tokens);
  if (tokens.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "nothing to feed: empty token list");
  if (chunk <= 0 || chunk > buffers_.max_tokens) chunk = buffers_.max_tokens;
  const int32_t start_len = kv_->length(seq);
  // Reserve every slot up front so a full cache fails before any compute, with the sequence untouched.
  AppendPlan append = kv_->append_tokens(seq, int32_t(tokens.size()));
  backend_->kv_copy_pages(append.copies);

  const int64_t V = config_.vocab_size;
  std::vector<float> logits(size_t(all_logits ? int64_t(tokens.size()) * V : V));
  const std::vector<int32_t> seqs = {seq};
  const CsrPages pages = kv_->export_csr(seqs);
  SequencePolicyState* states[1] = {&policy_state_[seq]};
  std::vector<int32_t> positions, query_start(2), kv_len(1), rows;
  const AttentionPhase phases[1] = {phase};
  for (size_t begin = 0; begin < tokens.size(); begin += size_t(chunk)) {
    const size_t n = std::min(tokens.size() - begin, size_t(chunk));
    positions.resize(n);
    for (size_t i = 0; i < n; ++i) positions[i] = start_len + int32_t(begin + i);
    query_start = {0, int32_t(n)};
    kv_len = {start_len + int32_t(begin + n)};
    const bool last_chunk = begin + n == tokens.size();
    rows.clear();
    if (all_logits) {
      for (size_t i = 0; i < n; ++i) rows.push_back(int32_t(i));
    } else if (last_chunk) {
      rows.push_back(int32_t(n - 1));
    }
    StepInput in;
    in.tokens = tokens.subspan(begin, n);
    in.positions = positions;
    in.slots = std::span<const int64_t>(append.slots).subspan(begin, n);
    in.attention.query_start = query_start;
    in.attention.query_pos = positions;
    in.attention.kv_len = kv_len;
    in.attention.pages = &pages;
    in.attention.seq_ids = seqs;
    in.phases = phases;
    in.policy_state = states;
    in.logit_rows = rows;
    float* out = all_logits ? logits.data() + int64_t(begin) * V : logits.data();
    forward_step(*backend_, config_, weights_, plan_, buffers_, in, out);
  }
  return logits;
}

AttentionPlan Engine::plan_for(const std::string& preset) const {
  AttentionPlan plan = attention_plan_resolve(preset, config_);
  check_fits_kv_window(plan);
  if (const std::string missing = backend_missing_policy(*backend_, plan); !missing.empty()) {
    throw Error(ErrorKind::ERROR_KIND_UNSUPPORTED, "attention policy '" + plan.name + "' needs " + missing +
                                                       ", which the " + backend_->name() + " backend does not have");
  }
  return plan;
}

void Engine::check_fits_kv_window(const AttentionPlan& plan) const {
  if (kv_window_.empty() || &plan == &plan_) return;
  // Heads whose KV is only a window must stream with that same window under the other plan too.
  const KvWindowLayout other = attention_kv_window_layout(plan, buffers_.max_tokens);
  const bool same_window = other.sink == kv_window_.sink && other.recent == kv_window_.recent;
  for (int32_t l = 0; l < config_.n_layers; ++l) {
    for (int32_t h = 0; h < config_.n_kv_heads; ++h) {
      if (kv_window_.is_windowed(l, h) && !(same_window && other.is_windowed(l, h))) {
        throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                    "attention plan '" + plan.name + "' needs keys of layer " + std::to_string(l) + ", KV head " +
                        std::to_string(h) + " that this engine does not keep: under its plan '" + plan_.name +
                        "' that head streams and keeps only a " + std::to_string(kv_window_.ring_len) +
                        "-token window; load the engine with this plan, or with EngineOptions::kv_window off");
      }
    }
  }
}

std::vector<float> Engine::step(std::span<const SequenceChunk> chunks, const AttentionPlan* plan) {
  return step_outputs(chunks, plan).logits;
}

// The host side of a step: validates the chunks, appends their tokens to the sequences (KV slots, copy-on-write
// pages) and fills `step` with what forward_step reads. All or nothing: on a throw every sequence is as before.
void Engine::prepare_step(std::span<const SequenceChunk> chunks, const AttentionPlan* plan, PreparedStep& step) {
  if (chunks.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "step: no sequences");
  if (plan) check_fits_kv_window(*plan);
  for (const SequenceChunk& c : chunks) {
    if (c.plan && c.plan != plan) check_fits_kv_window(*c.plan);
  }
  size_t n_tokens = 0;
  std::vector<int32_t>& seqs = step.seqs;  // [n_seq]
  for (const SequenceChunk& c : chunks) {
    if (c.tokens.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "step: a sequence with no tokens");
    if (!kv_->has_sequence(c.seq)) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "step: unknown sequence " + std::to_string(c.seq));
    }
    if (std::find(seqs.begin(), seqs.end(), c.seq) != seqs.end()) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "step: sequence " + std::to_string(c.seq) + " given twice");
    }
    validate_tokens(c.tokens);
    seqs.push_back(c.seq);
    n_tokens += c.tokens.size();
  }
  if (n_tokens > size_t(buffers_.max_tokens)) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "step: " + std::to_string(n_tokens) +
                                                            " tokens exceed the step size " +
                                                            std::to_string(buffers_.max_tokens));
  }
  // Reserve every slot first; on a full cache undo the appends already made so no sequence changes.
  std::vector<int32_t> start_len(chunks.size());            // [n_seq] length before this step
  std::vector<int64_t>& slots = step.slots;                  // [n_tokens]
  std::vector<PageCopy> copies;                              // [n_copies] run before any KV write
  for (size_t i = 0; i < chunks.size(); ++i) {
    start_len[i] = kv_->length(chunks[i].seq);
    try {
      AppendPlan a = kv_->append_tokens(chunks[i].seq, int32_t(chunks[i].tokens.size()));
      slots.insert(slots.end(), a.slots.begin(), a.slots.end());
      copies.insert(copies.end(), a.copies.begin(), a.copies.end());
    } catch (...) {
      // Earlier chunks may have moved onto copy-on-write pages: copy them now, or the tokens they kept would read
      // an uncopied page after the rollback.
      backend_->kv_copy_pages(copies);
      for (size_t j = 0; j < i; ++j) kv_->truncate(chunks[j].seq, start_len[j]);
      throw;
    }
  }
  backend_->kv_copy_pages(copies);

  std::vector<int32_t>& tokens = step.tokens;
  std::vector<int32_t>& positions = step.positions;
  std::vector<int32_t>& rows = step.rows;
  std::vector<int32_t>& from_argmax = step.from_argmax;
  std::vector<uint8_t>& argmax_only = step.argmax_only;
  std::vector<int32_t>& query_start = step.query_start;
  std::vector<int32_t>& kv_len = step.kv_len;
  std::vector<AttentionPhase>& phases = step.phases;
  std::vector<const AttentionPlan*>& plans = step.plans;
  std::vector<SequencePolicyState*>& states = step.states;
  query_start = {0};
  for (size_t i = 0; i < chunks.size(); ++i) {
    const SequenceChunk& c = chunks[i];
    plans.push_back(c.plan ? c.plan : plan ? plan : &plan_);
    for (size_t t = 0; t < c.tokens.size(); ++t) {
      tokens.push_back(c.tokens[t]);
      positions.push_back(start_len[i] + int32_t(t));
      from_argmax.push_back(c.token_from_previous);
    }
    query_start.push_back(int32_t(tokens.size()));
    kv_len.push_back(start_len[i] + int32_t(c.tokens.size()));
    phases.push_back(c.phase);
    if (c.want_logits) {
      rows.push_back(int32_t(tokens.size()) - 1);
      argmax_only.push_back(c.argmax_only ? 1 : 0);
    }
  }
  step.pages = kv_->export_csr(seqs);
  for (int32_t s : seqs) states.push_back(&policy_state_[s]);
  StepInput& in = step.in;
  in.tokens = tokens;
  in.positions = positions;
  in.slots = slots;
  in.attention.query_start = query_start;
  in.attention.query_pos = positions;
  in.attention.kv_len = kv_len;
  in.attention.pages = &step.pages;
  in.attention.seq_ids = seqs;  // windowed KV heads: each sequence's ring
  in.policy_state = states;
  in.phases = phases;
  in.plans = plans;
  in.logit_rows = rows;
  in.argmax_only = argmax_only;
  if (std::any_of(from_argmax.begin(), from_argmax.end(), [](int32_t f) { return f >= 0; })) {
    in.token_from_argmax = from_argmax;
  }
}

StepOutputs Engine::step_outputs(std::span<const SequenceChunk> chunks, const AttentionPlan* plan) {
  for (const SequenceChunk& c : chunks) {
    if (c.token_from_previous >= 0) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "step: token_from_previous needs step_launch");
    }
  }
  PreparedStep step;
  prepare_step(chunks, plan, step);
  last_launch_rows_ = 0;  // this step's argmax rows are not a launched step's: nothing may chain from it
  const std::vector<uint8_t>& argmax_only = step.argmax_only;
  const size_t n_argmax = size_t(std::count(argmax_only.begin(), argmax_only.end(), uint8_t(1)));
  StepOutputs out;
  out.logits.resize((step.rows.size() - n_argmax) * size_t(config_.vocab_size));  // [n_logits, vocab]
  out.argmax.resize(n_argmax);                                                    // [n_argmax]
  forward_step(*backend_, config_, weights_, plan_, buffers_, step.in, out.logits.data(), out.argmax.data());
  return out;
}

bool Engine::can_launch(std::span<const SequenceChunk> chunks, const AttentionPlan* plan) const {
  if (chunks.empty() || int64_t(chunks.size()) > buffers_.logits.shape[0]) return false;
  for (const SequenceChunk& c : chunks) {
    if (!c.want_logits || !c.argmax_only || c.tokens.size() != 1) return false;
    const AttentionPlan& p = c.plan ? *c.plan : plan ? *plan : plan_;
    // HiP keeps per-sequence masks on the host between steps and may read the device mid-step.
    for (const LayerPlan& layer : p.layers) {
      for (const HeadGroupPolicy& g : layer.decode) {
        if (g.policy == AttentionPolicy::ATTENTION_POLICY_HIP) return false;
      }
    }
  }
  return true;
}

LaunchedStep Engine::step_launch(std::span<const SequenceChunk> chunks, const AttentionPlan* plan) {
  if (!can_launch(chunks, plan)) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "step_launch: every chunk must be one decode token wanting only its argmax, under a plan without HiP");
  }
  if (launched_in_flight_ >= 2) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "step_launch: two steps in flight; wait for the older first");
  }
  for (const SequenceChunk& c : chunks) {
    if (c.token_from_previous >= last_launch_rows_) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                  "step_launch: token_from_previous " + std::to_string(c.token_from_previous) +
                      " is not a row of the step launched before (" + std::to_string(last_launch_rows_) + " rows)");
    }
  }
  PreparedStep step;
  prepare_step(chunks, plan, step);
  LaunchedStep launched;
  try {
    launched.argmax = forward_step_launch(*backend_, config_, weights_, plan_, buffers_, step.in);
  } catch (...) {  // all or nothing, as prepare_step: the caller may run the same tokens again
    for (size_t i = 0; i < chunks.size(); ++i) kv_->truncate(chunks[i].seq, step.in.positions[i]);
    throw;
  }
  launched.rows = int32_t(chunks.size());
  ++launched_in_flight_;
  last_launch_rows_ = launched.rows;
  return launched;
}

std::vector<int32_t> Engine::step_wait(LaunchedStep& step) {
  LCLLM_ASSERT(step.rows > 0 && launched_in_flight_ > 0, "step_wait: the step was not launched or already waited for");
  --launched_in_flight_;  // first: a throw below still ends the step (the backend marks its copy ended too)
  const int32_t rows = step.rows;
  step.rows = 0;
  backend_->to_host_end(step.argmax);
  std::vector<int32_t> ids(static_cast<size_t>(rows));  // [rows] as StepOutputs::argmax: -1 where the logits hold a NaN
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(step.argmax.values[i]);
  return ids;
}

GenerateResult Engine::generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                                const std::function<void(int32_t)>& on_token) {
  if (prompt.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "the prompt is empty");
  if (options.max_tokens < 0) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "max_tokens must be >= 0");
  const int64_t need = int64_t(prompt.size()) + options.max_tokens;
  if (need > int64_t(kv_->pages_free()) * kv_->page_size()) {
    throw Error(ErrorKind::ERROR_KIND_OUT_OF_MEMORY,
                "prompt (" + std::to_string(prompt.size()) + " tokens) + max_tokens (" +
                    std::to_string(options.max_tokens) + ") exceeds the KV cache (" +
                    std::to_string(int64_t(kv_->pages_free()) * kv_->page_size()) +
                    " free tokens); raise --ctx-size or lower --max-tokens");
  }
  Sampler sampler(options.sampling);
  GenerateResult result;
  result.prompt_tokens = int32_t(prompt.size());
  const int32_t seq = create_sequence();
  struct Free {
    Engine* engine;
    int32_t seq;
    ~Free() { engine->free_sequence(seq); }
  } free_on_exit{this, seq};

  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  std::vector<float> logits = feed(seq, prompt, false);
  auto t1 = clock::now();
  result.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
  result.finish_reason = "length";
  for (int32_t i = 0; i < options.max_tokens; ++i) {
    const int32_t tok = sampler.sample(logits, prompt, result.tokens);
    result.tokens.push_back(tok);
    if (on_token) on_token(tok);
    const bool stop = !options.ignore_eos &&
                      std::find(options.stop_ids.begin(), options.stop_ids.end(), tok) != options.stop_ids.end();
    if (stop) {
      result.finish_reason = "stop";
      break;
    }
    if (i + 1 < options.max_tokens) {
      logits = feed(seq, std::span<const int32_t>(&tok, 1), false, 0, AttentionPhase::ATTENTION_PHASE_DECODE);
    }
  }
  result.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return result;
}

}  // namespace lcllm
