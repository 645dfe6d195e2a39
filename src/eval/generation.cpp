#include "eval/generation.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>

#include "lcllm/error.h"
#include "runtime/scheduler.h"
#include "tokenizer/incremental_detokenizer.h"

namespace lcllm {

namespace {

using Clock = std::chrono::steady_clock;

// One request in flight: its handle, the text so far and when it was submitted.
struct InFlight {
  size_t index = 0;
  std::shared_ptr<RequestHandle> handle;
  std::unique_ptr<IncrementalDetokenizer> detok;
  std::string text;
  Clock::time_point start;
  GenOutput out;
  bool generating = false;  // the sampled choice (0) still runs for us
  double logprob = 0;       // the scoring choice's sum so far
};

}  // namespace

std::vector<GenOutput> eval_generate(Engine& engine, const Tokenizer& tok, const std::vector<GenRequest>& requests,
                                     int32_t batch_size, const std::function<void(size_t, const GenOutput&)>& on_done) {
  if (batch_size < 1) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--batch-size must be >= 1");
  std::vector<int32_t> base_stop = engine.config().eos_token_ids;
  base_stop.insert(base_stop.end(), tok.stop_ids().begin(), tok.stop_ids().end());
  const bool any_forced = std::any_of(requests.begin(), requests.end(), [](const GenRequest& r) { return !r.forced.empty(); });

  // The scheduler runs the engine (continuous batching, chunked prefill, forks for the scoring choices); this
  // thread keeps `batch_size` requests in flight, so each request's `seconds` is its own and not a queue's.
  SchedulerOptions so;
  so.max_num_seqs = batch_size * (any_forced ? 2 : 1);
  so.max_waiting = batch_size;
  so.max_model_len = INT32_MAX;  // the KV cache bounds each request (submit names the shortfall)
  auto waker = std::make_shared<EventWaker>();
  std::vector<GenOutput> results(requests.size());
  std::map<size_t, InFlight> flights;  // by request index
  // Declared after `flights` so it is destroyed first: an exception cancels and joins before the handles go.
  Scheduler scheduler(engine, so);

  auto submit = [&](size_t i) {
    const GenRequest& r = requests[i];
    if (r.prompt.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "an eval prompt is empty");
    InFlight f;
    f.index = i;
    f.start = Clock::now();
    f.detok = std::make_unique<IncrementalDetokenizer>(tok, true);
    f.out.finish_reason = "length";
    if (r.max_new_tokens < 1 && r.forced.empty()) {  // nothing to run
      results[i] = f.out;
      if (on_done) on_done(i, results[i]);
      return;
    }
    GenerationRequest g;
    g.prompt = r.prompt;
    g.max_tokens = std::max(r.max_new_tokens, 0);
    g.n = r.max_new_tokens < 1 ? 0 : 1;
    g.sampling.temperature = 0.0f;  // greedy: argmax, lowest id on ties
    g.stop_ids = base_stop;
    g.stop_ids.insert(g.stop_ids.end(), r.extra_stop_ids.begin(), r.extra_stop_ids.end());
    g.forced = r.forced;
    f.generating = g.n == 1;
    try {
      f.handle = scheduler.submit(std::move(g), waker);
    } catch (const RequestRefused& e) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, std::string("eval request ") + std::to_string(i) + ": " +
                                                              e.what() + " (raise the KV cache or lower --batch-size)");
    }
    flights.emplace(i, std::move(f));
  };
  // Takes one event of request f; the sampled choice is 0 and the scoring one is n (0 or 1).
  auto take = [&](InFlight& f, const TokenEvent& e) {
    const GenRequest& r = requests[f.index];
    const bool scoring = !r.forced.empty() && e.choice == (r.max_new_tokens < 1 ? 0 : 1);
    if (!e.finish_reason.empty() && e.finish_reason != "stop" && e.finish_reason != "length") {
      throw Error(ErrorKind::ERROR_KIND_UNSUPPORTED, "eval request " + std::to_string(f.index) +
                                                      ": generation ended with \"" + e.finish_reason + "\" (see the log)");
    }
    if (scoring) {
      if (e.token >= 0) f.logprob += e.forced_logprob;
      return;
    }
    if (!f.generating || e.token < 0) return;  // after our own stop, or its token-less close
    f.out.tokens.push_back(e.token);
    bool stop = std::find(base_stop.begin(), base_stop.end(), e.token) != base_stop.end() ||
                std::find(r.extra_stop_ids.begin(), r.extra_stop_ids.end(), e.token) != r.extra_stop_ids.end();
    if (!stop) {
      f.text += f.detok->push(e.token);
      stop = r.stop_at_sentence_end && f.text.find_first_of(".\n") != std::string::npos;
    }
    if (stop) f.out.finish_reason = "stop";
    if (stop || int32_t(f.out.tokens.size()) >= r.max_new_tokens) {
      f.generating = false;
      f.handle->stop_choice(0);  // a sentence end the scheduler cannot see: free the sequence now
    }
  };

  size_t next = 0;
  uint64_t seen = 0;
  while (next < requests.size() || !flights.empty()) {
    while (flights.size() < size_t(batch_size) && next < requests.size()) submit(next++);
    for (auto it = flights.begin(); it != flights.end();) {
      InFlight& f = it->second;
      for (const TokenEvent& e : f.handle->wait(std::chrono::milliseconds(0))) take(f, e);
      if (!f.handle->finished()) {
        ++it;
        continue;
      }
      const GenRequest& r = requests[f.index];
      GenOutput& out = results[f.index];
      out = std::move(f.out);
      out.text = tok.decode(out.tokens, true);
      out.seconds = std::chrono::duration<double>(Clock::now() - f.start).count();
      if (!r.forced.empty()) {
        out.forced_logprob = f.logprob;
        out.forced_tokens = int32_t(r.forced.size());
      }
      if (on_done) on_done(f.index, out);
      it = flights.erase(it);
    }
    if (!flights.empty()) seen = waker->wait(seen, std::chrono::milliseconds(100));
  }
  return results;
}

}  // namespace lcllm
