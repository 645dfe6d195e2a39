// Floors for end-to-end benchmarks (E3 item 4): how fast a forward pass could possibly be, from the work it must
// do and the rates the card delivers (measured in the same run, backend/cuda/cuda_roofline.h).
//   decode floor  = bytes one token must read (every weight once + the K/V of its context) ÷ copy bandwidth
//   prefill floor = FLOPs of the prompt (GEMMs + causal attention) ÷ bf16 GEMM rate
#pragma once
#include <cstdint>

#include "attention/attention_plan.h"
#include "io/model_config.h"
#include "kv/kv_quant.h"

namespace lcllm {

// Multiply-adds of the layers' weight matrices per token (q, k, v, o, gate, up, down), all layers.
int64_t matmul_params_per_token(const ModelConfig& c);
// Key positions the queries at positions [start, start + n) see in total, summed over layers and query heads
// (each query i sees min(i + 1, window) keys; global layers: i + 1).
double attention_key_visits(const ModelConfig& c, int64_t start, int64_t n);
// FLOPs to prefill n tokens after `start` already cached: 2·params·n (GEMMs), 4·head_dim per visited key and query
// head (QKᵀ and PV), and the lm_head for one row.
double prefill_flops(const ModelConfig& c, int64_t start, int64_t n);
// Bytes one decode step at context length `context` (the new token included) must read: the weights
// (`weight_bytes`, as stored on the device) and, per layer, K and V of the positions it sees.
// K and V bytes one token takes in the cache, every layer and KV head (sliding windows not subtracted).
int64_t kv_bytes_per_token(const ModelConfig& c, KvDtype dtype);
double decode_bytes(const ModelConfig& c, double weight_bytes, int64_t context, KvDtype kv_dtype);
// K/V bytes one decode step at context length `context` reads under `plan` (its step plan's key sets: sinks,
// windows and selections; a SPARSE set counts min(gap, its root SELECT layer's k)), all layers and KV heads.
// For the FULL plan this is decode_bytes() without the weights.
double decode_kv_bytes_read(const AttentionPlan& plan, const ModelConfig& c, int64_t context, KvDtype kv_dtype);

}  // namespace lcllm
