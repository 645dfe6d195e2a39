#include "kernels/rope_kv_write.h"

#include <cuda_bf16.h>

#include "kernels/cuda_check.h"
#include "kernels/kv_fp8_store.cuh"
#include "kernels/kv_rotation.cuh"
#include "kernels/pdl.cuh"
#include "kernels/rope_pair.cuh"

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------

// fp8 caches at head_dim 64, 128, 256 (half a multiple of 32): one warp per (token, head) — kRopeWarps heads a block,
// so that long prefill chunks keep full occupancy (32 blocks an SM at most) — lane l holding elements
// l + 32 j of its row (and of v) in x[j] (y[j]); rope pair m = elements (l + 32 m, l + 32 m + half) = slots
// (m, m + E/2).
// The Hadamard rotation by shuffles (warp_rotate) and the vector's largest magnitudes by shuffles: no shared memory
// and no barriers, where the block path below runs 7 butterfly stages and a reduction through shared memory, each
// behind a barrier (7.1 µs a decode layer under ncu against bf16's 4.9, H100,
// bench/results/decode_step_breakdown_h100_2026-12-07/; the fp8 ratio target is what this is for). Same arithmetic as
// the block path, so the same stored bytes.
constexpr bool rope_fp8_warp_path(int32_t head_dim) { return head_dim == 64 || head_dim == 128 || head_dim == 256; }
constexpr int32_t kRopeWarps = 4;

template <int E>
__device__ __forceinline__ void rope_kv_write_fp8_warp(const RopeKvWriteParams& p, float* row, int64_t t, int32_t h,
                                                      bool is_k, bool store, int64_t dst, float pos) {
  constexpr int H = E / 2;        // rope pairs per lane
  constexpr int32_t half = 16 * E;  // head_dim / 2
  const int lane = int(threadIdx.x) & 31;
  const bool rotate = kv_rotated(p.kv.dtype, p.head_dim);
  float x[E], y[E];  // [slot]: element lane + 32 slot of the roped row, of v
#pragma unroll
  for (int m = 0; m < H; ++m) {
    const int32_t i = lane + 32 * m;
    const float2 r = rope_pair(pos, p.inv_freq[i], row[i], row[i + half]);
    x[m] = r.x;
    x[m + H] = r.y;
    if (is_k || !rotate) {  // k leaves unrotated: kv_write_window rotates the windowed heads' own copy
      row[i] = x[m];
      row[i + half] = x[m + H];
    }
    y[m] = y[m + H] = 0.f;
    if (store) {
      y[m] = p.v[(t * p.n_kv_heads + h) * p.head_dim + i];
      y[m + H] = p.v[(t * p.n_kv_heads + h) * p.head_dim + i + half];
    }
  }
  if (rotate && (!is_k || store)) {
    warp_rotate(x);
    if (is_k) warp_rotate(y);
    if (!is_k) {  // attention reads the rotated query
#pragma unroll
      for (int j = 0; j < E; ++j) row[lane + 32 * j] = x[j];
    }
  }
  if (!store) return;  // uniform over the warp
  float k_abs = 0.f, v_abs = 0.f;
#pragma unroll
  for (int j = 0; j < E; ++j) {
    k_abs = fmaxf(k_abs, fabsf(x[j]));
    v_abs = fmaxf(v_abs, fabsf(y[j]));
  }
  for (int off = 16; off > 0; off >>= 1) {
    k_abs = fmaxf(k_abs, __shfl_xor_sync(0xffffffffu, k_abs, off));
    v_abs = fmaxf(v_abs, __shfl_xor_sync(0xffffffffu, v_abs, off));
  }
  const Fp8PairScale sc = fp8_pair_scale(make_float2(k_abs, v_abs));
  uint8_t* kd = static_cast<uint8_t*>(p.k_pool) + dst;
  uint8_t* vd = static_cast<uint8_t*>(p.v_pool) + dst;
#pragma unroll
  for (int j = 0; j < E; ++j) {
    kd[lane + 32 * j] = fp8_e4m3_encode(x[j] * sc.k_inv);
    vd[lane + 32 * j] = fp8_e4m3_encode(y[j] * sc.v_inv);
  }
  if (lane == 0) p.scale_pool[p.kv.scale_index(p.slots[t], p.kv_index[h])] = sc.stored;
}

// Block (token, head) over the n_heads query heads then the n_kv_heads key heads; one thread per rotation pair
// (i, i + head_dim/2). Key-head blocks also store the rotated k pair and the same two elements of v into the pool.
// (The first version ran one 256-thread block per token: 12 µs a decode layer on the H100 for 20 KB of data,
// latency-bound on 14 serial rounds with an fp64 sincos each; ncu, 2026-11-25.)
__global__ void kernel_rope_kv_write(RopeKvWriteParams p) {
  pdl_release();  // decode attention, launched as its dependent, copies older keys while this runs
  const bool warp_path = p.kv.dtype == KvDtype::KV_DTYPE_FP8_E4M3 && rope_fp8_warp_path(p.head_dim);
  const int64_t t = blockIdx.x;
  // The warp path: a head per warp; the block path: a head per block.
  const int32_t head = warp_path ? int32_t(blockIdx.y) * kRopeWarps + int32_t(threadIdx.x >> 5) : int32_t(blockIdx.y);
  if (head >= p.n_heads + p.n_kv_heads) return;  // the warp path's last block (whole warps)
  const int32_t half = p.head_dim / 2;
  const bool is_k = head >= p.n_heads;
  const int32_t h = is_k ? head - p.n_heads : head;
  float* row = is_k ? p.k + (t * p.n_kv_heads + h) * p.head_dim : p.q + (t * p.n_heads + h) * p.head_dim;
  const float pos = float(p.positions[t]);
  const bool store = is_k && !((p.ring_heads >> h) & 1ull);  // windowed heads: CudaBackend::kv_write_window stores them
  const int64_t dst = store ? p.kv.offset(p.slots[t], p.kv_index[h]) : 0;
  if (warp_path) {
    switch (p.head_dim) {
      case 64: rope_kv_write_fp8_warp<2>(p, row, t, h, is_k, store, dst, pos); return;
      case 128: rope_kv_write_fp8_warp<4>(p, row, t, h, is_k, store, dst, pos); return;
      default: rope_kv_write_fp8_warp<8>(p, row, t, h, is_k, store, dst, pos); return;
    }
  }
  if (p.kv.dtype == KvDtype::KV_DTYPE_FP8_E4M3) {
    // Other head_dims (rotated for powers of two below 64, plain otherwise). Rope; rotate (kv/kv_rotation.h: a
    // query block its q, a stored key block its k and v); the vector's largest magnitudes (the block: half <= 128 <=
    // blockDim.x, one pair per thread); encode. Every branch below is uniform over the block (dtype, head kind and
    // store are per block), so its barriers are safe.
    const int32_t i = threadIdx.x;
    const bool rotate = kv_rotated(p.kv.dtype, p.head_dim);
    float ra = 0.f, rb = 0.f, va = 0.f, vb = 0.f;
    if (i < half) {
      const float2 r = rope_pair(pos, p.inv_freq[i], row[i], row[i + half]);
      ra = r.x;
      rb = r.y;
      if (is_k || !rotate) {  // k leaves unrotated: kv_write_window rotates the windowed heads' own copy
        row[i] = ra;
        row[i + half] = rb;
      }
      if (store) {
        va = p.v[(t * p.n_kv_heads + h) * p.head_dim + i];
        vb = p.v[(t * p.n_kv_heads + h) * p.head_dim + i + half];
      }
    }
    if (rotate && (!is_k || store)) {
      __shared__ float rot[2][kMaxRotatedDim];  // [q or k | v][head_dim]
      if (i < half) {
        rot[0][i] = ra;
        rot[0][i + half] = rb;
        rot[1][i] = va;
        rot[1][i + half] = vb;
      }
      if (is_k) {
        float* const kv[2] = {rot[0], rot[1]};
        block_rotate(kv, p.head_dim);
      } else {
        float* const qv[1] = {rot[0]};
        block_rotate(qv, p.head_dim);
      }
      if (i < half) {
        ra = rot[0][i];
        rb = rot[0][i + half];
        va = rot[1][i];
        vb = rot[1][i + half];
        if (!is_k) {  // attention reads the rotated query
          row[i] = ra;
          row[i + half] = rb;
        }
      }
    }
    if (!store) return;  // uniform over the block
    const Fp8PairScale sc = fp8_pair_scale(block_max_abs2(fmaxf(fabsf(ra), fabsf(rb)), fmaxf(fabsf(va), fabsf(vb))));
    if (i < half) {
      uint8_t* kd = static_cast<uint8_t*>(p.k_pool) + dst;
      uint8_t* vd = static_cast<uint8_t*>(p.v_pool) + dst;
      kd[i] = fp8_e4m3_encode(ra * sc.k_inv);
      kd[i + half] = fp8_e4m3_encode(rb * sc.k_inv);
      vd[i] = fp8_e4m3_encode(va * sc.v_inv);
      vd[i + half] = fp8_e4m3_encode(vb * sc.v_inv);
    }
    if (i == 0) p.scale_pool[p.kv.scale_index(p.slots[t], p.kv_index[h])] = sc.stored;
    return;
  }
  for (int32_t i = threadIdx.x; i < half; i += blockDim.x) {
    const float2 r = rope_pair(pos, p.inv_freq[i], row[i], row[i + half]);
    const float ra = r.x, rb = r.y;
    row[i] = ra;
    row[i + half] = rb;
    if (store) {
      auto* kd = static_cast<__nv_bfloat16*>(p.k_pool) + dst;
      auto* vd = static_cast<__nv_bfloat16*>(p.v_pool) + dst;
      const float* v = p.v + (t * p.n_kv_heads + h) * p.head_dim;
      kd[i] = __float2bfloat16_rn(ra);
      kd[i + half] = __float2bfloat16_rn(rb);
      vd[i] = __float2bfloat16_rn(v[i]);
      vd[i + half] = __float2bfloat16_rn(v[i + half]);
    }
  }
}

// ---- launchers ----------------------------------------------------------------------------------------------

void launch_rope_kv_write(const RopeKvWriteParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  const int32_t half = p.head_dim / 2;
  const int32_t heads = p.n_heads + p.n_kv_heads;
  if (p.kv.dtype == KvDtype::KV_DTYPE_FP8_E4M3 && rope_fp8_warp_path(p.head_dim)) {
    kernel_rope_kv_write<<<dim3(unsigned(p.n), unsigned((heads + kRopeWarps - 1) / kRopeWarps)), 32 * kRopeWarps, 0,
                           stream>>>(p);
  } else {
    const unsigned threads = unsigned(half < 32 ? 32 : half > 128 ? 128 : (half + 31) / 32 * 32);
    kernel_rope_kv_write<<<dim3(unsigned(p.n), unsigned(heads)), threads, 0, stream>>>(p);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace lcllm
