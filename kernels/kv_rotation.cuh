// Device side of the fp8 KV cache's Hadamard rotation (kv/kv_rotation.h): the block rotates vectors held in shared
// memory with the host's butterflies, stage by stage in the same order, so the GPU rounds the values the CPU
// emulation rounds (additions and subtractions of the same operands, then one multiply by the same constant).
#pragma once
#include <cstdint>

#include "kv/kv_rotation.h"

namespace lcllm {

// The largest head_dim a write kernel rotates (kv_rotated): one vector per block in shared memory.
constexpr int32_t kMaxRotatedDim = 256;

// x[v] <- H x[v] for each of the NV vectors x[0..NV) of n floats in shared memory (n a power of two; the threads
// stride over a stage's n / 2 butterflies, so any block size works). Every thread of the block calls it; it starts
// and ends with a barrier, so the caller may write the vectors just before and read them just after.
template <int NV>
__device__ __forceinline__ void block_rotate(float* const (&x)[NV], int32_t n) {
  const int32_t half = n / 2;
  for (int32_t len = 1; len < n; len <<= 1) {
    __syncthreads();
    for (int32_t t = int32_t(threadIdx.x); t < half; t += int32_t(blockDim.x)) {
      const int32_t j = (t / len) * 2 * len + t % len;  // the butterfly (j, j + len) of this stage
#pragma unroll
      for (int v = 0; v < NV; ++v) {
        const float u = x[v][j], w = x[v][j + len];
        x[v][j] = u + w;
        x[v][j + len] = u - w;
      }
    }
  }
  __syncthreads();
  const float s = kv_rotation_norm(n);
  for (int32_t t = int32_t(threadIdx.x); t < n; t += int32_t(blockDim.x)) {
#pragma unroll
    for (int v = 0; v < NV; ++v) x[v][t] *= s;
  }
  __syncthreads();
}

// x <- H x for one vector of 32 E floats held by a warp, lane l holding elements l + 32 j in x[j]: the butterflies of
// len < 32 pair lanes (shuffles), those of len >= 32 pair slots within a lane. The same stages in the same order as
// block_rotate, each element the same sum or difference of the same operands, so the same values — without shared
// memory or barriers (rope_kv_write's fp8 path: its per-layer latency is on the decode step's critical path).
template <int E>
__device__ __forceinline__ void warp_rotate(float (&x)[E]) {
  static_assert(E >= 1 && (E & (E - 1)) == 0, "the rotation's length is a power of two");
  const int lane = int(threadIdx.x) & 31;
#pragma unroll
  for (int len = 1; len < 32; len <<= 1) {
#pragma unroll
    for (int j = 0; j < E; ++j) {
      const float partner = __shfl_xor_sync(0xffffffffu, x[j], len);
      x[j] = (lane & len) ? partner - x[j] : x[j] + partner;  // upper: u - w with u the partner; lower: u + w
    }
  }
#pragma unroll
  for (int d = 1; d < E; d <<= 1) {  // len = 32 d
#pragma unroll
    for (int j = 0; j < E; ++j) {
      if ((j & d) == 0) {
        const float u = x[j], w = x[j + d];
        x[j] = u + w;
        x[j + d] = u - w;
      }
    }
  }
  const float s = kv_rotation_norm(32 * E);
#pragma unroll
  for (int j = 0; j < E; ++j) x[j] *= s;
}

}  // namespace lcllm
