// Prefill attention.
//   v2 (head_dim 64/128/256): tensor-core flash attention (mma.sync bf16, FlashAttention-2 layout), see the comment above
//      kernel_attention_prefill_v2.
//   v1 (any other even head_dim <= 256, e.g. 80): a tiled flash-attention kernel
//      with online softmax in fp32 on the CUDA cores. One block = one head x up to kPrefillTileRows query rows of one
//      sequence; it walks the union of the rows' visible key ranges in tiles of kKeyTile keys from the paged pool.
#include <atomic>
#include <cfloat>
#include <cstdio>
#include <cstdlib>

#include <cuda_bf16.h>

#include "kernels/attention.h"
#include "kernels/attention_common.cuh"
#include "kernels/attention_prefill_wgmma.h"
#include "kernels/cuda_check.h"

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------

namespace {

constexpr int kThreads = 128;
constexpr int kRows = kPrefillTileRows;  // 16
constexpr int kKeyTile = 32;             // one key per lane in the softmax step
static_assert(kKeyTile == 32, "softmax step maps one key per lane");
static_assert(kRows % (kThreads / 32) == 0, "rows split evenly over warps");

size_t prefill_smem_bytes(int32_t head_dim) {
  const size_t dp = size_t(head_dim) + 1;  // padded row stride for Q and K (dot products walk rows)
  return sizeof(float) * (kRows * dp + kRows * size_t(head_dim) + kKeyTile * dp + kKeyTile * size_t(head_dim) +
                          kRows * kKeyTile + 3 * kRows) +
         sizeof(int32_t) * 2 * kRows;
}

}  // namespace

// T: the stored K/V element (uint16_t bf16, uint8_t fp8 with a scale per key and head).
template <class T>
__global__ void __launch_bounds__(kThreads) kernel_attention_prefill(PrefillParams p) {
  const AttentionCommon& a = p.a;
  const int32_t D = a.head_dim, DP = D + 1;
  extern __shared__ float smem[];
  float* sQ = smem;                   // [kRows][DP]
  float* sO = sQ + kRows * DP;        // [kRows][D]   unnormalised output
  float* sK = sO + kRows * D;         // [kKeyTile][DP]
  float* sV = sK + kKeyTile * DP;     // [kKeyTile][D]
  float* sS = sV + kKeyTile * D;      // [kRows][kKeyTile] scores, then probabilities
  float* sM = sS + kRows * kKeyTile;  // [kRows] running max
  float* sL = sM + kRows;             // [kRows] running sum of exp
  float* sA = sL + kRows;             // [kRows] rescale factor of this tile
  int32_t* sBegin = reinterpret_cast<int32_t*>(sA + kRows);  // [kRows]
  int32_t* sEnd = sBegin + kRows;                             // [kRows]

  const int32_t tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int32_t row0 = p.tile_row0[blockIdx.x], nr = p.tile_rows[blockIdx.x];
  const int32_t h = blockIdx.y, kvh = h / (a.n_heads / a.n_kv_heads);
  const int32_t seq = a.row_seq[row0];
  const int32_t* pages = a.page_indices + a.page_indptr[seq];

  for (int32_t e = tid; e < kRows * D; e += kThreads) {
    const int32_t r = e / D, d = e % D;
    sQ[r * DP + d] = r < nr ? a.q[(int64_t(row0 + r) * a.n_heads + h) * D + d] : 0.f;
    sO[r * D + d] = 0.f;
  }
  if (tid < kRows) {
    sM[tid] = -INFINITY;
    sL[tid] = 0.f;
    sBegin[tid] = tid < nr ? a.row_begin[row0 + tid] : 0;
    sEnd[tid] = tid < nr ? a.row_end[row0 + tid] : 0;  // empty range for padding rows
  }
  __syncthreads();
  int32_t k_begin = INT32_MAX, k_end = 0;
  for (int32_t r = 0; r < nr; ++r) {
    if (sBegin[r] < sEnd[r]) {
      k_begin = min(k_begin, sBegin[r]);
      k_end = max(k_end, sEnd[r]);
    }
  }

  const int32_t half = D / 2;
  for (int32_t k0 = k_begin; k0 < k_end; k0 += kKeyTile) {
    __syncthreads();  // previous tile's sK/sV/sS reads are done
    for (int32_t e = tid; e < kKeyTile * half; e += kThreads) {
      const int32_t kk = e / half, d = 2 * (e % half), j = k0 + kk;
      float2 kf = make_float2(0.f, 0.f), vf = make_float2(0.f, 0.f);
      if (j < k_end) {
        const int64_t slot = int64_t(pages[j / a.page_size]) * a.page_size + j % a.page_size;
        const int64_t off = a.kv.offset(slot, a.kv_index[kvh]) + d;  // prefill never reads windowed heads
        kf = kv_pair_to_f2(static_cast<const T*>(a.k_pool) + off);
        vf = kv_pair_to_f2(static_cast<const T*>(a.v_pool) + off);
        if constexpr (sizeof(T) == 1) {
          const uint32_t w = a.kv_scale[a.kv.scale_index(slot, a.kv_index[kvh])];
          const float ksc = fp8_scale_of(w & 0xffu), vsc = fp8_scale_of(w >> 8);
          kf.x *= ksc, kf.y *= ksc, vf.x *= vsc, vf.y *= vsc;
        }
      }
      sK[kk * DP + d] = kf.x;
      sK[kk * DP + d + 1] = kf.y;
      sV[kk * D + d] = vf.x;
      sV[kk * D + d + 1] = vf.y;
    }
    __syncthreads();
    for (int32_t e = tid; e < kRows * kKeyTile; e += kThreads) {
      const int32_t r = e / kKeyTile, kk = e % kKeyTile, j = k0 + kk;
      float s = -INFINITY;
      if (j >= sBegin[r] && j < sEnd[r]) {
        const float* qr = sQ + r * DP;
        const float* kr = sK + kk * DP;
        float dot = 0.f;
        for (int32_t d = 0; d < D; ++d) dot += qr[d] * kr[d];
        s = dot * a.scale;
        if (a.softcap > 0.f) s = a.softcap * tanhf(s / a.softcap);
      }
      sS[e] = s;
    }
    __syncthreads();
    for (int32_t r = warp; r < kRows; r += kThreads / 32) {
      const float s = sS[r * kKeyTile + lane];
      float mx = s;
      for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      const float m_old = sM[r];
      const float m_new = fmaxf(m_old, mx);
      const float pr = s == -INFINITY ? 0.f : expf(s - m_new);
      float sum = pr;
      for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
      sS[r * kKeyTile + lane] = pr;
      __syncwarp();
      if (lane == 0) {
        const float alpha = m_old == -INFINITY ? 0.f : expf(m_old - m_new);
        sA[r] = alpha;
        sL[r] = sL[r] * alpha + sum;
        sM[r] = m_new;
      }
    }
    __syncthreads();
    for (int32_t e = tid; e < kRows * D; e += kThreads) {
      const int32_t r = e / D, d = e % D;
      const float* pr = sS + r * kKeyTile;
      float acc = sO[e] * sA[r];
      for (int32_t kk = 0; kk < kKeyTile; ++kk) acc += pr[kk] * sV[kk * D + d];
      sO[e] = acc;
    }
  }
  __syncthreads();
  for (int32_t e = tid; e < nr * D; e += kThreads) {
    const int32_t r = e / D, d = e % D;
    const float l = sL[r];
    a.out[(int64_t(row0 + r) * a.n_heads + h) * D + d] = l > 0.f ? sO[r * D + d] / l : 0.f;
  }
}

// ---- version 2: tensor cores ------------------------------------------------------------------------------------
// FlashAttention-2 layout with mma.sync.m16n8k16 (bf16 in, fp32 accumulate). Block = 8 warps x 16 = 128 "M rows",
// packed as (query position, query head) pairs: HP = the largest power of two (<= 8) dividing the GQA group
// heads of one KV head times 128 / HP consecutive query rows of one sequence, M row m = (position m / HP, head
// m % HP). Every K/V tile a block gathers is used by all 128 M rows (L2 -> SM traffic per FLOP halves against 64
// rows), and a warp's rows span only 16 / HP positions (tight causal / window skipping). Q is rounded to bf16 in
// registers (as hi + lo with two MMAs, q exact to ~2^-17, it was 2x slower for nothing the bf16 bound needs). K/V tiles of 64 keys are gathered
// from the pages into swizzled shared memory with cp.async (three stages), S = QK^T and O += PV run on the tensor
// cores, P is rounded to bf16 for PV (its fp32 sum is the denominator), the online softmax (log2 domain) stays in
// registers. Key tiles outside the union of the block's rows' ranges are never visited, a warp skips tiles outside
// its own rows' ranges, and the per-element mask is applied only to tiles not wholly inside every range of the warp.

namespace {

constexpr int kThreadsV2 = 256;
constexpr int kMRowsV2 = 16 * (kThreadsV2 / 32);  // 128
constexpr int kKeysV2 = 64;
constexpr int kStagesV2 = 3;

constexpr size_t prefill_v2_smem_bytes(int head_dim) { return size_t(kStagesV2) * 2 * kKeysV2 * head_dim * 2; }

// head_dim 256 (Gemma) fits too: 3 stages of K+V tiles are 196 KB of shared memory, under the 227 KB limit; its
// 128 O accumulators per thread spill a little at 255 registers, still ~10x the scalar kernel.
bool prefill_v2_applies(int32_t head_dim) {
  return head_dim == 64 || head_dim == 128 || head_dim == 256;
}

int32_t heads_per_pack(int32_t group) {
  int32_t hp = 1;
  while (hp < 8 && group % (2 * hp) == 0) hp *= 2;
  return hp;
}

int32_t heads_per_pack_log2(int32_t group) {
  int32_t hp_log2 = 0;
  while ((1 << hp_log2) < heads_per_pack(group)) ++hp_log2;
  return hp_log2;
}

}  // namespace

// T = uint8_t: an fp8 cache. Its tiles are loaded through registers (8 bytes per chunk), scaled and converted to the
// same bf16 shared-memory tiles, so the tensor-core part is unchanged; the loads are then synchronous, not cp.async.
template <int D, int kMinBlocks, class T>
__global__ void __launch_bounds__(kThreadsV2, kMinBlocks) kernel_attention_prefill_v2(PrefillParams p, int32_t hp_log2) {
  constexpr int KC = D / 8;        // 16-byte chunks per K/V row
  constexpr int KK = D / 16;       // k-steps of QK^T
  constexpr int NT = kKeysV2 / 8;  // n-tiles of S
  constexpr int DT = D / 8;        // n-tiles of O
  constexpr int kRowsPerPass = kThreadsV2 / KC;
  constexpr int kPasses = kKeysV2 / kRowsPerPass;
  static_assert(kThreadsV2 % KC == 0 && kKeysV2 % kRowsPerPass == 0, "tile load mapping");
  extern __shared__ __align__(128) unsigned char smem_raw[];
  uint16_t* const sKV = reinterpret_cast<uint16_t*>(smem_raw);  // [stage][K|V][kKeysV2][D], chunks swizzled
  __shared__ int32_t sRange[2];

  const AttentionCommon& a = p.a;
  const int32_t tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t4 = lane & 3;
  const int32_t tile = int32_t(gridDim.y) - 1 - int32_t(blockIdx.y);  // heavy (late, causal) tiles first
  const int32_t hp = 1 << hp_log2;
  const int32_t h0 = int32_t(blockIdx.x) * hp, kvh = h0 / (a.n_heads / a.n_kv_heads);
  const int32_t row0 = p.tile_row0[tile], nr = p.tile_rows[tile];
  const int32_t* pages = a.page_indices + a.page_indptr[a.row_seq[row0]];
  const int32_t ps = a.page_size;

  if (tid == 0) {
    sRange[0] = INT32_MAX;
    sRange[1] = 0;
  }
  // This thread's two M rows: warp * 16 + g (+ 8) -> (position, head).
  int32_t pos[2], head[2], rb[2], re[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int32_t mr = warp * 16 + g + 8 * i;
    pos[i] = mr >> hp_log2;
    head[i] = h0 + (mr & (hp - 1));
    rb[i] = pos[i] < nr ? a.row_begin[row0 + pos[i]] : 0;
    re[i] = pos[i] < nr ? a.row_end[row0 + pos[i]] : 0;
  }
  // Warp-level ranges: union [w_lo, w_hi) of non-empty rows, intersection [w_in_lo, w_in_hi) of all 16 rows.
  int32_t w_lo = INT32_MAX, w_hi = 0, w_in_lo = max(rb[0], rb[1]), w_in_hi = min(re[0], re[1]);
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    if (rb[i] < re[i]) {
      w_lo = min(w_lo, rb[i]);
      w_hi = max(w_hi, re[i]);
    }
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    w_lo = min(w_lo, __shfl_xor_sync(0xffffffffu, w_lo, off));
    w_hi = max(w_hi, __shfl_xor_sync(0xffffffffu, w_hi, off));
    w_in_lo = max(w_in_lo, __shfl_xor_sync(0xffffffffu, w_in_lo, off));
    w_in_hi = min(w_in_hi, __shfl_xor_sync(0xffffffffu, w_in_hi, off));
  }
  __syncthreads();
  if (lane == 0 && w_lo < w_hi) {
    atomicMin(&sRange[0], w_lo);
    atomicMax(&sRange[1], w_hi);
  }

  uint32_t qa[KK][4];  // Q's A fragments (bf16)
  load_q_fragments_bf16<D>(qa, a.q, a.n_heads, row0, nr, pos, head, t4);
  __syncthreads();
  const int32_t kb = sRange[0], ke = sRange[1];

  float o[DT][4];
#pragma unroll
  for (int dt = 0; dt < DT; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

  // Tile loads: this thread copies chunk `chunk` of keys key_base + i * kRowsPerPass (its smem offsets are fixed).
  const int32_t chunk = tid % KC, key_base = tid / KC;
  const int ps_shift = page_shift_of(ps);
  const int64_t slot_stride = a.kv.slot_stride();
  const T* k_src = static_cast<const T*>(a.k_pool) + a.kv.offset(0, a.kv_index[kvh]) + chunk * 8;  // never a windowed head
  const T* v_src = static_cast<const T*>(a.v_pool) + a.kv.offset(0, a.kv_index[kvh]) + chunk * 8;
  const uint16_t* scale_src = a.kv_scale != nullptr ? a.kv_scale + a.kv_index[kvh] : nullptr;  // fp8
  const uint32_t smem_base = smem_u32(sKV);
  constexpr uint32_t kTileBytes = kKeysV2 * D * 2, kStageBytes = 2 * kTileBytes;
  const uint32_t st_off0 = uint32_t(key_base * D + ((chunk ^ (key_base & 7)) * 8)) * 2;  // + i * kRowsPerPass * D * 2
  auto load_tile = [&](int stage, int32_t k0) {
    const uint32_t dst = smem_base + uint32_t(stage) * kStageBytes + st_off0;
#pragma unroll
    for (int i = 0; i < kPasses; ++i) {
      const int32_t j = k0 + key_base + i * kRowsPerPass;
      const bool valid = j < ke;
      const int64_t slot = valid ? paged_slot(pages, ps, ps_shift, j) : 0;
      const int64_t off = slot * slot_stride;
      const uint32_t d = dst + uint32_t(i * kRowsPerPass * D * 2);
      if constexpr (sizeof(T) == 1) {
        uint4 kx = make_uint4(0, 0, 0, 0), vx = kx;
        if (valid) {
          const uint32_t w = scale_src[slot * a.kv.n_heads];
          kx = fp8x8_to_bf16x8(*reinterpret_cast<const uint2*>(k_src + off), fp8_scale_of(w & 0xffu));
          vx = fp8x8_to_bf16x8(*reinterpret_cast<const uint2*>(v_src + off), fp8_scale_of(w >> 8));
        }
        st_shared_v4(d, kx);
        st_shared_v4(d + kTileBytes, vx);
      } else {
        cp_async_16(d, k_src + off, valid ? 16 : 0);
        cp_async_16(d + kTileBytes, v_src + off, valid ? 16 : 0);
      }
    }
  };
  uint32_t k_off[4], v_off[4];  // ldmatrix addresses (attention_common.cuh)
  swizzled_kv_ldmatrix_offsets<D>(lane, kTileBytes, k_off, v_off);

  const bool capped = a.softcap > 0.f;
  const float smul = capped ? a.scale / a.softcap : a.scale * kLog2e;
  const float cap_l2 = a.softcap * kLog2e;
  const float emul = capped ? 1.f : smul;  // raw score -> log2 units inside the exponent
  const int32_t n_iter = kb < ke ? (ke - kb + kKeysV2 - 1) / kKeysV2 : 0;
#pragma unroll
  for (int st = 0; st < kStagesV2 - 1; ++st) {
    if (st < n_iter) load_tile(st, kb + st * kKeysV2);
    cp_async_commit();
  }
  int stage = 0;
  for (int32_t it = 0; it < n_iter; ++it) {
    const int32_t k0 = kb + it * kKeysV2;
    cp_async_wait<kStagesV2 - 2>();  // tile `it` has landed (this thread's copies)
    __syncthreads();                 // everyone's copies visible; everyone is done with tile it - 1's stage
    if (it + kStagesV2 - 1 < n_iter) {
      load_tile((stage + kStagesV2 - 1) % kStagesV2, k0 + (kStagesV2 - 1) * kKeysV2);
    }
    cp_async_commit();
    const uint32_t st_base = smem_base + uint32_t(stage) * kStageBytes;
    stage = (stage + 1) % kStagesV2;
    if (k0 < w_hi && k0 + kKeysV2 > w_lo) {
      float s[NT][4];
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < KK; ++kk) {
#pragma unroll
        for (int np = 0; np < NT / 2; ++np) {
          uint32_t b[4];
          ldmatrix_x4(b, st_base + k_off[kk & 3] + uint32_t(np * 16 * D * 2 + (kk >> 2) * 128));
          mma_bf16_16816(s[2 * np], qa[kk], b[0], b[1]);
          mma_bf16_16816(s[2 * np + 1], qa[kk], b[2], b[3]);
        }
      }
      // Masked where the tile is not wholly inside every row's range. Without a softcap the scores stay raw and the
      // scale (times log2 e) folds into the exponent's FMA; with one they become log2 units here (mul = 1).
      const bool full = k0 >= w_in_lo && k0 + kKeysV2 <= w_in_hi;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float x = s[nt][e];
          if (capped) x = cap_l2 * tanhf(x * smul);
          if (!full) {
            const int32_t j = k0 + nt * 8 + 2 * t4 + (e & 1);
            const int i = e >> 1;
            if (j < rb[i] || j >= re[i]) x = -INFINITY;
          }
          s[nt][e] = x;
        }
      }
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        float mx = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * i], s[nt][2 * i + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m[i], mx * emul);  // -inf stays -inf
        const float mu = m_new == -INFINITY ? 0.f : m_new;
        const float alpha = exp2f(m[i] - mu);
        m[i] = m_new;
        float sum = 0.f;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          s[nt][2 * i] = exp2f(fmaf(s[nt][2 * i], emul, -mu));
          s[nt][2 * i + 1] = exp2f(fmaf(s[nt][2 * i + 1], emul, -mu));
          sum += s[nt][2 * i] + s[nt][2 * i + 1];
        }
        l[i] = l[i] * alpha + sum;
#pragma unroll
        for (int dt = 0; dt < DT; ++dt) {
          o[dt][2 * i] *= alpha;
          o[dt][2 * i + 1] *= alpha;
        }
      }
#pragma unroll
      for (int kp = 0; kp < kKeysV2 / 16; ++kp) {
        uint32_t pa[4];
        pa[0] = pack_bf16(s[2 * kp][0], s[2 * kp][1]);
        pa[1] = pack_bf16(s[2 * kp][2], s[2 * kp][3]);
        pa[2] = pack_bf16(s[2 * kp + 1][0], s[2 * kp + 1][1]);
        pa[3] = pack_bf16(s[2 * kp + 1][2], s[2 * kp + 1][3]);
#pragma unroll
        for (int dp = 0; dp < DT / 2; ++dp) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, st_base + v_off[dp & 3] + uint32_t(kp * 16 * D * 2 + (dp >> 2) * 128));
          mma_bf16_16816(o[2 * dp], pa, b[0], b[1]);
          mma_bf16_16816(o[2 * dp + 1], pa, b[2], b[3]);
        }
      }
    }
  }
  cp_async_wait<0>();  // nothing may land in shared memory after the block exits

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
    if (pos[i] >= nr) continue;
    const float inv = l[i] > 0.f ? 1.f / l[i] : 0.f;
    float* dst = a.out + (int64_t(row0 + pos[i]) * a.n_heads + head[i]) * D + 2 * t4;
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {
      *reinterpret_cast<float2*>(dst + dt * 8) = make_float2(o[dt][2 * i] * inv, o[dt][2 * i + 1] * inv);
    }
  }
}

// ---- launchers ----------------------------------------------------------------------------------------------

namespace {

template <int D, class T, int kMinBlocks = 1>
void launch_prefill_v2(const PrefillParams& p, cudaStream_t stream) {
  static std::atomic<uint64_t> configured{0};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  const uint64_t bit = uint64_t(1) << (device & 63);
  const size_t smem = prefill_v2_smem_bytes(D);
  if ((configured.load() & bit) == 0) {
    CUDA_CHECK(cudaFuncSetAttribute(kernel_attention_prefill_v2<D, kMinBlocks, T>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    configured.fetch_or(bit);
  }
  const int32_t hp_log2 = heads_per_pack_log2(p.a.n_heads / p.a.n_kv_heads);
  const dim3 grid(unsigned(p.a.n_heads >> hp_log2), unsigned(p.n_tiles));
  kernel_attention_prefill_v2<D, kMinBlocks, T><<<grid, kThreadsV2, smem, stream>>>(p, hp_log2);
  CUDA_CHECK_LAUNCH();
}

template <int D>
void launch_prefill_v2_d(const PrefillParams& p, cudaStream_t stream) {
  if (p.a.kv.dtype == KvDtype::KV_DTYPE_FP8_E4M3) {
    launch_prefill_v2<D, uint8_t>(p, stream);
  } else {
    launch_prefill_v2<D, uint16_t>(p, stream);
  }
}

template <class T>
void launch_prefill_v1(const PrefillParams& p, cudaStream_t stream) {
  // Above 48 KB of dynamic shared memory needs an opt-in, once per device (one bit per device ordinal).
  static std::atomic<uint64_t> configured{0};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  const uint64_t bit = uint64_t(1) << (device & 63);
  if ((configured.load() & bit) == 0) {
    CUDA_CHECK(cudaFuncSetAttribute(kernel_attention_prefill<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    int(prefill_smem_bytes(kAttentionMaxHeadDim))));
    configured.fetch_or(bit);
  }
  const dim3 grid(unsigned(p.n_tiles), unsigned(p.a.n_heads));
  kernel_attention_prefill<T><<<grid, kThreads, prefill_smem_bytes(p.a.head_dim), stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

int32_t attention_prefill_tile_rows(int32_t head_dim, int32_t group, KvDtype dtype, bool key_sets) {
  if (attention_prefill_v3_applies(head_dim, dtype)) {
    return attention_prefill_v3_m_rows(head_dim, dtype, key_sets) / heads_per_pack(group);
  }
  return prefill_v2_applies(head_dim) ? kMRowsV2 / heads_per_pack(group) : kPrefillTileRows;
}

void launch_attention_prefill(const PrefillParams& p, cudaStream_t stream) {
  if (p.n_tiles == 0) return;
  if (p.n_tiles > 65535) {
    std::fprintf(stderr, "lcllm: attention prefill: %d tiles exceed the grid's y limit\n", p.n_tiles);
    std::abort();
  }
  if (attention_prefill_v3_applies(p.a.head_dim, p.a.kv.dtype)) {
    launch_attention_prefill_v3(p, heads_per_pack_log2(p.a.n_heads / p.a.n_kv_heads), stream);
    return;
  }
  if (prefill_v2_applies(p.a.head_dim)) {
    if (p.a.head_dim == 64) {
      launch_prefill_v2_d<64>(p, stream);
    } else if (p.a.head_dim == 128) {
      launch_prefill_v2_d<128>(p, stream);
    } else {
      launch_prefill_v2_d<256>(p, stream);
    }
    return;
  }
  if (p.a.kv.dtype == KvDtype::KV_DTYPE_FP8_E4M3) {
    launch_prefill_v1<uint8_t>(p, stream);
  } else {
    launch_prefill_v1<uint16_t>(p, stream);
  }
}

}  // namespace lcllm
