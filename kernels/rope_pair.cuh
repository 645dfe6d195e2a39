// The rotary embedding of one pair of a head's vector, shared by the rope kernels (kernels/rope.cu,
// kernels/rope_kv_write.cu): elements (i, i + head_dim / 2) turned by the angle position · inv_freq[i]. The cosine
// and sine are taken in double like the CPU reference, so both rotate by the same rounded angles.
#pragma once

namespace lcllm {

// (a, b) -> (a cos - b sin, b cos + a sin) at angle (a float, as the CPU rounds it) = pos * inv_freq.
__device__ __forceinline__ float2 rope_pair(float pos, float inv_freq, float a, float b) {
  double s, c;
  sincos(double(pos * inv_freq), &s, &c);
  const float cf = float(c), sf = float(s);
  return make_float2(a * cf - b * sf, b * cf + a * sf);
}

}  // namespace lcllm
