#include "eval/generation.h"

#include <algorithm>
#include <chrono>

#include "lcllm/error.h"
#include "runtime/sampler.h"
#include "tokenizer/incremental_detokenizer.h"

namespace lcllm {

namespace {

GenOutput generate_one(Engine& engine, const Tokenizer& tok, const GenRequest& req) {
  if (req.prompt.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "an eval prompt is empty");
  std::vector<int32_t> stop = engine.config().eos_token_ids;
  stop.insert(stop.end(), tok.stop_ids().begin(), tok.stop_ids().end());
  stop.insert(stop.end(), req.extra_stop_ids.begin(), req.extra_stop_ids.end());
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  Sampler sampler(greedy);
  IncrementalDetokenizer detok(tok, true);

  GenOutput out;
  out.finish_reason = "length";
  const auto t0 = std::chrono::steady_clock::now();
  const int32_t seq = engine.create_sequence();
  struct Free {
    Engine& e;
    int32_t seq;
    ~Free() { e.free_sequence(seq); }
  } free_on_exit{engine, seq};
  std::vector<float> logits = engine.feed(seq, req.prompt, false);  // [vocab]
  std::string text;
  for (int32_t i = 0; i < req.max_new_tokens; ++i) {
    const int32_t id = sampler.sample(logits, req.prompt, out.tokens);
    out.tokens.push_back(id);
    if (std::find(stop.begin(), stop.end(), id) != stop.end()) {
      out.finish_reason = "stop";
      break;
    }
    text += detok.push(id);
    if (req.stop_at_sentence_end && text.find_first_of(".\n") != std::string::npos) {
      out.finish_reason = "stop";
      break;
    }
    if (i + 1 < req.max_new_tokens) {
      logits = engine.feed(seq, std::span<const int32_t>(&id, 1), false, 0, AttentionPhase::ATTENTION_PHASE_DECODE);
    }
  }
  out.text = tok.decode(out.tokens, true);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace

std::vector<GenOutput> eval_generate(Engine& engine, const Tokenizer& tokenizer, const std::vector<GenRequest>& requests,
                                     const std::function<void(size_t, const GenOutput&)>& on_done) {
  std::vector<GenOutput> out;
  out.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    out.push_back(generate_one(engine, tokenizer, requests[i]));
    if (on_done) on_done(i, out.back());
  }
  return out;
}

}  // namespace lcllm
