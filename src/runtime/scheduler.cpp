#include "runtime/scheduler.h"

#include <algorithm>
#include <tuple>

#include <spdlog/spdlog.h>

#include "lcllm/error.h"
#include "runtime/sampler.h"

namespace lcllm {

using Clock = std::chrono::steady_clock;

// ---- RequestHandle ----------------------------------------------------------------------------------------------

std::vector<TokenEvent> RequestHandle::wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !events_.empty(); });
  std::vector<TokenEvent> out(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
  events_.clear();
  return out;
}

void RequestHandle::cancel() { cancelled_.store(true); }

void RequestHandle::stop_choice(int32_t choice) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!choice_stopped_locked(choice)) stopped_choices_.push_back(choice);
}

std::optional<std::chrono::steady_clock::time_point> RequestHandle::admitted_at() const {
  std::lock_guard<std::mutex> lock(mu_);
  return admitted_;
}

bool RequestHandle::choice_stopped(int32_t choice) const {
  std::lock_guard<std::mutex> lock(mu_);
  return choice_stopped_locked(choice);
}

bool RequestHandle::choice_stopped_locked(int32_t choice) const {
  return std::find(stopped_choices_.begin(), stopped_choices_.end(), choice) != stopped_choices_.end();
}

bool RequestHandle::finished() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_choices_ == 0 && events_.empty();
}

void RequestHandle::push(TokenEvent e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!e.finish_reason.empty()) --open_choices_;
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
  if (waker_) waker_->notify();
}

void EventWaker::notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++count_;
  }
  cv_.notify_all();
}

uint64_t EventWaker::wait(uint64_t seen, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return count_ != seen; });
  return count_;
}

// ---- Scheduler state ---------------------------------------------------------------------------------------------

struct Scheduler::Group {  // what the choices of one request share
  std::shared_ptr<RequestHandle> handle;
  GenerationRequest request;
  std::shared_ptr<const AttentionPlan> plan;  // null: the engine's plan
  Clock::time_point arrival;
  int32_t unfinished = 0;
};

struct Scheduler::Pending {
  std::shared_ptr<Group> group;
};

struct Scheduler::Running {
  std::shared_ptr<Group> group;
  int32_t choice = 0;
  bool scorer = false;            // fed group->request.forced instead of sampling (choice n)
  int32_t seq = -1;               // -1: a choice > 0 waiting for choice 0's prompt, whose pages it will fork
  size_t prefilled = 0;          // prompt tokens already in the cache
  std::vector<int32_t> output;   // [n_generated] (the scorer: the forced ids fed so far)
  std::unique_ptr<Sampler> sampler;
  Clock::time_point last_token;
  bool done = false;
};

namespace {

TokenEvent ending_event(int32_t choice, const std::string& reason) {  // a token-less end of one choice
  TokenEvent e;
  e.choice = choice;
  e.finish_reason = reason;
  return e;
}

int32_t pages_for(int64_t tokens, int32_t page_size) { return int32_t((tokens + page_size - 1) / page_size); }

// Tokens each of a request's sequences adds after the prompt: max_tokens for each sampled choice, then the forced
// answer for the scoring choice.
std::vector<int64_t> sequence_tails(const GenerationRequest& r) {
  std::vector<int64_t> tails(size_t(std::max(r.n, 0)), int64_t(r.max_tokens));  // [sequences]
  if (!r.forced.empty()) tails.push_back(int64_t(r.forced.size()));
  return tails;
}

// Pages a request takes from the pool at most: the first sequence (it prefills the prompt) all of its pages but the
// `cached` prompt pages a prefix hit shares, each further one (a fork) its pages past the prompt's full ones, which
// it shares.
int64_t request_pages(int64_t prompt, const std::vector<int64_t>& tails, int32_t page_size, int32_t cached = 0) {
  int64_t pages = 0;
  for (size_t i = 0; i < tails.size(); ++i) {
    pages += pages_for(prompt + tails[i], page_size) - (i == 0 ? cached : prompt / page_size);
  }
  return pages;
}

}  // namespace

Scheduler::Scheduler(Engine& engine, const SchedulerOptions& options, SchedulerObserver* observer)
    : engine_(engine), options_(options), observer_(observer ? *observer : no_observer_) {
  // Every running sequence must be able to take its decode token in one step.
  options_.max_num_seqs = std::max(1, std::min(options_.max_num_seqs, engine_.max_step_tokens()));
  if (options_.prefill_chunk < 0 ||
      int64_t(options_.prefill_chunk) + options_.max_num_seqs > int64_t(engine_.max_step_tokens())) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "scheduler: prefill chunks of " + std::to_string(options_.prefill_chunk) + " tokens beside " +
                    std::to_string(options_.max_num_seqs) + " decode rows do not fit the engine's step of " +
                    std::to_string(engine_.max_step_tokens()) + " tokens");
  }
  publish_gauges();
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    refusing_ = true;
    aborting_ = true;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<RequestHandle> Scheduler::submit(GenerationRequest request, std::shared_ptr<EventWaker> waker) {
  std::shared_ptr<Group> group = prepare(std::move(request), std::move(waker));
  std::shared_ptr<RequestHandle> handle = group->handle;
  enqueue({std::move(group)});
  return handle;
}

std::vector<std::shared_ptr<RequestHandle>> Scheduler::submit_all(std::vector<GenerationRequest> requests,
                                                                  std::shared_ptr<EventWaker> waker) {
  std::vector<std::shared_ptr<Group>> groups;  // [requests]
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (GenerationRequest& r : requests) {
    groups.push_back(prepare(std::move(r), waker));
    handles.push_back(groups.back()->handle);
  }
  enqueue(std::move(groups));
  return handles;
}

std::shared_ptr<Scheduler::Group> Scheduler::prepare(GenerationRequest request, std::shared_ptr<EventWaker> waker) {
  const int64_t prompt = int64_t(request.prompt.size());
  using enum RefusalKind;
  if (prompt == 0) throw RequestRefused(INVALID_REQUEST, "the prompt is empty (it encodes to zero tokens)", "prompt");
  const bool scored = !request.forced.empty();
  const bool score_only = scored && request.n == 0;
  if (score_only) request.max_tokens = 0;
  else if (request.max_tokens < 1) throw RequestRefused(INVALID_REQUEST, "max_tokens must be >= 1", "max_tokens");
  const int64_t need = prompt + std::max<int64_t>(request.max_tokens, int64_t(request.forced.size()));
  if (need > options_.max_model_len) {
    throw RequestRefused(CONTEXT_LENGTH_EXCEEDED,
                         "this model's maximum context length is " + std::to_string(options_.max_model_len) +
                             " tokens, but the request needs " + std::to_string(need) + " (" + std::to_string(prompt) +
                             " in the prompt + " + std::to_string(request.max_tokens) +
                             " max_tokens); shorten the prompt or lower max_tokens",
                         "max_tokens");
  }
  const int32_t vocab = engine_.config().vocab_size;
  for (const int32_t id : request.forced) {
    if (id < 0 || id >= vocab) {
      throw RequestRefused(INVALID_REQUEST, "a forced token id (" + std::to_string(id) + ") is outside the vocabulary [0, " +
                                                std::to_string(vocab) + ")", "forced");
    }
  }
  const int32_t most_sampled = options_.max_num_seqs - (scored ? 1 : 0);
  if ((request.n < 1 && !score_only) || request.n > most_sampled) {
    throw RequestRefused(INVALID_REQUEST, "n must be in [1, " + std::to_string(most_sampled) +
                                              "] (--max-num-seqs" + (scored ? ", less the scoring sequence" : "") +
                                              "), got " + std::to_string(request.n), "n");
  }
  const KvCache& kv = engine_.kv_cache();
  const int64_t capacity = int64_t(kv.n_pages()) * kv.page_size();
  if (request_pages(prompt, sequence_tails(request), kv.page_size()) > kv.n_pages()) {
    throw RequestRefused(CONTEXT_LENGTH_EXCEEDED,
                         "the request needs " + std::to_string(sequence_tails(request).size()) + " sequences of up to " +
                             std::to_string(need) + " tokens of KV cache (" + std::to_string(prompt) +
                             " in the prompt, shared by the sequences, + up to " + std::to_string(need - prompt) +
                             " tokens each) but the cache holds " + std::to_string(capacity) +
                             "; lower max_tokens or n",
                         "max_tokens");
  }
  try {
    Sampler check(request.sampling);  // bad sampling parameters are the client's error, named now
  } catch (const Error& e) {
    throw RequestRefused(INVALID_REQUEST, e.what(), "sampling");
  }
  auto group = std::make_shared<Group>();
  if (!request.policy.empty() && request.policy != engine_.plan().name) {
    try {
      group->plan = std::make_shared<const AttentionPlan>(engine_.plan_for(request.policy));
    } catch (const Error& e) {
      throw RequestRefused(INVALID_REQUEST, std::string("attention_policy: ") + e.what(), "policy");
    }
  }
  const int32_t sequences = request.n + (scored ? 1 : 0);
  group->handle = std::make_shared<RequestHandle>();
  group->handle->open_choices_ = sequences;
  group->handle->prompt_tokens_ = int32_t(prompt);
  group->handle->waker_ = std::move(waker);
  group->unfinished = sequences;
  group->request = std::move(request);
  group->arrival = Clock::now();
  return group;
}

void Scheduler::enqueue(std::vector<std::shared_ptr<Group>> groups) {
  using enum RefusalKind;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (refusing_) throw RequestRefused(SHUTTING_DOWN, "the server is shutting down");
    if (int64_t(waiting_.size()) + int64_t(groups.size()) > options_.max_waiting) {
      throw RequestRefused(QUEUE_FULL, "the server is busy: " + std::to_string(waiting_.size()) +
                                           " requests are already waiting (--max-waiting); retry later");
    }
    for (auto& g : groups) waiting_.push_back(std::make_unique<Pending>(Pending{std::move(g)}));
  }
  cv_.notify_all();
}

int32_t Scheduler::retry_after_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return 1 + int32_t(waiting_.size()) / std::max(1, options_.max_num_seqs);
}

void Scheduler::drain(std::chrono::milliseconds grace) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    refusing_ = true;
  }
  const auto deadline = Clock::now() + grace;
  auto idle = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_.empty() && running_requests_.load() == 0;
  };
  while (!idle() && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (idle()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    aborting_ = true;
  }
  cv_.notify_all();
  while (!idle()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

// ---- engine thread -----------------------------------------------------------------------------------------------

void Scheduler::loop() {
  for (;;) {
    bool abort = false, stop = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (running_.empty()) cv_.wait(lock, [&] { return stopping_ || aborting_ || !waiting_.empty(); });
      abort = aborting_;
      aborting_ = false;
      stop = stopping_;
    }
    if (abort) abort_all();
    if (stop && running_.empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (waiting_.empty()) break;
    }
    try {
      drop_cancelled();
      admit();
      if (!running_.empty()) run_step();
    } catch (const std::exception& e) {  // a bug, not bad input (requests are validated before they get here)
      spdlog::error("scheduler: {}; ending the running requests", e.what());
      settle_in_flight();
      for (auto& r : running_) finish_choice(*r, "error");
      running_.clear();
    }
    publish_gauges();
  }
  settle_in_flight();
  publish_gauges();
}

void Scheduler::abort_all() {
  settle_in_flight();
  for (auto& r : running_) {
    if (!r->done) finish_choice(*r, "abort");
  }
  running_.clear();
  std::deque<std::unique_ptr<Pending>> waiting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    waiting.swap(waiting_);
  }
  for (auto& p : waiting) {
    for (int32_t c = 0; c < p->group->unfinished; ++c) p->group->handle->push(ending_event(c, "abort"));
    observer_.on_request_end(std::chrono::duration<double>(Clock::now() - p->group->arrival).count(), "abort");
  }
  publish_gauges();
}

void Scheduler::drop_cancelled() {
  for (auto& r : running_) {
    if (!r->done && r->group->handle->cancelled()) finish_choice(*r, "abort");
    // A stopped choice that is still prefilling the prompt its siblings will fork finishes once the prompt is in.
    else if (!r->done && r->group->handle->choice_stopped(r->choice) &&
             (r->seq < 0 || r->prefilled >= r->group->request.prompt.size())) {
      finish_choice(*r, "stop");
    }
  }
  forget_done_in_flight();
  std::erase_if(running_, [](const std::unique_ptr<Running>& r) { return r->done; });
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(waiting_, [&](const std::unique_ptr<Pending>& p) {
    if (!p->group->handle->cancelled()) return false;
    // Its choices end too, so a reader that waits for the handle to finish is not left waiting.
    for (int32_t c = 0; c < p->group->unfinished; ++c) p->group->handle->push(ending_event(c, "abort"));
    observer_.on_request_end(std::chrono::duration<double>(Clock::now() - p->group->arrival).count(), "abort");
    return true;
  });
}

void Scheduler::admit() {
  KvCache& kv = engine_.kv_cache();
  const int32_t page_size = kv.page_size();
  for (;;) {
    std::unique_ptr<Pending> p;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (waiting_.empty()) return;
      const GenerationRequest& req = waiting_.front()->group->request;
      if (running_.size() + sequence_tails(req).size() > size_t(options_.max_num_seqs)) return;  // first come, first served
      p = std::move(waiting_.front());
      waiting_.pop_front();
    }
    const GenerationRequest& req = p->group->request;
    const int64_t prompt = int64_t(req.prompt.size());
    // The request reserves what its choices will still take from the pool: choice 0 its pages past the prompt's
    // cached ones (prefix caching, E11 item 2), each fork (n > 1, E11 item 1) its pages past the prompt's full
    // ones, which it shares. Taking an idle cached page spends a free page too. The KV cache keeps the books.
    const KvCache::PrefixMatch match = engine_.match_prompt(req.prompt, p->group->plan.get());
    const std::vector<int64_t> tails = sequence_tails(req);  // [sequences]
    const int32_t need = int32_t(request_pages(prompt, tails, page_size, match.pages));
    if (need + match.idle_pages > kv.pages_available()) {
      std::lock_guard<std::mutex> lock(mu_);
      waiting_.push_front(std::move(p));  // not now: it stays first in line
      return;
    }
    // Everything that can throw happens before the request joins running_, so a failure ends it here, with
    // "error" on every choice, instead of losing it.
    std::vector<std::unique_ptr<Running>> choices;  // [n]
    int32_t seq = -1;
    try {
      for (int32_t c = 0; c < int32_t(tails.size()); ++c) {
        auto r = std::make_unique<Running>();
        r->group = p->group;
        r->choice = c;
        r->scorer = c == req.n;
        SamplingParams sp = req.sampling;
        sp.seed += uint64_t(c);
        if (!r->scorer) r->sampler = std::make_unique<Sampler>(sp);  // submit() checked the parameters
        choices.push_back(std::move(r));
      }
      int32_t cached = 0;
      std::tie(seq, cached) = engine_.create_sequence_for_prompt(req.prompt, p->group->plan.get());
      const bool reserved = kv.reserve(seq, need);
      LCLLM_ASSERT(reserved && cached == match.pages * page_size, "admission: the KV cache changed under the scheduler");
      // Only the first sequence prefills the prompt; the others (n > 1, the scorer) fork its pages (and share its
      // reservation) when the prompt is in.
      choices[0]->seq = seq;
      choices[0]->prefilled = size_t(cached);
    } catch (const std::exception& e) {
      spdlog::error("admitting a request failed: {}", e.what());
      if (seq >= 0) engine_.free_sequence(seq);
      for (int32_t c = 0; c < int32_t(tails.size()); ++c) p->group->handle->push(ending_event(c, "error"));
      observer_.on_request_end(std::chrono::duration<double>(Clock::now() - p->group->arrival).count(), "error");
      continue;
    }
    for (auto& r : choices) running_.push_back(std::move(r));
    running_requests_.fetch_add(1);
    {
      std::lock_guard<std::mutex> lock(p->group->handle->mu_);
      p->group->handle->admitted_ = Clock::now();
    }
  }
}

void Scheduler::run_step() {
  if (in_flight_) {  // async_decode: read the launched step (launching the next one first when it may)
    InFlight current = std::move(*in_flight_);
    in_flight_.reset();
    run_launched_step(std::move(current));
    return;
  }
  // Every sequence with work joins the step, each under its request's plan (the step plan compiles key sets per
  // row, so plans mix freely).
  int32_t budget = engine_.max_step_tokens();
  std::vector<SequenceChunk> chunks;
  std::vector<Running*> owners;      // [n_chunks]
  std::vector<int32_t> prefill_len;  // [n_chunks] prompt tokens in the chunk (0 for decode)
  for (auto& r : running_) {  // decode first: one token each keeps inter-token latency flat
    if (r->prefilled < r->group->request.prompt.size() || budget == 0) continue;
    // Greedy choices without logprobs take the argmax the backend computes: no logits row copied or scanned here.
    const bool argmax_only = !r->scorer && r->sampler->plain_greedy() && r->group->request.logprobs < 0;
    chunks.push_back({r->seq, std::span<const int32_t>(&r->output.back(), 1), AttentionPhase::ATTENTION_PHASE_DECODE,
                      true, r->group->plan.get(), argmax_only});
    owners.push_back(r.get());
    prefill_len.push_back(0);
    --budget;
  }
  for (auto& r : running_) {  // then prompt chunks in arrival order with what is left
    const std::vector<int32_t>& prompt = r->group->request.prompt;
    if (r->prefilled >= prompt.size() || budget == 0 || r->seq < 0) continue;
    size_t take = std::min(prompt.size() - r->prefilled, size_t(budget));
    if (options_.prefill_chunk > 0) {  // fixed chunks: the whole next one or nothing this step
      take = std::min(prompt.size() - r->prefilled, size_t(options_.prefill_chunk));
      if (take > size_t(budget)) continue;
    }
    chunks.push_back({r->seq, std::span<const int32_t>(prompt).subspan(r->prefilled, take),
                      AttentionPhase::ATTENTION_PHASE_PREFILL, r->prefilled + take == prompt.size(),
                      r->group->plan.get()});
    owners.push_back(r.get());
    prefill_len.push_back(int32_t(take));
    budget -= int32_t(take);
  }
  if (chunks.empty()) return;
  // async_decode: a step of greedy decode rows alone is launched, and later steps chain on it.
  if (options_.async_decode && std::all_of(prefill_len.begin(), prefill_len.end(), [](int32_t n) { return n == 0; }) &&
      engine_.can_launch(chunks)) {
    InFlight first;
    try {
      first.step = engine_.step_launch(chunks);
    } catch (const std::exception& e) {
      spdlog::error("engine step failed: {}", e.what());
      for (Running* r : owners) finish_choice(*r, "error");
      std::erase_if(running_, [](const std::unique_ptr<Running>& r) { return r->done; });
      return;
    }
    first.owners = owners;
    run_launched_step(std::move(first));
    return;
  }

  StepOutputs outputs;  // logits [n_logits, vocab] and the argmax-only chunks' tokens, in chunk order
  try {
    outputs = engine_.step_outputs(chunks);
  } catch (const std::exception& e) {
    spdlog::error("engine step failed: {}", e.what());
    for (Running* r : owners) finish_choice(*r, "error");
    for (auto& r : running_) {  // choices waiting to fork a prompt that failed
      if (r->seq < 0 && std::any_of(owners.begin(), owners.end(), [&](Running* o) { return o->group == r->group; })) {
        finish_choice(*r, "error");
      }
    }
    std::erase_if(running_, [](const std::unique_ptr<Running>& r) { return r->done; });
    return;
  }
  const size_t V = size_t(engine_.config().vocab_size);
  size_t row = 0, argmax_row = 0;  // next logits row / next argmax of the outputs
  const auto now = Clock::now();
  int64_t prompt_tokens = 0;
  // [n] the choices that sample this step and the logits row each samples from (forked choices share their
  // parent's last prompt row), or the argmax the backend took for them (argmax_only chunks; -2 where none).
  std::vector<Sampling> samplers;
  for (size_t i = 0; i < chunks.size(); ++i) {
    Running& r = *owners[i];
    r.prefilled += size_t(prefill_len[i]);
    prompt_tokens += prefill_len[i];
    if (!chunks[i].want_logits) continue;
    if (chunks[i].argmax_only) {  // a decode chunk: nothing to fork or cache below
      samplers.push_back({&r, {}, outputs.argmax[argmax_row++]});
      continue;
    }
    const std::span<const float> l(outputs.logits.data() + row++ * V, V);
    samplers.push_back({&r, l});
    if (prefill_len[i] == 0 || r.prefilled < r.group->request.prompt.size()) continue;
    engine_.cache_prompt(r.seq, r.group->request.prompt, r.group->plan.get());  // later requests may reuse it
    for (auto& sibling : running_) {  // the prompt is in: the other choices fork it
      if (sibling->group != r.group || sibling->seq >= 0 || sibling->done) continue;
      try {
        sibling->seq = engine_.fork_sequence(r.seq);
      } catch (const std::exception& e) {
        spdlog::error("forking choice {} failed: {}", sibling->choice, e.what());
        finish_choice(*sibling, "error");
        continue;
      }
      sibling->prefilled = r.prefilled;
      samplers.push_back({sibling.get(), l});
    }
  }
  emit_tokens(samplers, prompt_tokens, now);
}

// Samples (or takes the backend's argmax for) each choice of a finished step and sends its token; a choice that
// stops, reaches max_tokens or fails ends here.
void Scheduler::emit_tokens(const std::vector<Sampling>& samplers, int64_t prompt_tokens, Clock::time_point now) {
  int64_t generated = 0;
  // This step's tokens reach their clients only after the step's counts reached the observer, so that /metrics
  // never lags what a client has already received (a client that reads the metrics right after its last token
  // sees that token counted).
  struct Emitted {
    Running* running;
    TokenEvent event;  // a non-empty finish_reason ends the choice with this token
  };
  std::vector<Emitted> emitted;  // [tokens this step]
  emitted.reserve(samplers.size());
  for (const Sampling& s : samplers) {
    Running& r = *s.running;
    const std::span<const float> l = s.logits;
    if (r.done) continue;
    const GenerationRequest& req = r.group->request;
    TokenEvent ev;
    ev.choice = r.choice;
    if (r.scorer) {  // teacher forcing: score the answer's next id and feed it
      ev.token = req.forced[r.output.size()];
      ev.forced_logprob = log_softmax_at(l, ev.token);
      r.output.push_back(ev.token);
      if (r.output.size() == req.forced.size()) ev.finish_reason = "length";
      emitted.push_back({&r, std::move(ev)});
      continue;
    }
    try {
      if (s.argmax == -1) {  // what Sampler throws for the same logits
        throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "the logits hold a NaN or no value above -inf");
      }
      ev.token = s.argmax >= 0 ? s.argmax : r.sampler->sample(l, req.prompt, r.output);
    } catch (const std::exception& e) {
      spdlog::error("sampling failed: {}", e.what());
      finish_choice(r, "error");
      continue;
    }
    if (req.logprobs >= 0) {
      ev.has_logprobs = true;
      ev.logprobs = logprobs_compute(l, ev.token, req.logprobs);
    }
    const double since = std::chrono::duration<double>(now - (r.output.empty() ? r.group->arrival : r.last_token)).count();
    if (r.output.empty()) observer_.on_first_token(since);
    else observer_.on_next_token(since);
    r.last_token = now;
    r.output.push_back(ev.token);
    ++generated;
    if (std::find(req.stop_ids.begin(), req.stop_ids.end(), ev.token) != req.stop_ids.end()) {
      ev.finish_reason = "stop";
    } else if (req.stop_when && req.stop_when(r.output)) {
      ev.finish_reason = "stop";
    } else if (int32_t(r.output.size()) >= req.max_tokens) {
      ev.finish_reason = "length";
    }
    emitted.push_back({&r, std::move(ev)});
  }
  observer_.on_step_tokens(prompt_tokens, generated);
  publish_gauges();  // likewise: a client holding its first token sees its pages in use
  for (Emitted& e : emitted) {
    const std::string finish = e.event.finish_reason;  // the event moves into the handle
    e.running->group->handle->push(std::move(e.event));
    if (!finish.empty()) finish_choice(*e.running, finish, true);
  }
  forget_done_in_flight();
  std::erase_if(running_, [](const std::unique_ptr<Running>& r) { return r->done; });
}

// The step after `current`, launched before current's tokens are read, when it would be the same decode rows: every
// running choice is one of current's, still greedy, not cancelled or stopped, and current's token is not its last
// by max_tokens. Its tokens come from current's argmax on the device. A choice that current's token stops costs
// the chained step's row (its KV write lands within the request's reserved pages).
std::optional<Scheduler::InFlight> Scheduler::chain_after(const InFlight& current) {
  size_t alive = 0;
  for (const Running* r : current.owners) {
    if (r == nullptr || r->done) return std::nullopt;
    const GenerationRequest& req = r->group->request;
    if (r->group->handle->cancelled() || r->group->handle->choice_stopped(r->choice)) return std::nullopt;
    if (int64_t(r->output.size()) + 1 >= int64_t(req.max_tokens)) return std::nullopt;
    ++alive;
  }
  if (alive != running_.size()) return std::nullopt;  // another choice waits for a prompt step
  static const int32_t kPlaceholder = 0;  // the id embed_chained replaces
  std::vector<SequenceChunk> chunks;     // [rows]
  for (size_t i = 0; i < current.owners.size(); ++i) {
    const Running& r = *current.owners[i];
    SequenceChunk c{r.seq, std::span<const int32_t>(&kPlaceholder, 1), AttentionPhase::ATTENTION_PHASE_DECODE, true,
                    r.group->plan.get(), true};
    c.token_from_previous = int32_t(i);
    chunks.push_back(c);
  }
  if (!engine_.can_launch(chunks)) return std::nullopt;
  InFlight next;
  try {
    next.step = engine_.step_launch(chunks);
  } catch (const std::exception& e) {  // all or nothing: the sequences are as they were; run it unchained later
    spdlog::warn("chaining a decode step failed ({}); running it after this one", e.what());
    return std::nullopt;
  }
  next.owners = current.owners;
  return next;
}

void Scheduler::run_launched_step(InFlight current) {
  in_flight_ = chain_after(current);  // launched before current is read: the device goes on while the host works
  std::vector<int32_t> ids;           // [rows]
  try {
    ids = engine_.step_wait(current.step);
  } catch (const std::exception& e) {
    spdlog::error("engine step failed: {}", e.what());
    settle_in_flight();
    for (Running* r : current.owners) {
      if (r != nullptr && !r->done) finish_choice(*r, "error");
    }
    std::erase_if(running_, [](const std::unique_ptr<Running>& r) { return r->done; });
    return;
  }
  std::vector<Sampling> samplers;  // [alive rows]
  for (size_t i = 0; i < current.owners.size(); ++i) {
    if (current.owners[i] != nullptr && !current.owners[i]->done) samplers.push_back({current.owners[i], {}, ids[i]});
  }
  emit_tokens(samplers, 0, Clock::now());  // drops ended choices from the chained step, then from running_
}

void Scheduler::forget_done_in_flight() {
  if (!in_flight_) return;
  for (Running*& r : in_flight_->owners) {
    if (r != nullptr && r->done) r = nullptr;
  }
  // Every choice of the in-flight step ended: nothing will read its tokens.
  if (std::all_of(in_flight_->owners.begin(), in_flight_->owners.end(), [](const Running* r) { return !r; })) {
    settle_in_flight();
  }
}

void Scheduler::settle_in_flight() {
  if (!in_flight_) return;
  try {
    engine_.step_wait(in_flight_->step);
  } catch (const std::exception& e) {
    spdlog::warn("a discarded decode step failed: {}", e.what());
  }
  in_flight_.reset();
}

// Frees the sequence at once (its pages return to the pool before the next step) and closes the choice. A choice
// that ended with a token already sent its finish event; others get a token-less one.
void Scheduler::finish_choice(Running& r, const std::string& reason, bool announced) {
  if (r.done) return;
  r.done = true;
  if (r.seq >= 0) engine_.free_sequence(r.seq);  // a choice still waiting to fork holds nothing
  if (!announced) r.group->handle->push(ending_event(r.choice, reason));
  if (--r.group->unfinished == 0) {
    running_requests_.fetch_sub(1);
    observer_.on_request_end(std::chrono::duration<double>(Clock::now() - r.group->arrival).count(), reason);
  }
}

void Scheduler::publish_gauges() {
  SchedulerGauges g;
  g.requests_running = running_requests_.load();
  g.sequences_running = int64_t(std::count_if(running_.begin(), running_.end(), [](const auto& r) { return !r->done; }));
  {
    std::lock_guard<std::mutex> lock(mu_);
    g.requests_waiting = int64_t(waiting_.size());
  }
  const KvCache& kv = engine_.kv_cache();
  g.kv_pages_total = kv.n_pages();
  g.kv_pages_used = kv.n_pages() - kv.pages_free();
  g.kv_pages_reserved = kv.pages_reserved();
  const KvCache::PrefixStats ps = kv.prefix_stats();
  g.prefix_query_tokens = ps.query_tokens;
  g.prefix_hit_tokens = ps.hit_tokens;
  g.prefix_evictions = ps.evictions;
  g.prefix_cached_pages = ps.cached_pages;
  observer_.on_gauges(g);
}

}  // namespace lcllm
