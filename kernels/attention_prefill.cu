// Prefill attention, first correct version: a tiled flash-attention kernel with online softmax in fp32 on the
// CUDA cores (no tensor cores yet). One block = one head x up to kPrefillTileRows query rows of one sequence;
// it walks the union of the rows' visible key ranges in tiles of kKeyTile keys gathered from the paged pool.
#include <atomic>
#include <cfloat>

#include <cuda_bf16.h>

#include "kernels/attention.h"
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
        const int64_t off = (slot * a.n_kv_heads + kvh) * D + d;
        kf = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(a.k_pool + off));
        vf = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(a.v_pool + off));
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

// ---- launchers ----------------------------------------------------------------------------------------------

void launch_attention_prefill(const PrefillParams& p, cudaStream_t stream) {
  if (p.n_tiles == 0) return;
  // Above 48 KB of dynamic shared memory needs an opt-in, once per device (one bit per device ordinal).
  static std::atomic<uint64_t> configured{0};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  const uint64_t bit = uint64_t(1) << (device & 63);
  if ((configured.load() & bit) == 0) {
    CUDA_CHECK(cudaFuncSetAttribute(kernel_attention_prefill, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    int(prefill_smem_bytes(kAttentionMaxHeadDim))));
    configured.fetch_or(bit);
  }
  const dim3 grid(unsigned(p.n_tiles), unsigned(p.a.n_heads));
  kernel_attention_prefill<<<grid, kThreads, prefill_smem_bytes(p.a.head_dim), stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

}  // namespace lcllm
