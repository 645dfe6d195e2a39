// Greedy generation for evals. Every eval goes through eval_generate, which drives runtime/Scheduler as `run` and
// `serve` do (E11 item 1): continuous batching with chunked prefill, and teacher-forced scoring as a fork of the
// prompt (GenerationRequest::forced).
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
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
  // Teacher-forced scoring (empty: none): the expected answer's ids as they continue the prompt. A fork of the
  // prefilled sequence is fed these ids instead of its own choices, so GenOutput::forced_logprob measures what the
  // attention plan kept of the answer even when a small model answers in words (E10 item 7).
  std::vector<int32_t> forced;
};

struct GenOutput {
  std::vector<int32_t> tokens;  // generated ids (a stop id included when one ended it)
  std::string text;             // decoded without special tokens
  std::string finish_reason;    // "stop" (stop id or sentence end) or "length"
  double seconds = 0;           // from its admission (its prefill's start) to its last token
  // Σ_i ln p(forced[i] | prompt, forced[<i]) under the engine's plan (forced[0] from the prefill's logits, the
  // rest from decode steps, as generation sees them); NaN when the request had no forced answer.
  double forced_logprob = std::numeric_limits<double>::quiet_NaN();
  int32_t forced_tokens = 0;
};

// Greedy (argmax, lowest id on ties: the engine's sampler at temperature 0). Up to `batch_size` requests run at
// once, decoded together; the next is admitted as one finishes (the KV cache should hold batch_size prompts +
// generations; the scheduler admits only what fits, and a request that can never fit is an error). Results do not
// depend on thread timing (all requests queued at once, fixed prefill chunks, stop rules on the engine thread): a
// run repeats exactly. On the CPU they do not depend on batch_size either; the GPU picks kernels by the step's
// shape (GEMV or GEMM, decode or prefill attention, split counts), so other batch sizes may differ in the last bits.
// `on_done(i, output)` is called as each request finishes (its generation and its forced scoring), so callers
// write results as they come. A request with a forced answer holds a second sequence while it runs (a fork that
// shares the prompt's pages): size the KV cache for it (EvalSession::load_engine's
// `forced_tokens`). Throws lcllm::Error (e.g. a full KV cache).
// `prefill_chunk` (>= 1): prompt tokens per forward step, the evals' --chunk-size (the engine's step must also hold
// the decode rows; EvalSession::load_engine sizes it so).
std::vector<GenOutput> eval_generate(Engine& engine, const Tokenizer& tokenizer, const std::vector<GenRequest>& requests,
                                     int32_t batch_size, int32_t prefill_chunk,
                                     const std::function<void(size_t, const GenOutput&)>& on_done = {});

}  // namespace lcllm
