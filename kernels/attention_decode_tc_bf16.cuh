// The bf16 half of the tensor-core decode (attention_decode_tc.cu): one warp's online softmax over 16-key tiles of a
// bf16 cache, head-major (the GQA group's heads on the MMA's M rows; versions 5-5e, docs/KERNEL_NOTES.md). bf16 caches
// are read at the memory system's rate this way (H200: 4.15 TB/s at 512k), so they keep the layout the fp8 path left
// (attention_decode_tc_fp8.cuh).
#pragma once

#include <cstdint>

#include "kernels/attention_common.cuh"

namespace lcllm {

// The bf16 path's merge buffer, [4 warps][16 rows][D + 8] floats: a thread stores float2 (dims 8 dt + 2 t4, + 1), so
// a half-warp's 16 float2 land in 32 distinct banks.
template <int D>
constexpr int32_t bf16_merge_stride() { return D + 8; }
template <int D>
__device__ __forceinline__ int32_t bf16_merge_index(int32_t row, int32_t dim) {
  return row * bf16_merge_stride<D>() + dim;
}

// One warp's state over its tiles for a bf16 cache, head-major: the GQA group's heads are the M rows of
// mma.m16n8k16 (rows g, g + 8 of thread (g, t4)), S = Q K^T with q as bf16 hi + lo (q exact to ~2^-17, as the bf16
// keys deserve), O += P V; K and V fragments come through ldmatrix (V with .trans) from the swizzled ring.
template <int D>
struct Bf16HeadMajorDecode {
  static constexpr int KK = D / 16;  // k-steps of Q K^T
  static constexpr int DT = D / 8;   // n-tiles of O

  uint32_t qa[KK][4], ql[KK][4];  // Q's A fragments, hi and lo: heads g (+ 8), dims 16 kk + 8 (e >> 1) + 2 t4
  uint32_t k_off[4], v_off[4];    // ldmatrix addresses in the swizzled tiles (attention_common.cuh)
  float o[DT][4];                 // O: heads g (+ 8 in [2], [3]), dims 8 dt + 2 t4 (+ 1)
  float m[2], l[2];               // per row: running max (log2 units), this thread's share of the denominator

  // q: the query row's [group][D] floats; heads past `group` are zero. v_tile_bytes: V's offset after K in a stage.
  __device__ __forceinline__ void init(const float* q, int32_t group, float qmul, int32_t g, int32_t t4, int32_t lane,
                                       uint32_t v_tile_bytes) {
#pragma unroll
    for (int kk = 0; kk < KK; ++kk) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int32_t head = g + 8 * (e & 1);
        float2 x = make_float2(0.f, 0.f);
        if (head < group) x = *reinterpret_cast<const float2*>(q + int64_t(head) * D + 16 * kk + 8 * (e >> 1) + 2 * t4);
        x.x *= qmul;
        x.y *= qmul;
        qa[kk][e] = pack_bf16(x.x, x.y);
        const float2 hf = bf2_to_f2(qa[kk][e]);
        ql[kk][e] = pack_bf16(x.x - hf.x, x.y - hf.y);
      }
    }
    swizzled_kv_ldmatrix_offsets<D>(lane, v_tile_bytes, k_off, v_off);
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.f;
    m[0] = m[1] = -INFINITY;
    l[0] = l[1] = 0.f;
  }

  // One 16-key tile at st_k (K, then V at + 16 D bf16), ldmatrix-swizzled; keys k0 + i at or past `end` masked.
  __device__ __forceinline__ void tile(const unsigned char* st_k, int32_t k0, int32_t end, float softcap, int32_t t4) {
    // 1. S = Q K^T (hi + lo), 16 rows x 16 keys; column 2 t4 + (e & 1) of n-tile nt is key 8 nt + 2 t4 + (e & 1).
    // Partial sums per n-tile (even / odd k-steps x q hi / lo): chains of KK / 2 dependent MMAs instead of 2 KK.
    float s[2][4], sp[2][4][4];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int c = 0; c < 4; ++c) sp[nt][c][0] = sp[nt][c][1] = sp[nt][c][2] = sp[nt][c][3] = 0.f;
    }
    const uint32_t tile_u32 = smem_u32(st_k);
#pragma unroll
    for (int kk = 0; kk < KK; ++kk) {
      uint32_t b[4];
      ldmatrix_x4(b, tile_u32 + k_off[kk & 3] + uint32_t((kk >> 2) * 128));
      mma_bf16_16816(sp[0][kk & 1], qa[kk], b[0], b[1]);
      mma_bf16_16816(sp[1][kk & 1], qa[kk], b[2], b[3]);
      mma_bf16_16816(sp[0][2 + (kk & 1)], ql[kk], b[0], b[1]);
      mma_bf16_16816(sp[1][2 + (kk & 1)], ql[kk], b[2], b[3]);
    }
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = (sp[nt][0][e] + sp[nt][1][e]) + (sp[nt][2][e] + sp[nt][3][e]);
        if (softcap > 0.f) x = softcap * tanhf(x / softcap) * kLog2e;
        if (k0 + nt * 8 + 2 * t4 + (e & 1) >= end) x = -INFINITY;
        s[nt][e] = x;
      }
    }
    // 2. Online softmax (log2 domain).
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float mx = fmaxf(fmaxf(s[0][2 * i], s[0][2 * i + 1]), fmaxf(s[1][2 * i], s[1][2 * i + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[i], mx);
      const float mu = m_new == -INFINITY ? 0.f : m_new;
      const float alpha = exp2_ftz(m[i] - mu);
      m[i] = m_new;
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
        s[nt][2 * i] = exp2_ftz(s[nt][2 * i] - mu);
        s[nt][2 * i + 1] = exp2_ftz(s[nt][2 * i + 1] - mu);
        sum += s[nt][2 * i] + s[nt][2 * i + 1];
      }
      l[i] = l[i] * alpha + sum;
      if (__any_sync(0xffffffffu, alpha != 1.f)) {  // skipped once the rows' maxima settle: most tiles
#pragma unroll
        for (int dt = 0; dt < DT; ++dt) {
          o[dt][2 * i] *= alpha;
          o[dt][2 * i + 1] *= alpha;
        }
      }
    }
    // 3. O += P V (P in bf16: p <= 1).
    uint32_t pa[4];
    pa[0] = pack_bf16(s[0][0], s[0][1]);
    pa[1] = pack_bf16(s[0][2], s[0][3]);
    pa[2] = pack_bf16(s[1][0], s[1][1]);
    pa[3] = pack_bf16(s[1][2], s[1][3]);
#pragma unroll
    for (int dp = 0; dp < DT / 2; ++dp) {
      uint32_t b[4];
      ldmatrix_x4_trans(b, tile_u32 + v_off[dp & 3] + uint32_t((dp >> 2) * 128));
      mma_bf16_16816(o[2 * dp], pa, b[0], b[1]);
      mma_bf16_16816(o[2 * dp + 1], pa, b[2], b[3]);
    }
  }

  // The warp's unnormalised partials: sM, sL [4 warps][16], sO through bf16_merge_index; rows past `group` are not
  // stored (the merge never reads them).
  __device__ __forceinline__ void write_merge(float* sM, float* sL, float* sO, int32_t warp, int32_t group, int32_t g,
                                              int32_t t4) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
      l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
      const int32_t row = g + 8 * i;
      if (t4 == 0) {
        sM[warp * 16 + row] = m[i];
        sL[warp * 16 + row] = l[i];
      }
      if (row >= group) continue;
#pragma unroll
      for (int dt = 0; dt < DT; ++dt) {
        *reinterpret_cast<float2*>(sO + bf16_merge_index<D>(warp * 16 + row, 8 * dt + 2 * t4)) =
            make_float2(o[dt][2 * i], o[dt][2 * i + 1]);
      }
    }
  }
};

}  // namespace lcllm
