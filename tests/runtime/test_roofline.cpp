// Floors for the end-to-end benchmarks, against counts worked out by hand.
#include <catch2/catch.hpp>

#include "runtime/roofline.h"
#include "tests/attention/policy_test_util.h"

using namespace lcllm;

namespace {
ModelConfig tiny(int32_t window_every_other) {
  ModelConfig c;
  c.hidden_size = 8;
  c.intermediate_size = 16;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.head_dim = 4;
  c.vocab_size = 10;
  c.layers.resize(2);
  c.layers[1].sliding_window = window_every_other;
  return c;
}
}  // namespace

TEST_CASE("matmul params: q, k, v, o, gate, up, down per layer", "[roofline]") {
  // q 8x8 + k 8x4 + v 8x4 + o 8x8 + 3 x 8x16 = 64 + 32 + 32 + 64 + 384 = 576 per layer.
  CHECK(matmul_params_per_token(tiny(0)) == 2 * 576);
}

TEST_CASE("attention key visits: causal and sliding windows", "[roofline]") {
  // Global layers, positions 0..3: 1+2+3+4 = 10 keys per head, 2 layers x 2 heads.
  CHECK(attention_key_visits(tiny(0), 0, 4) == Approx(10 * 2 * 2));
  // Layer 1 with window 2: min(i+1, 2) for i=0..3 = 1+2+2+2 = 7; layer 0: 10.
  CHECK(attention_key_visits(tiny(2), 0, 4) == Approx((10 + 7) * 2));
  // A chunk after a cached prefix: positions 4..5 see 5+6 = 11 (global) and 2+2 = 4 (window 2).
  CHECK(attention_key_visits(tiny(2), 4, 2) == Approx((11 + 4) * 2));
  // Long contexts stay exact in double: n(n+1)/2 for n = 2^20.
  CHECK(attention_key_visits(tiny(0), 0, 1 << 20) == Approx(double(1 << 20) * double((1 << 20) + 1) / 2 * 4));
}

TEST_CASE("prefill FLOPs and decode bytes", "[roofline]") {
  ModelConfig c = tiny(2);
  // 2·1152·4 GEMM + 4·head_dim·34 attention + 2·8·10 lm_head.
  CHECK(prefill_flops(c, 0, 4) == Approx(2.0 * 1152 * 4 + 4.0 * 4 * 34 + 160));
  // Context 5, bf16: layer 0 reads 5 positions, layer 1 (window 2) reads 2; K and V of kv_dim 4.
  CHECK(decode_bytes(c, 1000, 5, KvDtype::KV_DTYPE_BF16) == Approx(1000 + 2.0 * (5 + 2) * 4 * 2));
  // fp8: one byte per element and one scale byte per (position, KV head) vector (head_dim 4, one KV head).
  CHECK(decode_bytes(c, 1000, 5, KvDtype::KV_DTYPE_FP8_E4M3) == Approx(1000 + 2.0 * (5 + 2) * (4 + 1)));
  CHECK(kv_bytes_per_token(c, KvDtype::KV_DTYPE_FP8_E4M3) == 2 * 2 * (4 + 1));
  CHECK(kv_bytes_per_token(c, KvDtype::KV_DTYPE_F32) == 2 * 2 * 4 * 4);
}

TEST_CASE("KV bytes a decode step reads under a plan: FULL = decode_bytes' K/V, sparse plans their sets", "[roofline]") {
  ModelConfig c = tiny(3);  // layer 1 has a 3-token window
  c.n_kv_heads = 2;
  c.n_heads = 4;
  const int64_t ctx = 100, elem = 2;
  const KvDtype bf16 = KvDtype::KV_DTYPE_BF16;
  // FULL: decode_bytes without the weights.
  CHECK(decode_kv_bytes_read(attention_plan_full(c), c, ctx, bf16) == decode_bytes(c, 0.0, ctx, bf16));
  // Layer 0 streams {sink 4, recent 8}, layer 1 (windowed) stays FULL: (4 + 8) + 3 keys per KV head.
  using policy_test::policy;
  AttentionPlan stream = attention_plan_full(c, "s");
  attention_plan_set(stream, 0, AttentionPhase::ATTENTION_PHASE_DECODE, 0, 2,
                     policy(AttentionPolicy::ATTENTION_POLICY_STREAM, 0, -1, 4, 8));
  CHECK(decode_kv_bytes_read(stream, c, ctx, bf16) == double((4 + 8 + 3) * 2) * 2.0 * c.head_dim * elem);
  // Layer 0 selects k = 10 (it reads everything), layer 1 reuses it: but layer 1 only sees 3 keys.
  AttentionPlan tidal = attention_plan_full(c, "t");
  attention_plan_set(tidal, 0, AttentionPhase::ATTENTION_PHASE_DECODE, 0, 2, policy(AttentionPolicy::ATTENTION_POLICY_SELECT, 10));
  attention_plan_set(tidal, 1, AttentionPhase::ATTENTION_PHASE_DECODE, 0, 2,
                     policy(AttentionPolicy::ATTENTION_POLICY_SPARSE, 0, 0));
  CHECK(decode_kv_bytes_read(tidal, c, ctx, bf16) == double((100 + 3) * 2) * 2.0 * c.head_dim * elem);
  // With the reusing layer global, it reads min(k, gap) = 10 keys per head.
  ModelConfig global = c;
  global.layers[1].sliding_window = 0;
  CHECK(decode_kv_bytes_read(tidal, global, ctx, bf16) == double((100 + 10) * 2) * 2.0 * c.head_dim * elem);
  // HiP on layer 0's head 1 reads sink 4 + recent 8 + k 16 keys; head 0 stays FULL (100); layer 1 its window (3).
  AttentionPlan hip = attention_plan_full(c, "h");
  HeadGroupPolicy h;
  h.policy = AttentionPolicy::ATTENTION_POLICY_HIP;
  h.hip.k = 16;
  h.hip.sink = 4;
  h.hip.recent = 8;
  attention_plan_set(hip, 0, AttentionPhase::ATTENTION_PHASE_DECODE, 1, 2, h);
  CHECK(decode_kv_bytes_read(hip, c, ctx, bf16) == double(100 + 28 + 3 * 2) * 2.0 * c.head_dim * elem);
}
