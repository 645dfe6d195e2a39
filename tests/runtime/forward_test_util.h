// One prefill step through forward_step with every row's logits wanted, on any backend: what the logits-in-pieces
// tests compare (tests/runtime/test_forward_logits.cpp on the CPU, tests/cuda/test_cuda_forward.cpp on the GPU).
#pragma once
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attention/attention_presets.h"
#include "backend/backend.h"
#include "io/safetensors.h"
#include "kv/kv_cache.h"
#include "models/model_family.h"
#include "runtime/forward.h"
#include "runtime/model_weights.h"

namespace lcllm::test {

// [prompt, vocab] logits of the model in `dir` prefilling `prompt` in one step under FULL attention on `be`, through
// a logits buffer of `piece_rows` rows (0: forward_buffers_alloc's default). Unwritten entries stay NaN.
inline std::vector<float> prefill_all_logits(const std::string& dir, Backend& be, std::span<const int32_t> prompt,
                                             int64_t piece_rows) {
  const ModelConfig c = model_config_load(dir);
  Checkpoint ckpt = Checkpoint::open(dir);
  const ModelWeights w = model_weights_bind(c, ckpt, be);
  const int32_t n = int32_t(prompt.size()), n_pages = n / 16 + 2;
  KvCache kv(KvCacheConfig{16, n_pages});
  be.kv_reserve(c.n_layers, n_pages, 16, c.n_kv_heads, c.head_dim);
  ForwardBuffers buf = forward_buffers_alloc(be, c, n, piece_rows);
  const AttentionPlan plan = attention_preset_resolve("full", nlohmann::json::object(), c);
  const int32_t seq = kv.create_sequence();
  const AppendPlan append = kv.append_tokens(seq, n);
  const std::vector<int32_t> seqs = {seq};
  const CsrPages pages = kv.export_csr(seqs);
  std::vector<int32_t> positions(static_cast<size_t>(n)), query_start{0, n}, kv_len{n}, rows(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) positions[size_t(i)] = rows[size_t(i)] = i;
  const AttentionPhase phases[1] = {AttentionPhase::ATTENTION_PHASE_PREFILL};
  StepInput in;
  in.tokens = prompt;
  in.positions = positions;
  in.slots = append.slots;
  in.attention = AttentionBatch{query_start, positions, kv_len, &pages};
  in.phases = phases;
  in.logit_rows = rows;
  std::vector<float> logits(size_t(n) * size_t(c.vocab_size), std::nanf(""));
  forward_step(be, c, w, plan, buf, in, logits.data());
  return logits;
}

}  // namespace lcllm::test
