// Token embedding lookup (+ Gemma's sqrt(hidden) scale): out[i] = table[ids[i]] * scale. A chained decode step
// (Backend::embed_chained) takes row i's id, where from_argmax[i] >= 0, from the previous step's argmax instead.
#pragma once
#include <cstdint>

#include <cuda_runtime_api.h>

namespace lcllm {

struct EmbedParams {
  float* out;              // [n, d] fp32
  const uint16_t* table;   // [vocab, d] bf16
  const int32_t* ids;      // [n] (validated by the engine)
  const int32_t* from_argmax;  // [n] or null: >= 0 takes the id from argmax[from_argmax[i]]
  const float* argmax;         // [rows] fp32 ids (argmax_rows' output; -1 reads as id 0, the host drops that row)
  int32_t n;
  int64_t d;
  float scale;
};

void launch_embed(const EmbedParams& p, cudaStream_t stream);

}  // namespace lcllm
