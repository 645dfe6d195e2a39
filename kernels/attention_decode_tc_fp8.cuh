// The fp8 half of the tensor-core decode (attention_decode_tc.cu): one warp's online softmax over 16-key tiles of
// an e4m3 cache, key-major (version 5h, docs/KERNEL_NOTES.md).
//
// Why key-major: the GQA group is 1-8 heads (Llama-3.1-8B: 4). Head-major, S = Q K^T puts the heads on the MMA's
// 16 M rows and wastes 12 of them at a group of 4; key-major, S^T = K Q^T puts the tile's 16 keys on M and the heads
// on N (8 wide), and O^T += V^T P^T puts 16 head dims on M. Per 16-key tile that is KK + D / 16 MMAs for up to 8
// heads instead of 2 KK + D / 8 (16 instead of 32 at head_dim 128), the same conversions, and half the accumulator
// registers. P^T goes from S^T's accumulator layout to the B operand with two movmatrix.trans per 8 heads.
//
// The fp8 operands are converted in registers from the raw bytes of the warp's ring (e4m3 -> fp16 is exact):
//   K (A of S^T, rows = keys g and g + 8): MMA k index 2 t4 (+1) of k-step kk is head dim (D/4) t4 + 4 kk (+1), and
//     2 t4 + 8 (+1) is (D/4) t4 + 4 kk + 2 (+1), so a thread's K fragments of a key are D/4 contiguous bytes, one
//     32-bit word per k-step; Q^T's B fragments take the same permutation (a dot product is a sum in any order).
//   V^T (A of O^T, rows = head dims, columns = keys 2 t4, 2 t4 + 1, 2 t4 + 8, 2 t4 + 9): row g of m-tile mt is
//     head dim (D/8) g + 2 mt and row g + 8 is (D/8) g + 2 mt + 1, so a thread's V fragments of a key are the D/8
//     contiguous bytes from (D/8) g; a byte permute pairs two keys' bytes of one dim for each cvt.
// The per-key power-of-two scales multiply S^T's rows (K) and P^T's rows (V) in fp32, V's with a bias of 2^8
// (kFp8PBias) that the merge removes.
#pragma once

#include <cstdint>

#include <cuda_fp16.h>

#include "kernels/attention_common.cuh"

namespace lcllm {

// fp8 P is scaled by 2^8 on top of the V scale (and O by 2^-8 at the end) so that P * scale stays a normal fp16
// for V scales down to 2^-22; |P * scale * 2^8| <= 65504 holds for scales up to 2^7 (|V| <= 57k).
constexpr float kFp8PBias = 256.f;

// fp8 ring: byte offset of 16-byte chunk c of key kk in a [16][D] K or V tile. Keys sit in 128-byte lines (one at
// D = 128, two at D = 64) whose chunks are XOR-swizzled by the line so that the fragment reads below (K: a key's
// D/4 bytes per thread; V: D/8 bytes of four keys 2 t4, 2 t4 + 1, 2 t4 + 8, 2 t4 + 9) are free of bank conflicts.
template <int D>
__device__ __forceinline__ uint32_t fp8_chunk_offset(int32_t kk, int32_t c) {
  if constexpr (D == 128) {
    return uint32_t(kk * 128 + 16 * (c ^ (kk & 7)));
  } else {
    return uint32_t((kk >> 1) * 128 + 16 * (((kk & 1) * 4 + c) ^ (kk & 6)));
  }
}

// The warps' merge buffer of the fp8 path, [4 warps][16 heads][fp8_merge_stride] floats in the cache's dim order: a
// thread stores float2 (dims (D/8) g + 2 mt, + 1) of heads 2 t4 + j, so dim d sits at d + 2 (d / (D/8)) and rows are
// D + 36 floats apart (164 at D = 128, 100 at D = 64; both 4 mod 32). A half-warp's 16 float2 then land on 32
// distinct banks (bank pairs 8 t4 + (D/8 + 2) g mod 32), and the skew never runs into the next row.
template <int D>
constexpr int32_t fp8_merge_stride() { return D + 36; }
template <int D>
__device__ __forceinline__ int32_t fp8_merge_index(int32_t row, int32_t dim) {
  return row * fp8_merge_stride<D>() + dim + 2 * (dim / (D / 8));
}

__device__ __forceinline__ uint32_t pack_f16(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// The transpose of an 8x8 b16 matrix held in the MMA fragment layout (thread (g, t4): row g, columns 2 t4, 2 t4 + 1).
__device__ __forceinline__ uint32_t movmatrix_trans(uint32_t x) {
  uint32_t y;
  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;" : "=r"(y) : "r"(x));
  return y;
}

// D = A * B + D, m16n8k16, fp16 operands, fp32 accumulators.
__device__ __forceinline__ void mma_f16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// One warp's state over its tiles. NG: 8-head column blocks (1 for groups up to 8, 2 up to 16). Thread (g, t4)
// holds heads 8 ng + 2 t4 + j (j = 0, 1) of every block.
template <int D, int NG>
struct Fp8KeyMajorDecode {
  static constexpr int KK = D / 16;  // k-steps of S^T = K Q^T
  static constexpr int MT = D / 16;  // m-tiles (16 head dims each) of O^T
  static constexpr int kWords = D / 32;  // 32-bit words of a key's D/8-byte V slice

  uint32_t qb[NG][KK][2];  // Q^T's B fragments (fp16, times the scale): head 8 ng + g, dims (D/4) t4 + 4 kk + 2 e, +1
  float o[NG][MT][4];      // O^T: [j] dim (D/8) g + 2 mt, [2 + j] that dim + 1; head 8 ng + 2 t4 + j
  float m[NG][2];          // per head: running max of the scores (log2 units)
  float l[NG][2];          // per head: this thread's share of the softmax denominator (summed over g at the end)

  // q: the query row's [group][D] floats (from the group's first head); B-fragment heads past `group` are zero.
  __device__ __forceinline__ void init(const float* q, int32_t group, float qmul, int32_t g, int32_t t4) {
#pragma unroll
    for (int ng = 0; ng < NG; ++ng) {
      const int32_t head = 8 * ng + g;
#pragma unroll
      for (int kk = 0; kk < KK; ++kk) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float2 x = make_float2(0.f, 0.f);
          if (head < group) x = *reinterpret_cast<const float2*>(q + int64_t(head) * D + (D / 4) * t4 + 4 * kk + 2 * e);
          qb[ng][kk][e] = pack_f16(x.x * qmul, x.y * qmul);
        }
      }
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) o[ng][mt][0] = o[ng][mt][1] = o[ng][mt][2] = o[ng][mt][3] = 0.f;
      m[ng][0] = m[ng][1] = -INFINITY;
      l[ng][0] = l[ng][1] = 0.f;
    }
  }

  // Two 16-key tiles u = 0, 1 at once (version 5i): their S^T chains, conversions and P^T V^T products are
  // independent, so a warp has twice the work in flight between its dependent steps, and the softmax's shuffles,
  // rescale and vote are paid once per 32 keys. st_k[u], st_v[u]: [16][D] e4m3 (fp8_chunk_offset's swizzle);
  // pairs[u]: [16] (K exponent | V exponent << 8); keys k0[u] + i at or past `end` are masked. softcap > 0: scores
  // pass through softcap * tanh(s / softcap).
  __device__ __forceinline__ void tile_pair(const unsigned char* const (&st_k)[2],
                                            const unsigned char* const (&st_v)[2], const uint16_t* const (&pairs)[2],
                                            const int32_t (&k0)[2], int32_t end, float softcap, int32_t g,
                                            int32_t t4) {
    // 1. S^T = K Q^T: rows keys g and g + 8 of each tile (two partial sums per tile and block, even / odd k-steps).
    float sp[2][NG][2][4];
#pragma unroll
    for (int u = 0; u < 2; ++u) {
#pragma unroll
      for (int ng = 0; ng < NG; ++ng) {
#pragma unroll
        for (int c = 0; c < 2; ++c) sp[u][ng][c][0] = sp[u][ng][c][1] = sp[u][ng][c][2] = sp[u][ng][c][3] = 0.f;
      }
    }
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      uint32_t kw[2][KK];  // key g + 8 h: head dims (D/4) t4 + 4 kk .. + 3 in word kk
#pragma unroll
      for (int h = 0; h < 2; ++h) {
#pragma unroll
        for (int c = 0; c < KK / 4; ++c) {
          const uint4 x = *reinterpret_cast<const uint4*>(st_k[u] + fp8_chunk_offset<D>(g + 8 * h, (KK / 4) * t4 + c));
          kw[h][4 * c] = x.x;
          kw[h][4 * c + 1] = x.y;
          kw[h][4 * c + 2] = x.z;
          kw[h][4 * c + 3] = x.w;
        }
      }
#pragma unroll
      for (int kk = 0; kk < KK; ++kk) {
        // K's A fragments of k-step kk: (key g, dims +0 +1), (key g + 8, +0 +1), (key g, +2 +3), (key g + 8, +2 +3)
        const uint32_t ka[4] = {fp8x2_to_f16x2(kw[0][kk]), fp8x2_to_f16x2(kw[1][kk]), fp8x2_to_f16x2(kw[0][kk] >> 16),
                                fp8x2_to_f16x2(kw[1][kk] >> 16)};
#pragma unroll
        for (int ng = 0; ng < NG; ++ng) mma_f16_16816(sp[u][ng][kk & 1], ka, qb[ng][kk][0], qb[ng][kk][1]);
      }
    }
    float vsc[2][2];    // [u][h]: V scale (times kFp8PBias) of key g + 8 h
    float s[2][NG][4];  // [u][ng][2 h + j]: key g + 8 h of tile u, head 8 ng + 2 t4 + j
#pragma unroll
    for (int u = 0; u < 2; ++u) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint32_t pair = pairs[u][g + 8 * h];
        const float ksc = fp8_scale_of(pair & 0xffu);
        vsc[u][h] = fp8_scale_of(pair >> 8) * kFp8PBias;
        const bool masked = k0[u] + g + 8 * h >= end;
#pragma unroll
        for (int ng = 0; ng < NG; ++ng) {
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            float x = (sp[u][ng][0][2 * h + j] + sp[u][ng][1][2 * h + j]) * ksc;
            if (softcap > 0.f) x = softcap * tanhf(x / softcap) * kLog2e;
            s[u][ng][2 * h + j] = masked ? -INFINITY : x;
          }
        }
      }
    }
    // 2. Online softmax per head over the 32 keys (log2 domain): a head's scores lie in the 8 lanes of its t4.
    uint32_t pb[2][NG][2];  // P^T's B fragments of tile u: keys 2 t4, 2 t4 + 1 (+ 8 in [1]), head 8 ng + g
#pragma unroll
    for (int ng = 0; ng < NG; ++ng) {
      float alpha[2];  // [j]: the O rescale of head 8 ng + 2 t4 + j
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        float mx = fmaxf(fmaxf(s[0][ng][j], s[0][ng][2 + j]), fmaxf(s[1][ng][j], s[1][ng][2 + j]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 4));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 8));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 16));
        const float m_new = fmaxf(m[ng][j], mx);
        const float mu = m_new == -INFINITY ? 0.f : m_new;
        alpha[j] = exp2_ftz(m[ng][j] - mu);
        m[ng][j] = m_new;
        float sum = 0.f;
#pragma unroll
        for (int u = 0; u < 2; ++u) {
          s[u][ng][j] = exp2_ftz(s[u][ng][j] - mu);
          s[u][ng][2 + j] = exp2_ftz(s[u][ng][2 + j] - mu);
          sum += s[u][ng][j] + s[u][ng][2 + j];
        }
        l[ng][j] = l[ng][j] * alpha[j] + sum;
      }
      if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {  // skipped once the maxima settle
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          o[ng][mt][0] *= alpha[0];
          o[ng][mt][1] *= alpha[1];
          o[ng][mt][2] *= alpha[0];
          o[ng][mt][3] *= alpha[1];
        }
      }
      // P^T times each key's V scale, as fp16 (p <= 1), then transposed into the B layout.
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        pb[u][ng][0] = movmatrix_trans(pack_f16(s[u][ng][0] * vsc[u][0], s[u][ng][1] * vsc[u][0]));
        pb[u][ng][1] = movmatrix_trans(pack_f16(s[u][ng][2] * vsc[u][1], s[u][ng][3] * vsc[u][1]));
      }
    }
    // 3. O^T += V^T P^T, tile by tile. Keys 2 t4 + {0, 1, 8, 9}: head dims [(D/8) g, + D/8).
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      uint32_t vw[4][kWords];  // [key 2 t4 + {0, 1, 8, 9}][word]: head dims (D/8) g + 4 w .. + 3 as e4m3
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int32_t key = 2 * t4 + (c & 1) + 8 * (c >> 1);
        if constexpr (kWords == 4) {
          const uint4 x = *reinterpret_cast<const uint4*>(st_v[u] + fp8_chunk_offset<D>(key, g));
          vw[c][0] = x.x;
          vw[c][1] = x.y;
          vw[c][2] = x.z;
          vw[c][3] = x.w;
        } else {
          const uint2 x = *reinterpret_cast<const uint2*>(st_v[u] + fp8_chunk_offset<D>(key, g >> 1) + 8 * (g & 1));
          vw[c][0] = x.x;
          vw[c][1] = x.y;
        }
      }
#pragma unroll
      for (int w = 0; w < kWords; ++w) {
        // Dims 4 w .. 4 w + 3 of the slice: m-tile 2 w (dims 4 w, 4 w + 1) and 2 w + 1 (4 w + 2, 4 w + 3).
        // __byte_perm selector 0x5140 gives (a.b0, b.b0, a.b1, b.b1) and 0x7362 (a.b2, b.b2, a.b3, b.b3): two keys'
        // bytes per dim.
        const uint32_t lo01 = __byte_perm(vw[0][w], vw[1][w], 0x5140), hi01 = __byte_perm(vw[0][w], vw[1][w], 0x7362);
        const uint32_t lo89 = __byte_perm(vw[2][w], vw[3][w], 0x5140), hi89 = __byte_perm(vw[2][w], vw[3][w], 0x7362);
        // V^T's A fragments of m-tile 2 w (va_hi: 2 w + 1): (dim row g, keys 2 t4 +0 +1), (row g + 8, same keys),
        // (row g, keys 2 t4 + 8, + 9), (row g + 8, same keys)
        const uint32_t va_lo[4] = {fp8x2_to_f16x2(lo01), fp8x2_to_f16x2(lo01 >> 16), fp8x2_to_f16x2(lo89),
                                   fp8x2_to_f16x2(lo89 >> 16)};
        const uint32_t va_hi[4] = {fp8x2_to_f16x2(hi01), fp8x2_to_f16x2(hi01 >> 16), fp8x2_to_f16x2(hi89),
                                   fp8x2_to_f16x2(hi89 >> 16)};
#pragma unroll
        for (int ng = 0; ng < NG; ++ng) {
          mma_f16_16816(o[ng][2 * w], va_lo, pb[u][ng][0], pb[u][ng][1]);
          mma_f16_16816(o[ng][2 * w + 1], va_hi, pb[u][ng][0], pb[u][ng][1]);
        }
      }
    }
  }

  // The warp's unnormalised partials for the block's merge: sM, sL [4 warps][16] (head rows), sO through
  // fp8_merge_index; heads past `group` are not stored.
  __device__ __forceinline__ void write_merge(float* sM, float* sL, float* sO, int32_t warp, int32_t group, int32_t g,
                                              int32_t t4) {
#pragma unroll
    for (int ng = 0; ng < NG; ++ng) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        float sum = l[ng][j];
        sum += __shfl_xor_sync(0xffffffffu, sum, 4);
        sum += __shfl_xor_sync(0xffffffffu, sum, 8);
        sum += __shfl_xor_sync(0xffffffffu, sum, 16);
        const int32_t head = 8 * ng + 2 * t4 + j;
        if (head >= group) continue;
        const int32_t row = warp * 16 + head;
        if (g == 0) {
          sM[row] = m[ng][j];
          sL[row] = sum;
        }
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          *reinterpret_cast<float2*>(sO + fp8_merge_index<D>(row, (D / 8) * g + 2 * mt)) =
              make_float2(o[ng][mt][j] * (1.f / kFp8PBias), o[ng][mt][2 + j] * (1.f / kFp8PBias));
        }
      }
    }
  }
};

}  // namespace lcllm
