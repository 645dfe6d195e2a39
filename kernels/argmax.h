// Greedy decoding's argmax where the logits are: each row's largest logit, so a greedy step copies one number per
// row to the host instead of a vocab-sized row (128k floats for Llama 3: ~0.5 MB a token), and the host does not
// scan it (docs/DECISIONS.md, session 27).
#pragma once
#include <cstdint>

#include <cuda_runtime_api.h>

namespace lcllm {

struct ArgmaxRowsParams {
  float* out;       // [rows] the index of each row's largest value, lowest on ties, as a float (exact: n < 2^24);
                    // -1 when the row holds a NaN or nothing above -inf (greedy sampling refuses both)
  const float* x;   // [rows, n] fp32
  int32_t rows;
  int32_t n;
};

void launch_argmax_rows(const ArgmaxRowsParams& p, cudaStream_t stream);

}  // namespace lcllm
