// Random weights in a model's real shapes, for benchmarks on a bare config.json (`lcllm bench
// configs/models/llama-3.1-8b.json`): no checkpoint on disk, the same binding path as a real one.
#pragma once
#include <cstdint>

#include "io/model_config.h"
#include "io/safetensors.h"

namespace lcllm {

// bf16 tensors for every name model_weight_specs(config) lists: matrices hold seeded uniform noise with the
// standard deviation of transformers' initializer (0.02), norm weights 1, biases 0. All tensors of a kind share one
// host buffer (the largest tensor's size), so an 8B model costs ~1 GB of host memory, not 16 GB.
Checkpoint synthetic_checkpoint(const ModelConfig& config, uint64_t seed, const std::string& source);

}  // namespace lcllm
