// The forward pass, written once for every backend (ARCHITECTURE.md §1):
//   x = embed(tokens)·scale
//   per layer: h = norm(x); q,k,v = proj(h); [qk-norm]; rope(q,k); write k,v to the paged cache;
//              a = attention(plan[l]); o = proj(a); [post-attn norm]; x += o;
//              h = norm(x); m = down(act(gate(h)) * up(h)); [post-ffn norm]; x += m
//   logits = lm_head(norm(x)) [softcapped]
#pragma once
#include <span>

#include "attention/attention_plan.h"
#include "attention/sequence_policy_state.h"
#include "backend/backend.h"
#include "runtime/model_weights.h"

namespace lcllm {

// Activations for up to max_tokens tokens per step, allocated once on the backend.
struct ForwardBuffers {
  int32_t max_tokens = 0;
  Tensor x;        // [max_tokens, hidden]      residual stream
  Tensor h;        // [max_tokens, hidden]      normed input of a sublayer / sublayer output
  Tensor q;        // [max_tokens, n_heads, head_dim]
  Tensor k, v;     // [max_tokens, n_kv_heads, head_dim]
  Tensor attn;     // [max_tokens, n_heads, head_dim]
  Tensor gate, up; // [max_tokens, intermediate]
  Tensor rows;     // [max_tokens, hidden]      rows whose logits are wanted
  Tensor logits;   // [piece_rows, vocab] one piece of a step's logits (at most 256 MiB, at most max_tokens rows)
  Tensor argmax;   // [piece_rows] each logits row's argmax (Backend::argmax_rows), for the rows wanting only that
};

// logit_piece_rows: rows of the logits buffer; 0 = as many as 256 MiB of fp32 logits hold (at most max_tokens).
// A step that wants more rows computes them piece by piece (tests pass a small value to cover that path).
ForwardBuffers forward_buffers_alloc(Backend& backend, const ModelConfig& config, int32_t max_tokens,
                                     int64_t logit_piece_rows = 0);

// One step: a ragged batch of sequences, each contributing consecutive tokens.
struct StepInput {
  std::span<const int32_t> tokens;      // [n]
  std::span<const int32_t> positions;   // [n]
  std::span<const int64_t> slots;       // [n] KV slot each token's k/v is written to
  AttentionBatch attention;             // sequences' query ranges, kv lengths and pages
  // [n_seq] which half of the plan each sequence uses; empty: every sequence is in prefill.
  std::span<const AttentionPhase> phases;
  std::span<const int32_t> logit_rows;  // [n_out] rows (indices into tokens) whose logits are returned
  // [n_out] or empty: 1 where the caller takes only that row's argmax (greedy decoding), computed where the logits
  // are, so a decode step copies one number to the host instead of a vocab-sized row; 0 (or empty): the logits.
  std::span<const uint8_t> argmax_only = {};
  // [n_seq] state kept across steps per sequence (HiP decode masks; sequence_policy_state.h); empty: none kept.
  std::span<SequencePolicyState* const> policy_state = {};
  // [n_seq] each sequence's attention plan (one step may mix plans); empty: every sequence runs forward_step's.
  std::span<const AttentionPlan* const> plans = {};
  // [n] or empty: >= 0 where the token is not tokens[i] but the argmax row token_from_argmax[i] of the step run
  // before this one, still on the backend (a chained decode step, forward_step_launch).
  std::span<const int32_t> token_from_argmax = {};
};

// Runs the step: the plans are compiled into the step's key sets (runtime/step_plan.h), SELECT layers leave their
// top-k in the step's selection slots on the backend and later SPARSE layers read them (ARCHITECTURE.md §4.3).
// `plan` serves every sequence `input.plans` does not name. Writes the fp32 logits of the output rows that want
// them to `logits_out` ([n_logits, vocab], in row order) and the argmax of those with input.argmax_only set to
// `argmax_out` ([n_argmax], in row order; -1 for a row with a NaN or no value above -inf), both host memory.
void forward_step(Backend& backend, const ModelConfig& config, const ModelWeights& weights, const AttentionPlan& plan,
                  ForwardBuffers& buffers, const StepInput& input, float* logits_out, int32_t* argmax_out = nullptr);

// The same step for output rows that all want only their argmax (greedy decoding), returned before the backend has
// run it: the argmax is copying to the host in the returned copy (Backend::to_host_end waits for it). The next step
// may then take its tokens from this one's argmax on the backend (token_from_argmax) and be recorded and launched
// while this one runs, so the device does not wait for the host between steps — what vLLM calls async scheduling
// and SGLang its overlap scheduler.
Backend::HostCopy forward_step_launch(Backend& backend, const ModelConfig& config, const ModelWeights& weights,
                                      const AttentionPlan& plan, ForwardBuffers& buffers, const StepInput& input);

}  // namespace lcllm
