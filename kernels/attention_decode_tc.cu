// Split-KV decode on the tensor cores (E9 item 2; E11 item 3), bf16 and fp8 KV caches, head_dim 64 and 128.
//
// Why: on the CUDA cores a decode step costs ~head_dim x group FMAs per key for q·k and as many for p·v, whatever
// the bytes per key; that work, not HBM, bounds the CUDA-core split-KV kernel (H200, Llama-3.1-8B shape: bf16 at
// 2.5 TB/s, fp8 at 1.1 TB/s). Here the GQA group's query heads are the M rows of mma.m16n8k16 (up to 16 heads), so
// one MMA does a 16-dim slice of q·k for 8 keys and every head at once (end to end at 512k: 31.9 -> 21.7 ms/token).
//
// Block = (query row, KV head, key split), 4 warps; warp w takes the split's 16-key tiles w, w + 4, ... and keeps its
// own online softmax (log2 domain). Per tile a warp
//   1. copies the tile's K and V (16 keys x head_dim, paged) into its own shared-memory ring with cp.async (S
//      stages; S - 1 tiles in flight): bf16 straight into swizzled tiles; fp8 as raw bytes plus the 4-byte words
//      holding each key's scale pair,
//   2. fp8 only: converts the bytes to fp16 times the key's power-of-two scale (exact: e4m3 values have 4
//      significant bits) into a swizzled K and V tile,
//   3. runs S = Q K^T with q split into hi + lo of the MMA's type (two MMAs; q exact to ~2^-17 in bf16, ~2^-22 in
//      fp16), masks, softmax, and O += P V with P in that type (p <= 1) and V through ldmatrix.trans.
// The warps' (o, max, sum) merge in shared memory into the same unnormalised partials the merge kernel reads.
// fp16 tiles bound |K|, |V| by 65504 (an activation that large is far outside what real models write).
#include <atomic>

#include <cuda_fp16.h>

#include "kernels/attention.h"
#include "kernels/attention_common.cuh"
#include "kernels/attention_decode_keys.cuh"
#include "kernels/cuda_check.h"

namespace lcllm {

namespace {

constexpr int kTcThreads = 128;
constexpr int kTcWarps = kTcThreads / 32;
constexpr int kTcKeys = 16;   // keys per warp tile: two n-tiles of S, one k-chunk of P V

// Ring stages per warp: fp8 4 (3 tiles in flight, 12 KB per warp at head_dim 128), bf16 3 (2 tiles, 16 KB).
template <class T>
constexpr int tc_stages() { return sizeof(T) == 1 ? 4 : 3; }
// Per-warp shared memory. fp8: raw ring [S][K|V][16][D] bytes, scale words [S][16] uint32, scale pairs [16] uint16
// (padded to 64 bytes), then the fp16 K and V tiles [16][D] each. bf16: the ring's stages are the swizzled tiles.
template <class T>
constexpr size_t tc_raw_bytes(int D) { return size_t(tc_stages<T>()) * 2 * kTcKeys * D * sizeof(T); }
template <class T>
constexpr size_t tc_warp_bytes(int D) {
  return sizeof(T) == 2 ? tc_raw_bytes<T>(D)
                        : tc_raw_bytes<T>(D) + size_t(tc_stages<T>()) * kTcKeys * 4 + 64 + 2 * size_t(kTcKeys) * D * 2;
}
template <class T>
constexpr size_t tc_smem_bytes(int D) { return kTcWarps * tc_warp_bytes<T>(D); }

// fp16 (fp8 caches: tiles converted exactly) or bf16 (bf16 caches) operands.
template <bool kF16>
__device__ __forceinline__ uint32_t pack_pair(float lo, float hi);

__device__ __forceinline__ uint32_t pack_f16(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

template <>
__device__ __forceinline__ uint32_t pack_pair<true>(float lo, float hi) { return pack_f16(lo, hi); }
template <>
__device__ __forceinline__ uint32_t pack_pair<false>(float lo, float hi) { return pack_bf16(lo, hi); }

// D = A * B + D, A 16x16 (row), B 16x8 (col) of fp16 (kF16) or bf16, D 16x8 fp32.
template <bool kF16>
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (kF16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    mma_bf16_16816(d, a, b0, b1);
  }
}

// Two e4m3 bytes times a power-of-two scale -> fp16x2 (exact within fp16's range).
__device__ __forceinline__ uint32_t fp8x2_scaled_f16x2(uint16_t w, __half2 scale) {
  uint32_t h;
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h) : "h"(w));
  const __half2 v = __hmul2(*reinterpret_cast<const __half2*>(&h), scale);
  return *reinterpret_cast<const uint32_t*>(&v);
}

}  // namespace

// T: uint8_t (fp8 cache: fp16 tiles and MMAs) or uint16_t (bf16 cache: the ring's stages are the tiles, bf16 MMAs).
template <int D, bool kKeySets, class T>
__global__ void __launch_bounds__(kTcThreads) kernel_attention_decode_tc(DecodeParams p) {
  constexpr bool kFp8 = sizeof(T) == 1;
  constexpr int kTcStages = tc_stages<T>();
  constexpr int KK = D / 16;          // k-steps of Q K^T
  constexpr int DT = D / 8;           // n-tiles of O
  constexpr int kChunks16 = D * int(sizeof(T)) / 16;  // 16-byte pieces per key row
  constexpr int kPieces = kTcKeys * kChunks16 / 32;   // 16-byte pieces of K (and of V) per lane per tile
  constexpr uint32_t kTileBytes = kTcKeys * D * 2;  // one fp16 tile
  const AttentionCommon& a = p.a;
  extern __shared__ __align__(128) unsigned char smem_tc[];

  const int32_t group = a.n_heads / a.n_kv_heads;  // <= 16
  const int32_t kvh = int32_t(blockIdx.x % unsigned(a.n_kv_heads));
  const int32_t ri = int32_t(blockIdx.x / unsigned(a.n_kv_heads));  // row of this launch
  const int32_t r = p.ks.rows != nullptr ? p.ks.rows[ri] : ri;      // row of q / out
  const int32_t split = blockIdx.y, h0 = kvh * group;
  const int32_t lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;

  asm volatile("griddepcontrol.launch_dependents;");
  const BlockKeys keys = block_keys<kKeySets>(p, r, kvh);
  const int32_t begin = split * p.split_len;
  const int32_t end = min(keys.n, begin + p.split_len);
  const KvHeadSourceT<T> src = kv_head_source<T>(a, a.row_seq[r], kvh);
  const bool capped = a.softcap > 0.f;
  const float qmul = capped ? a.scale : a.scale * kLog2e;

  unsigned char* wbase = smem_tc + size_t(warp) * tc_warp_bytes<T>(D);
  unsigned char* raw = wbase;                                                        // [S][2][16][D] of T
  uint32_t* scale_words = reinterpret_cast<uint32_t*>(wbase + tc_raw_bytes<T>(D));   // fp8: [S][16]
  uint16_t* scale_pairs = reinterpret_cast<uint16_t*>(scale_words + kTcStages * kTcKeys);  // fp8: [16]
  unsigned char* tiles = wbase + tc_raw_bytes<T>(D) + kTcStages * kTcKeys * 4 + 64;  // fp8: fp16 K [16][D], V [16][D]

  // Q fragments (A operand: M rows g / g + 8 = heads h0 + g (+ 8), dims 16kk + 8 (e >> 1) + 2 t4), hi + lo in the
  // MMA's type (fp16 for fp8 caches, bf16 for bf16).
  uint32_t qa[KK][4], ql[KK][4];
#pragma unroll
  for (int kk = 0; kk < KK; ++kk) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int32_t head = g + 8 * (e & 1);
      const int32_t dim = 16 * kk + 8 * (e >> 1) + 2 * t4;
      float2 x = make_float2(0.f, 0.f);
      if (head < group) x = *reinterpret_cast<const float2*>(a.q + (int64_t(r) * a.n_heads + h0 + head) * D + dim);
      x.x *= qmul;
      x.y *= qmul;
      qa[kk][e] = pack_pair<kFp8>(x.x, x.y);
      float2 hf;
      if constexpr (kFp8) {
        hf = __half22float2(*reinterpret_cast<const __half2*>(&qa[kk][e]));
      } else {
        hf = bf2_to_f2(qa[kk][e]);
      }
      ql[kk][e] = pack_pair<kFp8>(x.x - hf.x, x.y - hf.y);
    }
  }

  // This warp's tiles: logical keys [begin + 16 (warp + 4 i), + 16).
  const int32_t first_tile = begin + warp * kTcKeys;
  constexpr int32_t kTileStep = kTcWarps * kTcKeys;
  const int32_t n_tiles = first_tile < end ? (end - first_tile + kTileStep - 1) / kTileStep : 0;
  uint32_t parity = 0;  // bit st: this lane's key (lane < 16) has its scale pair in its word's upper half
  auto issue = [&](int stage, int32_t t) {
    const int32_t k0 = first_tile + t * kTileStep;
    unsigned char* st_raw = raw + size_t(stage) * 2 * kTcKeys * D * sizeof(T);
#pragma unroll
    for (int i = 0; i < kPieces; ++i) {
      const int32_t piece = lane + 32 * i, kk = piece / kChunks16, c = piece % kChunks16;
      const int32_t j = k0 + kk;
      const bool ok = t < n_tiles && j < end;
      const int64_t slot = ok ? src.slot(kKeySets ? keys.position(j) : keys.lo + j) : 0;
      const int64_t off = slot * src.slot_stride + (16 / int(sizeof(T))) * c;
      // fp8: raw rows; bf16: straight into the swizzled tile (chunk c of row kk at c ^ (kk & 7)).
      const uint32_t dst = smem_u32(st_raw + size_t(kk) * D * sizeof(T) + 16 * (kFp8 ? c : (c ^ (kk & 7))));
      cp_async_16(dst, src.k + off, ok ? 16 : 0);
      cp_async_16(dst + kTcKeys * D * sizeof(T), src.v + off, ok ? 16 : 0);
    }
    if (kFp8 && lane < kTcKeys) {
      const int32_t j = k0 + lane;
      const bool ok = t < n_tiles && j < end;
      const int64_t slot = ok ? src.slot(kKeySets ? keys.position(j) : keys.lo + j) : 0;
      const uintptr_t sp = reinterpret_cast<uintptr_t>(src.scale + slot * src.scale_stride);
      parity = (parity & ~(1u << stage)) | (uint32_t((sp >> 1) & 1) << stage);
      cp_async_4(smem_u32(scale_words + stage * kTcKeys + lane), reinterpret_cast<const void*>(sp & ~uintptr_t(3)),
                 ok ? 4 : 0);
    }
  };

  uint32_t k_off[4], v_off[4];  // ldmatrix addresses in the swizzled tiles (attention_common.cuh)
  swizzled_kv_ldmatrix_offsets<D>(lane, kTileBytes, k_off, v_off);

  float o[DT][4];
#pragma unroll
  for (int dt = 0; dt < DT; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

#pragma unroll
  for (int st = 0; st < kTcStages - 1; ++st) {
    issue(st, st);
    cp_async_commit();
  }
  for (int32_t t = 0; t < n_tiles; ++t) {
    const int stage = t % kTcStages;
    __syncwarp();  // bf16: every lane's ldmatrix reads of the stage about to be refilled are done
    issue((t + kTcStages - 1) % kTcStages, t + kTcStages - 1);
    cp_async_commit();
    cp_async_wait<kTcStages - 1>();  // tile t's copies (this lane's) have landed
    const uint32_t tiles_u32 = kFp8 ? smem_u32(tiles) : smem_u32(raw + size_t(stage) * 2 * kTcKeys * D * sizeof(T));
    // 1. fp8: each key's scale pair, from its lane's word.
    if (kFp8 && lane < kTcKeys) {
      const uint32_t w = scale_words[stage * kTcKeys + lane];
      scale_pairs[lane] = uint16_t(((parity >> stage) & 1u) ? (w >> 16) : (w & 0xffffu));
    }
    __syncwarp();  // scale pairs and every lane's raw bytes visible to the warp; last tile's ldmatrix reads done
    // 2. fp8: raw e4m3 -> scaled fp16 tiles; a lane converts the pieces it copied.
    const unsigned char* st_raw = raw + size_t(stage) * 2 * kTcKeys * D;
#pragma unroll
    for (int i = 0; i < (kFp8 ? kPieces : 0); ++i) {
      const int32_t piece = lane + 32 * i, kk = piece / kChunks16, c = piece % kChunks16;
      const uint32_t pair = scale_pairs[kk];
      const __half2 ksc = __float2half2_rn(fp8_scale_of(pair & 0xffu));
      const __half2 vsc = __float2half2_rn(fp8_scale_of(pair >> 8));
#pragma unroll
      for (int kv = 0; kv < 2; ++kv) {
        const uint4 x = *reinterpret_cast<const uint4*>(st_raw + kv * kTcKeys * D + kk * D + 16 * c);
        const __half2 sc = kv == 0 ? ksc : vsc;
        const uint4 lo = make_uint4(fp8x2_scaled_f16x2(uint16_t(x.x), sc), fp8x2_scaled_f16x2(uint16_t(x.x >> 16), sc),
                                    fp8x2_scaled_f16x2(uint16_t(x.y), sc), fp8x2_scaled_f16x2(uint16_t(x.y >> 16), sc));
        const uint4 hi = make_uint4(fp8x2_scaled_f16x2(uint16_t(x.z), sc), fp8x2_scaled_f16x2(uint16_t(x.z >> 16), sc),
                                    fp8x2_scaled_f16x2(uint16_t(x.w), sc), fp8x2_scaled_f16x2(uint16_t(x.w >> 16), sc));
        unsigned char* tile = tiles + kv * kTileBytes + size_t(kk) * D * 2;
        *reinterpret_cast<uint4*>(tile + (((2 * c) ^ (kk & 7)) * 16)) = lo;
        *reinterpret_cast<uint4*>(tile + (((2 * c + 1) ^ (kk & 7)) * 16)) = hi;
      }
    }
    __syncwarp();
    // 3. S = Q K^T (hi + lo), 16 rows x 16 keys.
    float s[2][4];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < KK; ++kk) {
      uint32_t b[4];
      ldmatrix_x4(b, tiles_u32 + k_off[kk & 3] + uint32_t((kk >> 2) * 128));
      mma_16816<kFp8>(s[0], qa[kk], b[0], b[1]);
      mma_16816<kFp8>(s[1], qa[kk], b[2], b[3]);
      mma_16816<kFp8>(s[0], ql[kk], b[0], b[1]);
      mma_16816<kFp8>(s[1], ql[kk], b[2], b[3]);
    }
    const int32_t k0 = first_tile + t * kTileStep;
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[nt][e];
        if (capped) x = a.softcap * tanhf(x / a.softcap) * kLog2e;
        if (k0 + nt * 8 + 2 * t4 + (e & 1) >= end) x = -INFINITY;
        s[nt][e] = x;
      }
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float mx = fmaxf(fmaxf(s[0][2 * i], s[0][2 * i + 1]), fmaxf(s[1][2 * i], s[1][2 * i + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[i], mx);
      const float mu = m_new == -INFINITY ? 0.f : m_new;
      const float alpha = exp2f(m[i] - mu);
      m[i] = m_new;
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
        s[nt][2 * i] = exp2f(s[nt][2 * i] - mu);
        s[nt][2 * i + 1] = exp2f(s[nt][2 * i + 1] - mu);
        sum += s[nt][2 * i] + s[nt][2 * i + 1];
      }
      l[i] = l[i] * alpha + sum;
#pragma unroll
      for (int dt = 0; dt < DT; ++dt) {
        o[dt][2 * i] *= alpha;
        o[dt][2 * i + 1] *= alpha;
      }
    }
    // 4. O += P V (P in the MMA's type: p <= 1).
    uint32_t pa[4];
    pa[0] = pack_pair<kFp8>(s[0][0], s[0][1]);
    pa[1] = pack_pair<kFp8>(s[0][2], s[0][3]);
    pa[2] = pack_pair<kFp8>(s[1][0], s[1][1]);
    pa[3] = pack_pair<kFp8>(s[1][2], s[1][3]);
#pragma unroll
    for (int dp = 0; dp < DT / 2; ++dp) {
      uint32_t b[4];
      ldmatrix_x4_trans(b, tiles_u32 + v_off[dp & 3] + uint32_t((dp >> 2) * 128));
      mma_16816<kFp8>(o[2 * dp], pa, b[0], b[1]);
      mma_16816<kFp8>(o[2 * dp + 1], pa, b[2], b[3]);
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // every warp is done with its ring: the merge reuses the memory

  // Merge the 4 warps: sM, sL [4][16], sO [4][16][D] floats.
  float* sM = reinterpret_cast<float*>(smem_tc);
  float* sL = sM + kTcWarps * 16;
  float* sO = sL + kTcWarps * 16;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
    const int32_t row = g + 8 * i;
    if (t4 == 0) {
      sM[warp * 16 + row] = m[i];
      sL[warp * 16 + row] = l[i];
    }
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {
      *reinterpret_cast<float2*>(sO + (size_t(warp) * 16 + row) * D + 8 * dt + 2 * t4) =
          make_float2(o[dt][2 * i], o[dt][2 * i + 1]);
    }
  }
  __syncthreads();
  for (int32_t e = threadIdx.x; e < group * D; e += kTcThreads) {
    const int32_t row = e / D, d = e % D;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < kTcWarps; ++w) mx = fmaxf(mx, sM[w * 16 + row]);
    float acc = 0.f, sum = 0.f;
    if (mx != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kTcWarps; ++w) {
        const float mw = sM[w * 16 + row];
        const float wt = mw == -INFINITY ? 0.f : exp2f(mw - mx);
        acc += wt * sO[(size_t(w) * 16 + row) * D + d];
        sum += wt * sL[w * 16 + row];
      }
    }
    const int64_t part = (int64_t(ri) * a.n_heads + h0 + row) * p.n_splits + split;
    p.part_o[part * D + d] = acc;
    if (d == 0) {
      p.part_ml[2 * part] = mx;
      p.part_ml[2 * part + 1] = sum;
    }
  }
}

// ---- launchers ----------------------------------------------------------------------------------------------

namespace {

template <int D, bool kKeySets, class T>
void launch_tc_instance(const DecodeParams& p, cudaStream_t stream, int* occupancy) {
  auto kernel = kernel_attention_decode_tc<D, kKeySets, T>;
  constexpr size_t smem = tc_smem_bytes<T>(D);
  static std::atomic<uint64_t> configured{0};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  const uint64_t bit = uint64_t(1) << (device & 63);
  if ((configured.load() & bit) == 0) {
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    configured.fetch_or(bit);
  }
  if (occupancy != nullptr) {
    CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(occupancy, kernel, kTcThreads, smem));
    return;
  }
  const int32_t rows = p.ks.rows != nullptr ? p.ks.n_listed_rows : p.a.n_rows;
  const dim3 grid(unsigned(int64_t(rows) * p.a.n_kv_heads), unsigned(p.n_splits));
  kernel<<<grid, kTcThreads, smem, stream>>>(p);
  CUDA_CHECK_LAUNCH();
}

template <int D, class T>
void launch_tc_d(const DecodeParams& p, cudaStream_t stream, int* occupancy) {
  if (p.ks.sets != nullptr) {
    launch_tc_instance<D, true, T>(p, stream, occupancy);
  } else {
    launch_tc_instance<D, false, T>(p, stream, occupancy);
  }
}

template <class T>
void launch_tc_t(const DecodeParams& p, cudaStream_t stream, int* occupancy) {
  if (p.a.head_dim == 64) {
    launch_tc_d<64, T>(p, stream, occupancy);
  } else {
    launch_tc_d<128, T>(p, stream, occupancy);
  }
}

void launch_tc(const DecodeParams& p, cudaStream_t stream, int* occupancy) {
  if (p.a.kv.dtype == KvDtype::KV_DTYPE_FP8_E4M3) {
    launch_tc_t<uint8_t>(p, stream, occupancy);
  } else {
    launch_tc_t<uint16_t>(p, stream, occupancy);
  }
}

}  // namespace

bool attention_decode_tc_applies(int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, KvDtype dtype,
                                 bool stores_scores) {
  const int32_t group = n_heads / n_kv_heads;
  // head_dim 256 would hold 128 q and 128 o registers per thread and spill: it keeps the CUDA-core kernel.
  const bool dtype_ok = dtype == KvDtype::KV_DTYPE_FP8_E4M3 || dtype == KvDtype::KV_DTYPE_BF16;
  return dtype_ok && !stores_scores && group <= 16 && (head_dim == 64 || head_dim == 128);
}

int attention_decode_tc_occupancy(int32_t head_dim, KvDtype dtype) {
  static std::atomic<int> cache[64][2][2] = {};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  const int di = head_dim == 64 ? 0 : 1, ti = dtype == KvDtype::KV_DTYPE_FP8_E4M3 ? 1 : 0;
  std::atomic<int>& slot = cache[device & 63][di][ti];
  if (const int c = slot.load(); c > 0) return c;
  int occ = 1 << 30;
  for (const bool sets : {false, true}) {  // both instances plan the same splits
    DecodeParams p{};
    p.a.head_dim = head_dim;
    p.a.kv.dtype = dtype;
    int32_t dummy = 0;
    if (sets) p.ks.sets = &dummy;
    int o = 0;
    launch_tc(p, nullptr, &o);
    occ = std::min(occ, o);
  }
  slot.store(std::max(occ, 1));
  return std::max(occ, 1);
}

void launch_attention_decode_tc(const DecodeParams& p, cudaStream_t stream) { launch_tc(p, stream, nullptr); }

}  // namespace lcllm
