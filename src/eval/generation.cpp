#include "eval/generation.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>

#include "lcllm/error.h"
#include "runtime/scheduler.h"

namespace lcllm {

namespace {

using Clock = std::chrono::steady_clock;

// One request in flight: its handle and what has come back so far.
struct InFlight {
  std::shared_ptr<RequestHandle> handle;
  GenOutput out;
  double logprob = 0;  // the scoring choice's sum so far
  bool reported = false;
};

}  // namespace

std::vector<GenOutput> eval_generate(Engine& engine, const Tokenizer& tok, const std::vector<GenRequest>& requests,
                                     int32_t batch_size, int32_t prefill_chunk,
                                     const std::function<void(size_t, const GenOutput&)>& on_done) {
  if (batch_size < 1) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--batch-size must be >= 1");
  if (prefill_chunk < 1) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--chunk-size must be >= 1");
  std::vector<int32_t> base_stop = engine.config().eos_token_ids;
  base_stop.insert(base_stop.end(), tok.stop_ids().begin(), tok.stop_ids().end());
  const bool any_forced = std::any_of(requests.begin(), requests.end(), [](const GenRequest& r) { return !r.forced.empty(); });

  // The scheduler runs the engine (continuous batching, chunked prefill, forks for the scoring choices). Every
  // request is queued at once and every stop rule runs on the engine thread, and prompts are prefilled in fixed
  // chunks: the schedule, and so every result, does not depend on this thread's timing (docs/DECISIONS.md).
  // Sequences in flight: batch_size requests (no more than there are), two each when answers are scored.
  const int64_t per_request = any_forced ? 2 : 1;
  const int64_t want_seqs = std::min<int64_t>(batch_size, std::max<int64_t>(1, int64_t(requests.size()))) * per_request;
  SchedulerOptions so;
  so.max_waiting = int32_t(std::min<size_t>(requests.size() + 1, INT32_MAX));
  so.max_model_len = INT32_MAX;  // the KV cache bounds each request (submit names the shortfall)
  so.prefill_chunk = prefill_chunk;
  // The step holds one prefill chunk beside the decode rows (EvalSession::load_engine sizes it so).
  const int64_t seqs = std::min<int64_t>(want_seqs, int64_t(engine.max_step_tokens()) - so.prefill_chunk);
  if (seqs < per_request) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "--chunk-size " + std::to_string(so.prefill_chunk) + " leaves no room for decode rows in the engine's " +
                    "step of " + std::to_string(engine.max_step_tokens()) + " tokens");
  }
  so.max_num_seqs = int32_t(seqs);
  auto waker = std::make_shared<EventWaker>();
  std::vector<GenOutput> results(requests.size());
  std::vector<InFlight> flights(requests.size());  // [requests]
  std::vector<size_t> submitted;                   // request indices, in submission order
  std::vector<GenerationRequest> batch;
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenRequest& r = requests[i];
    if (r.prompt.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "an eval prompt is empty");
    flights[i].out.finish_reason = "length";
    if (r.max_new_tokens < 1 && r.forced.empty()) continue;  // nothing to run
    GenerationRequest g;
    g.prompt = r.prompt;
    g.max_tokens = std::max(r.max_new_tokens, 0);
    g.n = r.max_new_tokens < 1 ? 0 : 1;
    g.sampling.temperature = 0.0f;  // greedy: argmax, lowest id on ties
    g.stop_ids = base_stop;
    g.stop_ids.insert(g.stop_ids.end(), r.extra_stop_ids.begin(), r.extra_stop_ids.end());
    g.forced = r.forced;
    if (r.stop_at_sentence_end) {  // NIAH/RULER: the answer ends at its first '.' or newline
      g.stop_when = [&tok](std::span<const int32_t> output) {
        return tok.decode(output, true).find_first_of(".\n") != std::string::npos;
      };
    }
    batch.push_back(std::move(g));
    submitted.push_back(i);
  }
  // Declared after the outputs it writes through: an exception joins the engine thread before they go.
  Scheduler scheduler(engine, so);
  std::vector<std::shared_ptr<RequestHandle>> handles;
  try {
    handles = scheduler.submit_all(std::move(batch), waker);
  } catch (const RequestRefused& e) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                std::string("an eval request: ") + e.what() + " (raise the KV cache or lower --batch-size)");
  }
  for (size_t k = 0; k < submitted.size(); ++k) flights[submitted[k]].handle = handles[k];
  for (size_t i = 0; i < requests.size(); ++i) {  // requests with nothing to run are done now
    if (flights[i].handle) continue;
    results[i] = flights[i].out;
    flights[i].reported = true;
    if (on_done) on_done(i, results[i]);
  }

  // Takes one event of request i; the sampled choice is 0 and the scoring one is n (0 or 1).
  auto take = [&](size_t i, const TokenEvent& e) {
    const GenRequest& r = requests[i];
    InFlight& f = flights[i];
    if (!e.finish_reason.empty() && e.finish_reason != "stop" && e.finish_reason != "length") {
      throw Error(ErrorKind::ERROR_KIND_UNSUPPORTED, "eval request " + std::to_string(i) + ": generation ended with \"" +
                                                         e.finish_reason + "\" (see the log)");
    }
    const bool scoring = !r.forced.empty() && e.choice == (r.max_new_tokens < 1 ? 0 : 1);
    if (scoring) {
      if (e.token >= 0) f.logprob += e.forced_logprob;
      return;
    }
    if (e.token >= 0) f.out.tokens.push_back(e.token);
    if (e.finish_reason == "stop") f.out.finish_reason = "stop";
  };

  size_t done = 0, pending = submitted.size();
  uint64_t seen = 0;
  while (done < pending) {
    for (size_t i : submitted) {
      InFlight& f = flights[i];
      if (f.reported) continue;
      for (const TokenEvent& e : f.handle->wait(std::chrono::milliseconds(0))) take(i, e);
      if (!f.handle->finished()) continue;
      const GenRequest& r = requests[i];
      GenOutput& out = results[i];
      out = std::move(f.out);
      out.text = tok.decode(out.tokens, true);
      const auto admitted = f.handle->admitted_at();
      out.seconds = admitted ? std::chrono::duration<double>(Clock::now() - *admitted).count() : 0.0;
      if (!r.forced.empty()) {
        out.forced_logprob = f.logprob;
        out.forced_tokens = int32_t(r.forced.size());
      }
      f.reported = true;
      ++done;
      if (on_done) on_done(i, out);
    }
    if (done < pending) seen = waker->wait(seen, std::chrono::milliseconds(100));
  }
  return results;
}

}  // namespace lcllm
