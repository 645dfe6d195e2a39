#include "runtime/synthetic_weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "runtime/model_weights.h"

namespace lcllm {
namespace {

uint16_t bf16_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);  // round to nearest even
}

// splitmix64: a fast, well-mixed stream for filling gigabytes of noise.
uint64_t next_random(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct Buffers {
  std::vector<uint16_t> noise;  // [max matrix numel] bf16, uniform with std 0.02
  std::vector<uint16_t> ones;   // [max vector numel] bf16 1.0
  std::vector<uint16_t> zeros;  // [max vector numel] bf16 0.0
};

}  // namespace

Checkpoint synthetic_checkpoint(const ModelConfig& config, uint64_t seed, const std::string& source) {
  const std::vector<WeightSpec> specs = model_weight_specs(config);
  int64_t max_matrix = 0, max_vector = 0;
  for (const WeightSpec& s : specs) {
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    int64_t& largest = s.shape.size() >= 2 ? max_matrix : max_vector;
    largest = std::max(largest, n);
  }
  auto buffers = std::make_shared<Buffers>();
  buffers->noise.resize(size_t(max_matrix));
  const float half_width = 0.02f * std::sqrt(3.0f);  // uniform(-a, a) has std a / sqrt(3)
  uint64_t state = seed;
  for (uint16_t& x : buffers->noise) {
    const float u = float(next_random(state) >> 40) * (1.0f / float(1u << 24));  // [0, 1)
    x = bf16_of((2.0f * u - 1.0f) * half_width);
  }
  buffers->ones.assign(size_t(max_vector), bf16_of(1.0f));
  buffers->zeros.assign(size_t(max_vector), 0);

  std::vector<TensorView> views;
  views.reserve(specs.size());
  for (const WeightSpec& s : specs) {
    TensorView v;
    v.name = s.name;
    v.dtype = DType::DTYPE_BF16;
    v.shape = s.shape;
    v.nbytes = size_t(v.numel()) * sizeof(uint16_t);
    v.file = source + " (random weights)";
    const bool is_bias = s.name.size() >= 5 && s.name.compare(s.name.size() - 5, 5, ".bias") == 0;
    const std::vector<uint16_t>& src = s.shape.size() >= 2 ? buffers->noise : is_bias ? buffers->zeros : buffers->ones;
    v.data = reinterpret_cast<const std::byte*>(src.data());
    views.push_back(std::move(v));
  }
  return Checkpoint::in_memory(std::move(views), buffers, source);
}

}  // namespace lcllm
