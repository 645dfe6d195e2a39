#include "runtime/forward.h"

#include <algorithm>

#include "attention/hip_policy.h"
#include "lcllm/error.h"
#include "runtime/step_plan.h"

namespace lcllm {

namespace {

constexpr int64_t kLogitBufferBytes = int64_t(256) << 20;

// Rows [first, first + n) of a [rows, d] fp32 buffer.
Tensor rows_from(const Tensor& t, int64_t first, int64_t n) {
  Tensor v = t;
  v.data = static_cast<float*>(t.data) + first * t.shape[1];
  v.shape[0] = n;
  return v;
}

// The first n rows of a buffer allocated for max_tokens rows, optionally reshaped.
Tensor rows_of(const Tensor& t, int64_t n) {
  Tensor v = t;
  v.shape[0] = n;
  return v;
}

Tensor as_2d(const Tensor& t, int64_t n, int64_t d) {
  Tensor v = t;
  v.ndim = 2;
  v.shape = {n, d, 0, 0};
  return v;
}

}  // namespace

ForwardBuffers forward_buffers_alloc(Backend& backend, const ModelConfig& c, int32_t max_tokens,
                                     int64_t logit_piece_rows) {
  ForwardBuffers b;
  const int64_t n = max_tokens;
  b.max_tokens = max_tokens;
  b.x = backend.alloc({n, c.hidden_size});
  b.h = backend.alloc({n, c.hidden_size});
  b.q = backend.alloc({n, c.n_heads, c.head_dim});
  b.k = backend.alloc({n, c.n_kv_heads, c.head_dim});
  b.v = backend.alloc({n, c.n_kv_heads, c.head_dim});
  b.attn = backend.alloc({n, c.n_heads, c.head_dim});
  b.gate = backend.alloc({n, c.intermediate_size});
  b.up = backend.alloc({n, c.intermediate_size});
  b.rows = backend.alloc({n, c.hidden_size});
  // Logits come in pieces of at most kLogitBufferBytes (forward_step), not [max_tokens, vocab]: Gemma 3's 262k
  // vocabulary at 4096 tokens per step would hold 4 GiB of fp32 logits for rows a step rarely wants.
  const int64_t budget_rows = kLogitBufferBytes / (int64_t(sizeof(float)) * c.vocab_size);
  const int64_t piece_rows = std::clamp<int64_t>(logit_piece_rows > 0 ? logit_piece_rows : budget_rows, 1, n);
  b.logits = backend.alloc({piece_rows, c.vocab_size});
  b.argmax = backend.alloc({piece_rows});
  return b;
}

namespace {

// forward_step, or with `launched` forward_step_launch: the step's argmax copy is started there, not waited for.
void forward_run(Backend& be, const ModelConfig& c, const ModelWeights& w, const AttentionPlan& plan,
                 ForwardBuffers& buf, const StepInput& in, float* logits_out, int32_t* argmax_out,
                 Backend::HostCopy* launched) {
  const int64_t n = int64_t(in.tokens.size());
  LCLLM_ASSERT(n > 0 && n <= buf.max_tokens, "step larger than the forward buffers");
  LCLLM_ASSERT(plan.layers.size() == size_t(c.n_layers), "plan does not match the model");
  const int64_t H = c.hidden_size;

  Tensor x = rows_of(buf.x, n), h = rows_of(buf.h, n);
  Tensor q = rows_of(buf.q, n), k = rows_of(buf.k, n), v = rows_of(buf.v, n), attn = rows_of(buf.attn, n);
  Tensor gate = rows_of(buf.gate, n), up = rows_of(buf.up, n);
  const Tensor none;

  // The plan compiled for this step: rows, block tables and per (layer, row, KV head) key sets, uploaded once
  // (ARCHITECTURE.md §1); every layer then passes pointers into that upload.
  const size_t n_seq = in.attention.kv_len.size();
  std::vector<const AttentionPlan*> seq_plans(n_seq, &plan);  // [n_seq]
  if (!in.plans.empty()) {
    LCLLM_ASSERT(in.plans.size() == n_seq, "one plan per sequence");
    for (size_t s = 0; s < n_seq; ++s) if (in.plans[s]) seq_plans[s] = in.plans[s];
  }
  const StepPlan step = step_plan_compile(seq_plans, c, in.attention, in.phases, in.logit_rows);
  if (step.n_slots > 0) be.selection_reserve(step.n_slots, step.n_rows * step.n_kv_heads, step.slot_stride);

  // Decode steps (one row per sequence) may be replayed as one recorded graph by the backend, sparse ones too:
  // their key sets and selections live in fixed-size step buffers, and HiP's masks are staged uploads or stay on
  // the device. (A HiP search whose blocks a sequence caches for later steps ends the recording: the backend syncs.)
  bool decode_only = true;
  for (size_t s = 0; decode_only && s + 1 < in.attention.query_start.size(); ++s) {
    decode_only = in.attention.query_start[s + 1] - in.attention.query_start[s] == 1;
  }
  be.step_begin(decode_only);
  if (in.token_from_argmax.empty()) {
    be.embed(x, w.embed, in.tokens, c.embedding_scale);
  } else {
    LCLLM_ASSERT(in.token_from_argmax.size() == in.tokens.size(), "one token_from_argmax entry per token");
    be.embed_chained(x, w.embed, in.tokens, in.token_from_argmax, buf.argmax, c.embedding_scale);
  }
  const int32_t* step_data = be.step_upload(step.data);
  std::vector<int64_t> hip_indptr;  // HiP's host lists of one layer (the masks come back from the backend)
  std::vector<int32_t> hip_positions;

  // Set when the previous layer's sandwich-norm path already left this layer's normed input in h (Gemma 2/3).
  bool h_is_normed = false;

  for (int32_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = w.layers[size_t(l)];
    const LayerConfig& lc = c.layers[size_t(l)];

    // ---- attention block ----
    const MatmulTarget qkv[3] = {{as_2d(q, n, c.q_dim()), L.wq, L.bq},
                                 {as_2d(k, n, c.kv_dim()), L.wk, L.bk},
                                 {as_2d(v, n, c.kv_dim()), L.wv, L.bv}};
    if (h_is_normed) {
      be.matmul_group(h, qkv);
    } else {  // q, k, v = proj(norm(x)); the decode GEMV normalises on the fly
      be.norm_matmul_group(x, L.attn_norm, c.norm_eps, c.norm_one_plus, h, qkv);
    }
    if (c.qk_norm) {  // per head over head_dim, before RoPE (Qwen3, Gemma 3)
      be.rmsnorm(q, q, L.q_norm, c.norm_eps, c.norm_one_plus);
      be.rmsnorm(k, k, L.k_norm, c.norm_eps, c.norm_one_plus);
    }
    be.rope_kv_write(q, k, v, in.positions, lc.rope, l, in.slots);
    if (be.kv_window_active()) be.kv_write_window(l, k, v, in.attention);  // streaming heads' rings

    AttentionParams params;
    params.scale = c.query_scale;
    params.softcap = c.attn_logit_softcap;
    params.sliding_window = lc.sliding_window;
    const AttentionBatch layer_batch = step_plan_layer_batch(step, l, in.attention, step_data);
    const StepLayerPlan& lp = step.layers[size_t(l)];
    // HiP's masks (and its per-sequence state: a multi-row step drops the cached decode masks even where its rows
    // attend densely under dense_below, as the step plan then makes the whole layer).
    HipLayerMasks masks;
    if (lp.hip) masks = attention_layer_hip(be, q, seq_plans, l, layer_batch, step.row_phase, params, in.policy_state,
                                          step.seq_ends_prompt);
    if (lp.dense) {
      LCLLM_ASSERT(!masks.any, "a dense layer has no HiP masks");
      be.attention(attn, q, l, layer_batch, params);
    } else {
      const LayerKeySets keys = step_plan_layer_keys(step, l, step_data);
      if (masks.any) {
        // Lists expanded where the kernels run when the backend can (the GPU); else on the host.
        if (!be.selection_write_hip(step.hip_slot, masks.view(), keys.sets)) {
          step_plan_hip_lists(step, l, masks, hip_indptr, hip_positions);
          be.selection_write(step.hip_slot, hip_indptr, hip_positions);
        }
      }
      be.attention_key_sets(attn, q, l, layer_batch, params, keys);
    }

    // ---- MLP block ----
    const MatmulTarget gate_up[2] = {{gate, L.w_gate, L.b_gate}, {up, L.w_up, L.b_up}};
    if (c.post_attn_norm) {  // Gemma: x += norm(o); h = ffn_norm(x), one fused add + norm
      be.matmul(h, as_2d(attn, n, c.q_dim()), L.wo, L.bo);
      be.rmsnorm(h, h, L.post_attn_norm, c.norm_eps, c.norm_one_plus);
      be.add_rmsnorm(x, h, h, L.ffn_norm, c.norm_eps, c.norm_one_plus);
      be.gated_mlp_hidden(h, nullptr, 0.f, false, h, gate_up, gate, c.activation);
    } else {  // x += o; gate = act(proj(ffn_norm(x))) * proj(ffn_norm(x))
      be.matmul_residual(x, as_2d(attn, n, c.q_dim()), L.wo, L.bo, h);
      be.gated_mlp_hidden(x, &L.ffn_norm, c.norm_eps, c.norm_one_plus, h, gate_up, gate, c.activation);
    }
    // gate (the hidden activation) is read by the down projection alone (gated_mlp_hidden's contract).
    h_is_normed = false;
    if (c.ffn_sandwich_norm) {  // Gemma: x += norm(down); h = the next layer's attention norm of x
      be.matmul(h, gate, L.w_down, L.b_down);
      be.rmsnorm(h, h, L.post_ffn_norm, c.norm_eps, c.norm_one_plus);
      if (l + 1 < c.n_layers) {
        be.add_rmsnorm(x, h, h, w.layers[size_t(l + 1)].attn_norm, c.norm_eps, c.norm_one_plus);
        h_is_normed = true;
      } else {
        be.add_inplace(x, h);
      }
    } else {
      be.matmul_residual(x, gate, L.w_down, L.b_down, h);
    }
  }

  // ---- logits for the requested rows only (decode wants 1 per sequence, parity tests want all) ----
  const int64_t n_out = int64_t(in.logit_rows.size());
  if (n_out == 0) {
    be.step_end();
    return;
  }
  Tensor rows = as_2d(rows_of(buf.rows, n_out), n_out, H);
  be.gather_rows(rows, x, in.logit_rows);
  be.rmsnorm(rows, rows, w.final_norm, c.norm_eps, c.norm_one_plus);
  // Piece by piece through the logits buffer: the first piece belongs to the step (a decode step's graph), later
  // ones (more rows than one piece holds: scoring, parity) run eagerly after it.
  LCLLM_ASSERT(in.argmax_only.empty() || in.argmax_only.size() == size_t(n_out), "one argmax flag per output row");
  const auto wants_argmax = [&](int64_t r) { return !in.argmax_only.empty() && in.argmax_only[size_t(r)] != 0; };
  LCLLM_ASSERT(argmax_out != nullptr || launched != nullptr || std::none_of(in.argmax_only.begin(), in.argmax_only.end(),
                                                                           [](uint8_t f) { return f != 0; }),
               "argmax rows need argmax_out");
  const int64_t piece = buf.logits.shape[0];
  int64_t logits_done = 0, argmax_done = 0;  // rows written to logits_out / argmax_out so far
  std::vector<float> indices;                // [m] one piece's argmax, as Backend::argmax_rows stores them
  for (int64_t first = 0; first < n_out; first += piece) {
    const int64_t m = std::min(piece, n_out - first);
    Tensor logits = as_2d(rows_of(buf.logits, m), m, c.vocab_size);
    be.matmul(logits, rows_from(rows, first, m), w.lm_head, none);
    if (c.final_logit_softcap > 0) be.softcap(logits, c.final_logit_softcap);
    int64_t n_argmax = 0;
    for (int64_t r = first; r < first + m; ++r) n_argmax += wants_argmax(r) ? 1 : 0;
    if (n_argmax > 0) be.argmax_rows(rows_of(buf.argmax, m), logits);
    if (first == 0) be.step_end();
    if (launched != nullptr) {
      LCLLM_ASSERT(n_argmax == n_out && m == n_out, "a launched step's rows all want their argmax, in one piece");
      *launched = be.to_host_begin(buf.argmax, m);
      return;
    }
    if (n_argmax == 0) {  // every row's logits, in one copy
      be.to_host(logits, logits_out + logits_done * c.vocab_size, m * c.vocab_size);
      logits_done += m;
      continue;
    }
    indices.resize(size_t(m));
    be.to_host(buf.argmax, indices.data(), m);
    for (int64_t r = first; r < first + m;) {
      if (wants_argmax(r)) {
        argmax_out[argmax_done++] = int32_t(indices[size_t(r - first)]);
        ++r;
        continue;
      }
      int64_t run = 1;  // consecutive rows wanting logits: one copy
      while (r + run < first + m && !wants_argmax(r + run)) ++run;
      be.to_host(rows_from(logits, r - first, run), logits_out + logits_done * c.vocab_size, run * c.vocab_size);
      logits_done += run;
      r += run;
    }
  }
}

}  // namespace

void forward_step(Backend& be, const ModelConfig& c, const ModelWeights& w, const AttentionPlan& plan,
                  ForwardBuffers& buf, const StepInput& in, float* logits_out, int32_t* argmax_out) {
  forward_run(be, c, w, plan, buf, in, logits_out, argmax_out, nullptr);
}

Backend::HostCopy forward_step_launch(Backend& be, const ModelConfig& c, const ModelWeights& w,
                                      const AttentionPlan& plan, ForwardBuffers& buf, const StepInput& in) {
  Backend::HostCopy launched;
  forward_run(be, c, w, plan, buf, in, nullptr, nullptr, &launched);
  LCLLM_ASSERT(launched.ticket >= 0 || !launched.values.empty() || in.logit_rows.empty(),
               "forward_step_launch: the step has no output rows");
  return launched;
}

}  // namespace lcllm
