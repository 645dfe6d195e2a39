// RoPE inverse frequencies, shared by every backend so CPU and GPU rotate by the same angles.
#pragma once
#include <vector>

#include "io/model_config.h"

namespace lcllm {

// [head_dim / 2] inverse frequencies after the configured scaling (default, linear, llama3), as float32 like
// transformers' rope init functions (modeling_rope_utils.py: _compute_default/linear/llama3_parameters).
std::vector<float> rope_inv_freq(const RopeConfig& rope, int32_t head_dim);

}  // namespace lcllm
