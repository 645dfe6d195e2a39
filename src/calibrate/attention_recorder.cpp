#include "calibrate/attention_recorder.h"

#include <algorithm>

namespace lcllm {

AttentionRecorder::AttentionRecorder(int32_t n_threads, int32_t n_layers, int32_t n_kv_heads) : cpu_(n_threads) {
  last_.n_layers = n_layers;
  last_.n_kv_heads = n_kv_heads;
}

void AttentionRecorder::attention(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                  const AttentionParams& params) {
  cpu_.attention(out, q, layer, batch, params);
  const size_t n_seq = batch.kv_len.size();
  if (!recording_ || n_seq != 1 || batch.query_start[1] - batch.query_start[0] != 1) return;
  const int32_t n_keys = batch.kv_len[0];
  const int64_t group = q.dim(1) / last_.n_kv_heads;
  if (layer == 0) {
    last_.n_keys = n_keys;
    last_.group = int32_t(group);
    last_.mass.assign(size_t(last_.n_layers) * size_t(last_.n_kv_heads) * size_t(n_keys), 0.f);
    last_.head_argmax.assign(size_t(last_.n_layers) * size_t(last_.n_kv_heads) * size_t(group), 0);
  }
  for (int32_t h = 0; h < last_.n_kv_heads; ++h) {
    const int32_t begin = cpu_.attention_group_mass(q, layer, batch, params, 0, 0, h, scores_, mass_, &argmax_);
    float* row = last_.mass.data() + (size_t(layer) * size_t(last_.n_kv_heads) + size_t(h)) * size_t(n_keys);
    for (size_t i = 0; i < mass_.size(); ++i) row[size_t(begin) + i] = float(mass_[i] / double(group));
    std::copy(argmax_.begin(), argmax_.end(),
              last_.head_argmax.begin() + std::ptrdiff_t((size_t(layer) * size_t(last_.n_kv_heads) + size_t(h)) * size_t(group)));
  }
}

}  // namespace lcllm
