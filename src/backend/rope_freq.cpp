#include "backend/rope_freq.h"

#include <cmath>
#include <numbers>

namespace lcllm {

std::vector<float> rope_inv_freq(const RopeConfig& rope, int32_t head_dim) {
  const int32_t half = head_dim / 2;
  std::vector<float> inv(static_cast<size_t>(half));
  for (int32_t i = 0; i < half; ++i) {
    // transformers: 1 / base ** (arange(0, dim, 2) / dim), computed in float32.
    float exponent = float(2 * i) / float(head_dim);
    inv[size_t(i)] = 1.0f / std::pow(float(rope.theta), exponent);
  }
  if (rope.type == RopeType::ROPE_TYPE_LINEAR) {
    for (auto& f : inv) f = float(f / rope.factor);
  } else if (rope.type == RopeType::ROPE_TYPE_LLAMA3) {
    // Llama 3.1: wavelengths longer than original_ctx / low_freq_factor are divided by `factor`, shorter than
    // original_ctx / high_freq_factor are kept, and the band between is interpolated smoothly.
    const double old_ctx = double(rope.original_max_position_embeddings);
    const double low_wavelen = old_ctx / rope.low_freq_factor;
    const double high_wavelen = old_ctx / rope.high_freq_factor;
    for (auto& f : inv) {
      const double wavelen = 2.0 * std::numbers::pi / double(f);
      double scaled = wavelen > low_wavelen ? double(f) / rope.factor : double(f);
      const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
      if (medium) {
        const double smooth = (old_ctx / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
        scaled = (1.0 - smooth) * scaled / rope.factor + smooth * scaled;
      }
      f = float(scaled);
    }
  }
  return inv;
}

}  // namespace lcllm
