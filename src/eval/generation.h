// Greedy generation for evals. Every eval goes through eval_generate: prompts are prefilled one by one (chunked
// through Engine::feed), then all live sequences of a batch decode together, one token each per Engine::step.
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
  double seconds = 0;           // from the start of its prefill to its last token
};

// Greedy (argmax, lowest id on ties: the engine's sampler at temperature 0). Requests run in groups of
// `batch_size` sequences decoded together (the KV cache must hold batch_size prompts + generations).
// `on_done(i, output)` is called as each request finishes, so callers write results as they come. Throws
// lcllm::Error (e.g. a full KV cache).
std::vector<GenOutput> eval_generate(Engine& engine, const Tokenizer& tokenizer, const std::vector<GenRequest>& requests,
                                     int32_t batch_size = 1,
                                     const std::function<void(size_t, const GenOutput&)>& on_done = {});

}  // namespace lcllm
