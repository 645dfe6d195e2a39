// Greedy generation for evals. All evals go through eval_generate, so switching to batched decoding (the E7
// Engine::step) changes this one function: today it runs the requests one sequence at a time through Engine::feed.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "tokenizer/tokenizer.h"

namespace lcllm {

struct GenRequest {
  std::vector<int32_t> prompt;        // [prompt tokens]
  int32_t max_new_tokens = 32;
  bool stop_at_sentence_end = false;  // NIAH/RULER: stop once the text has a '.' or a newline
  std::vector<int32_t> extra_stop_ids;  // besides the model's EOS and the tokenizer's end-of-turn ids
};

struct GenOutput {
  std::vector<int32_t> tokens;  // generated ids (a stop id included when one ended it)
  std::string text;             // decoded without special tokens
  std::string finish_reason;    // "stop" (stop id or sentence end) or "length"
  double seconds = 0;           // prefill + decode wall time of this request
};

// Greedy (argmax, lowest id on ties: the engine's sampler at temperature 0). `on_done(i, output)` is called as
// each request finishes (so callers can write results as they come). Throws lcllm::Error (e.g. a prompt longer than the KV cache).
std::vector<GenOutput> eval_generate(Engine& engine, const Tokenizer& tokenizer, const std::vector<GenRequest>& requests,
                                     const std::function<void(size_t, const GenOutput&)>& on_done = {});

}  // namespace lcllm
