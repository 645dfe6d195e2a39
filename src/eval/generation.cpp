#include "eval/generation.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "lcllm/error.h"
#include "runtime/logprobs.h"
#include "runtime/sampler.h"
#include "tokenizer/incremental_detokenizer.h"

namespace lcllm {

namespace {

using Clock = std::chrono::steady_clock;

// One request in flight: its sequence, the text so far and when it started.
struct Live {
  size_t index;
  int32_t seq;
  std::unique_ptr<IncrementalDetokenizer> detok;
  std::string text;
  int32_t last = -1;  // the token fed in the next decode step
  Clock::time_point start;
  GenOutput out;
  bool done = false;
  bool scorer = false;     // a fork fed the request's forced answer instead of its own choices
  size_t forced_pos = 0;   // scorer: the index in `forced` of the token its next logits score
  double logprob = 0;      // scorer: the sum so far
};

}  // namespace

std::vector<GenOutput> eval_generate(Engine& engine, const Tokenizer& tok, const std::vector<GenRequest>& requests,
                                     int32_t batch_size, const std::function<void(size_t, const GenOutput&)>& on_done) {
  if (batch_size < 1) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--batch-size must be >= 1");
  std::vector<int32_t> base_stop = engine.config().eos_token_ids;
  base_stop.insert(base_stop.end(), tok.stop_ids().begin(), tok.stop_ids().end());
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  Sampler sampler(greedy);  // greedy keeps no state between calls, so one serves every sequence
  const size_t vocab = size_t(engine.config().vocab_size);
  const size_t per_step = size_t(std::max(1, std::min(batch_size, engine.max_step_tokens())));

  std::vector<GenOutput> results(requests.size());
  std::vector<int32_t> outstanding(requests.size(), 0);  // [requests]: live sequences (generator, scorer) left
  std::vector<std::unique_ptr<Live>> live;
  struct FreeAll {  // an exception mid-batch must not leak sequences
    Engine& e;
    std::vector<std::unique_ptr<Live>>& live;
    ~FreeAll() {
      for (auto& l : live) if (l && !l->done) e.free_sequence(l->seq);
    }
  } free_all{engine, live};

  // Takes a sampled token for `l`: records it, applies the stop rules; returns true when the request ended.
  auto accept = [&](Live& l, int32_t id) {
    const GenRequest& r = requests[l.index];
    l.out.tokens.push_back(id);
    bool stop = std::find(base_stop.begin(), base_stop.end(), id) != base_stop.end() ||
                std::find(r.extra_stop_ids.begin(), r.extra_stop_ids.end(), id) != r.extra_stop_ids.end();
    if (!stop) {
      l.text += l.detok->push(id);
      stop = r.stop_at_sentence_end && l.text.find_first_of(".\n") != std::string::npos;
    }
    if (stop) l.out.finish_reason = "stop";
    l.last = id;
    return stop || int32_t(l.out.tokens.size()) >= r.max_new_tokens;
  };
  auto finish = [&](Live& l) {
    engine.free_sequence(l.seq);
    l.done = true;
    GenOutput& r = results[l.index];
    if (l.scorer) {
      r.forced_logprob = l.logprob;
      r.forced_tokens = int32_t(requests[l.index].forced.size());
    } else {
      const double lp = r.forced_logprob;
      const int32_t n = r.forced_tokens;
      r = l.out;
      r.text = tok.decode(l.out.tokens, true);
      r.seconds = std::chrono::duration<double>(Clock::now() - l.start).count();
      r.forced_logprob = lp;
      r.forced_tokens = n;
    }
    if (--outstanding[l.index] == 0 && on_done) on_done(l.index, r);
  };
  // Scores the forced token at the scorer's position from `logits` and moves on; true when the answer is scored.
  auto score = [&](Live& l, std::span<const float> logits) {
    const std::vector<int32_t>& forced = requests[l.index].forced;
    l.logprob += log_softmax_at(logits, forced[l.forced_pos]);
    l.last = forced[l.forced_pos];
    return ++l.forced_pos == forced.size();
  };

  for (size_t first = 0; first < requests.size(); first += size_t(batch_size)) {
    const size_t last = std::min(requests.size(), first + size_t(batch_size));
    live.clear();
    // Prefill each prompt and take its first token.
    for (size_t i = first; i < last; ++i) {
      const GenRequest& r = requests[i];
      if (r.prompt.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "an eval prompt is empty");
      auto l = std::make_unique<Live>();
      l->index = i;
      l->start = Clock::now();
      l->detok = std::make_unique<IncrementalDetokenizer>(tok, true);
      l->out.finish_reason = "length";
      l->seq = engine.create_sequence();
      live.push_back(std::move(l));
      Live& cur = *live.back();
      outstanding[i] = 1;
      if (r.max_new_tokens < 1 && r.forced.empty()) {
        finish(cur);
        continue;
      }
      std::vector<float> logits = engine.feed(cur.seq, r.prompt, false);  // [vocab]
      if (!r.forced.empty()) {
        auto s = std::make_unique<Live>();
        s->index = i;
        s->scorer = true;
        s->start = cur.start;
        s->seq = engine.fork_sequence(cur.seq);
        live.push_back(std::move(s));
        Live& sc = *live.back();
        ++outstanding[i];
        if (score(sc, logits)) finish(sc);
      }
      // `cur` stays valid: live holds pointers.
      if (r.max_new_tokens < 1 || accept(cur, sampler.sample(logits, r.prompt, cur.out.tokens))) finish(cur);
    }
    // Decode every live sequence together, one token each per step.
    while (true) {
      std::vector<Live*> active;
      for (auto& l : live) if (!l->done) active.push_back(l.get());
      if (active.empty()) break;
      for (size_t b = 0; b < active.size(); b += per_step) {
        const size_t e = std::min(active.size(), b + per_step);
        std::vector<SequenceChunk> chunks;  // [e - b]
        for (size_t k = b; k < e; ++k) {
          SequenceChunk c;
          c.seq = active[k]->seq;
          c.tokens = std::span<const int32_t>(&active[k]->last, 1);
          c.phase = AttentionPhase::ATTENTION_PHASE_DECODE;
          chunks.push_back(c);
        }
        std::vector<float> logits = engine.step(chunks);  // [e - b, vocab]
        for (size_t k = b; k < e; ++k) {
          Live& l = *active[k];
          std::span<const float> row(logits.data() + (k - b) * vocab, vocab);
          const bool ended = l.scorer ? score(l, row) : accept(l, sampler.sample(row, requests[l.index].prompt, l.out.tokens));
          if (ended) finish(l);
        }
      }
    }
  }
  return results;
}

}  // namespace lcllm
