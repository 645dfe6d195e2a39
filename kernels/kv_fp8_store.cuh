// Device side of the fp8 KV write (kv/kv_quant.h): the block-wide largest magnitude of a K and a V vector, from which
// every thread derives the same power-of-two scales, and the store of one element. The encoder is the host's own
// function, so the GPU writes the bytes the CPU emulation computes from the same fp32 inputs.
#pragma once
#include <cstdint>

#include "kv/kv_quant.h"

namespace lcllm {

// Largest |k| and |v| over the block (every thread calls it; blockDim.x <= 1024). fmax is exact and order-free.
__device__ __forceinline__ float2 block_max_abs2(float k_abs, float v_abs) {
  __shared__ float2 red[32];
  for (int off = 16; off > 0; off >>= 1) {
    k_abs = fmaxf(k_abs, __shfl_xor_sync(0xffffffffu, k_abs, off));
    v_abs = fmaxf(v_abs, __shfl_xor_sync(0xffffffffu, v_abs, off));
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = (blockDim.x + 31) >> 5;
  __syncthreads();  // red may still be read by an earlier call
  if (lane == 0) red[warp] = make_float2(k_abs, v_abs);
  __syncthreads();
  float2 m = red[0];
  for (int w = 1; w < n_warps; ++w) m = make_float2(fmaxf(m.x, red[w].x), fmaxf(m.y, red[w].y));
  return m;
}

// The scales of one (slot, head) K/V pair: exponent bytes (stored) and the reciprocals the encoder multiplies by.
struct Fp8PairScale {
  uint16_t stored;  // K's exponent byte | V's << 8
  float k_inv, v_inv;
};

__device__ __forceinline__ Fp8PairScale fp8_pair_scale(float2 amax) {
  const uint8_t ek = fp8_scale_exponent(amax.x), ev = fp8_scale_exponent(amax.y);
  return Fp8PairScale{uint16_t(ek | (uint16_t(ev) << 8)), fp8_scale_value(uint8_t(254 - ek)),
                      fp8_scale_value(uint8_t(254 - ev))};
}

}  // namespace lcllm
