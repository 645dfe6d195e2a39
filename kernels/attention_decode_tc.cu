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
//      stages; S - 1 tiles in flight), swizzled; fp8 also copies the 4-byte words holding each key's scale pair,
//   2. runs S = Q K^T with q split into hi + lo of the MMA's type (two MMAs; q exact to ~2^-17 in bf16, ~2^-22 in
//      fp16), masks, softmax, and O += P V with P in that type (p <= 1).
// bf16 operands come through ldmatrix (V with .trans). fp8 operands are converted in registers, straight from the
// raw bytes (e4m3 -> fp16 is exact), with no converted tile in shared memory: the head dims are permuted so that
// each thread's K fragments of a key are D/4 contiguous bytes (Q takes the same permutation: a dot product does not
// care about the order of its terms), and O's dims so that a thread's V fragments of a key are D/8 contiguous bytes
// (a byte permute pairs two keys' bytes for one dim); O is written back in the cache's order. The per-key
// power-of-two scales multiply S's columns (K) and P's columns (V) in fp32 instead of every element.
// The warps' (o, max, sum) merge in shared memory into the same unnormalised partials the merge kernel reads.
// fp8's fp16 P * V-scale bounds |V| by ~57k (kFp8PBias; an activation that large is far outside what real models
// write).
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

// Ring stages per warp: fp8 4 (3 tiles in flight, 16 KB per warp at head_dim 128), bf16 3 (2 tiles, 24 KB).
template <class T>
constexpr int tc_stages() { return sizeof(T) == 1 ? 4 : 3; }
// Per-warp shared memory: the ring [S][K|V][16][D] of T, swizzled; fp8 adds scale words [S][16] uint32 and scale
// pairs [16] uint16 (padded to 64 bytes).
template <class T>
constexpr size_t tc_raw_bytes(int D) { return size_t(tc_stages<T>()) * 2 * kTcKeys * D * sizeof(T); }
// Rounded up to 128 bytes: a warp's ring starts on a 128-byte line, else each 128-byte cp.async row of a misaligned
// ring costs two shared-memory wavefronts (ncu, fp8 at 128k: 47% excess wavefronts on the copies, all from the odd
// warps, whose rings started 64 bytes into a line).
template <class T>
constexpr size_t tc_warp_bytes(int D) {
  const size_t bytes =
      sizeof(T) == 2 ? tc_raw_bytes<T>(D) : tc_raw_bytes<T>(D) + size_t(tc_stages<T>()) * kTcKeys * 4 + 64;
  return (bytes + 127) / 128 * 128;
}
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
template <class T>
constexpr size_t tc_smem_bytes(int D) { return kTcWarps * tc_warp_bytes<T>(D); }
// The warps' merge buffer sO [4 warps][16 rows][row stride] floats. A warp's writes would otherwise hit one bank
// 32 times (fp8: a store's lanes hold dims (2 t4 + e) DT + dt, all one bank at a row stride of D; ncu at 128k: 3.1M
// excess wavefronts, ~12% of the kernel). fp8: rows padded to D + 4 floats (g spreads over banks 4 apart) and each
// D/4-dim quarter shifted by one float (t4 fills the gaps); bf16 (float2 stores at dims 8 dt + 2 t4): rows padded
// to D + 8, so a half-warp's 16 float2 land in 32 distinct banks.
template <class T>
__host__ __device__ constexpr int32_t tc_merge_row_stride(int D) { return D + (sizeof(T) == 1 ? 4 : 8); }
template <class T, int D>
__device__ __forceinline__ int32_t tc_merge_index(int32_t warp_row, int32_t dim) {
  return warp_row * tc_merge_row_stride<T>(D) + dim + (sizeof(T) == 1 ? dim / (D / 4) : 0);
}

// fp16 (fp8 caches: e4m3 converts exactly) or bf16 (bf16 caches) operands.
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

// Two e4m3 bytes (the low one -> the low half) -> fp16x2, exact.
__device__ __forceinline__ uint32_t fp8x2_to_f16x2(uint32_t w16) {
  uint32_t h;
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h) : "h"(uint16_t(w16)));
  return h;
}

}  // namespace

// T: uint8_t (fp8 cache: fp16 fragments and MMAs) or uint16_t (bf16 cache: bf16 MMAs through ldmatrix).
template <int D, bool kKeySets, class T>
// fp8: at least 3 blocks per SM (<= 168 registers; 12 warps to hide the loads' latency instead of 8).
__global__ void __launch_bounds__(kTcThreads, sizeof(T) == 1 ? 3 : 1) kernel_attention_decode_tc(DecodeParams p) {
  constexpr bool kFp8 = sizeof(T) == 1;
  constexpr int kTcStages = tc_stages<T>();
  constexpr int KK = D / 16;          // k-steps of Q K^T
  constexpr int DT = D / 8;           // n-tiles of O
  constexpr int kChunks16 = D * int(sizeof(T)) / 16;  // 16-byte pieces per key row
  constexpr int kPieces = kTcKeys * kChunks16 / 32;   // 16-byte pieces of K (and of V) per lane per tile
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

  // Q fragments (A operand: M rows g / g + 8 = heads h0 + g (+ 8), dims 16kk + 8 (e >> 1) + 2 t4) in the MMA's type:
  // bf16 caches hi + lo (q exact to ~2^-17, as the bf16 keys deserve); fp8 caches fp16 alone (q to 2^-11 against
  // keys that e4m3 holds to 2^-4: a lo part would add nothing the keys kept, and costs 32 registers and a third of
  // the MMAs — without it the kernel fits 3 blocks per SM).
  uint32_t qa[KK][4], ql[KK][4];
#pragma unroll
  for (int kk = 0; kk < KK; ++kk) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int32_t head = g + 8 * (e & 1);
      // fp8: the MMA's k index 2 t4 (+8) of step kk is head dim (D/4) t4 + 4 kk (+2), the order of the K fragments.
      const int32_t dim = kFp8 ? (D / 4) * t4 + 4 * kk + 2 * (e >> 1) : 16 * kk + 8 * (e >> 1) + 2 * t4;
      float2 x = make_float2(0.f, 0.f);
      if (head < group) x = *reinterpret_cast<const float2*>(a.q + (int64_t(r) * a.n_heads + h0 + head) * D + dim);
      x.x *= qmul;
      x.y *= qmul;
      qa[kk][e] = pack_pair<kFp8>(x.x, x.y);
      if constexpr (!kFp8) {
        const float2 hf = bf2_to_f2(qa[kk][e]);
        ql[kk][e] = pack_bf16(x.x - hf.x, x.y - hf.y);
      }
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
    // Each of the tile's 16 keys is looked up once, by lane kk & 15 (position, block table, slot), and the lanes
    // copying its pieces read the slot by shuffle: the lookups were a third of the fp8 kernel's stall samples when
    // every piece repeated them (ncu, 128k). A slot index fits 32 bits: 2^31 slots of even 128 bytes exceed any GPU.
    const int32_t my_key = k0 + (lane & (kTcKeys - 1));
    const bool my_ok = t < n_tiles && my_key < end;
    const int32_t my_slot = my_ok ? int32_t(src.slot(kKeySets ? keys.position(my_key) : keys.lo + my_key)) : 0;
#pragma unroll
    for (int i = 0; i < kPieces; ++i) {
      const int32_t piece = lane + 32 * i, kk = piece / kChunks16, c = piece % kChunks16;
      const bool ok = t < n_tiles && k0 + kk < end;
      const int32_t slot = __shfl_sync(0xffffffffu, my_slot, kk);
      const int64_t off = int64_t(slot) * src.slot_stride + (16 / int(sizeof(T))) * c;
      // Swizzled: bf16 chunk c of row kk at c ^ (kk & 7) (ldmatrix's order), fp8 by fp8_chunk_offset.
      const uint32_t dst = smem_u32(st_raw + (kFp8 ? fp8_chunk_offset<D>(kk, c)
                                                   : uint32_t(kk * D * int(sizeof(T)) + 16 * (c ^ (kk & 7)))));
      cp_async_16(dst, src.k + off, ok ? 16 : 0);
      cp_async_16(dst + kTcKeys * D * sizeof(T), src.v + off, ok ? 16 : 0);
    }
    if (kFp8 && lane < kTcKeys) {  // this lane's key is my_key
      const uintptr_t sp = reinterpret_cast<uintptr_t>(src.scale + int64_t(my_slot) * src.scale_stride);
      parity = (parity & ~(1u << stage)) | (uint32_t((sp >> 1) & 1) << stage);
      cp_async_4(smem_u32(scale_words + stage * kTcKeys + lane), reinterpret_cast<const void*>(sp & ~uintptr_t(3)),
                 my_ok ? 4 : 0);
    }
  };

  uint32_t k_off[4], v_off[4];  // bf16: ldmatrix addresses in the swizzled tiles (attention_common.cuh)
  swizzled_kv_ldmatrix_offsets<D>(lane, kTcKeys * D * 2, k_off, v_off);

  float o[DT][4];  // fp8: n index 2 t4 (+1) of tile dt is head dim (2 t4 (+1)) * DT + dt (the V fragments' order)
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
    __syncwarp();  // every lane's reads of the stage about to be refilled (and of the scale pairs) are done
    issue((t + kTcStages - 1) % kTcStages, t + kTcStages - 1);
    cp_async_commit();
    cp_async_wait<kTcStages - 1>();  // tile t's copies (this lane's) have landed
    const unsigned char* st_k = raw + size_t(stage) * 2 * kTcKeys * D * sizeof(T);  // [16][D] of T, swizzled
    const unsigned char* st_v = st_k + kTcKeys * D * sizeof(T);
    if (kFp8 && lane < kTcKeys) {  // fp8: each key's scale pair, from its lane's word
      const uint32_t w = scale_words[stage * kTcKeys + lane];
      scale_pairs[lane] = uint16_t(((parity >> stage) & 1u) ? (w >> 16) : (w & 0xffffu));
    }
    __syncwarp();  // every lane's copies and the scale pairs visible to the warp

    // 1. S = Q K^T (bf16: hi + lo), 16 rows x 16 keys; column 2 t4 + (e & 1) of n-tile nt is key 8 nt + 2 t4 + (e & 1).
    // Partial sums per n-tile (even / odd k-steps, x q hi / lo for bf16): chains of KK / 2 dependent MMAs instead of
    // one of 2 KK, whose latency a warp could not hide with two warps per scheduler (ncu, fp8 at 128k: 61% of cycles
    // with no eligible warp).
    float s[2][4], sp[2][4][4];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int c = 0; c < 4; ++c) sp[nt][c][0] = sp[nt][c][1] = sp[nt][c][2] = sp[nt][c][3] = 0.f;
    }
    float ksc[4], vsc[4];  // fp8: scales of this thread's columns' keys 2 t4, 2 t4 + 1, 2 t4 + 8, 2 t4 + 9
    if constexpr (kFp8) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const uint32_t pair = scale_pairs[2 * t4 + (c & 1) + 8 * (c >> 1)];
        ksc[c] = fp8_scale_of(pair & 0xffu);
        vsc[c] = fp8_scale_of(pair >> 8) * kFp8PBias;
      }
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
        // Key 8 nt + g's head dims [(D/4) t4, + D/4): word kk holds the B fragments of k-step kk.
        uint32_t kw[KK];
#pragma unroll
        for (int c = 0; c < KK / 4; ++c) {
          const uint4 x = *reinterpret_cast<const uint4*>(st_k + fp8_chunk_offset<D>(8 * nt + g, (KK / 4) * t4 + c));
          kw[4 * c] = x.x;
          kw[4 * c + 1] = x.y;
          kw[4 * c + 2] = x.z;
          kw[4 * c + 3] = x.w;
        }
#pragma unroll
        for (int kk = 0; kk < KK; ++kk) {
          const uint32_t b0 = fp8x2_to_f16x2(kw[kk]), b1 = fp8x2_to_f16x2(kw[kk] >> 16);
          mma_16816<true>(sp[nt][kk & 1], qa[kk], b0, b1);
        }
      }
    } else {
      const uint32_t tile_u32 = smem_u32(st_k);
#pragma unroll
      for (int kk = 0; kk < KK; ++kk) {
        uint32_t b[4];
        ldmatrix_x4(b, tile_u32 + k_off[kk & 3] + uint32_t((kk >> 2) * 128));
        mma_16816<false>(sp[0][kk & 1], qa[kk], b[0], b[1]);
        mma_16816<false>(sp[1][kk & 1], qa[kk], b[2], b[3]);
        mma_16816<false>(sp[0][2 + (kk & 1)], ql[kk], b[0], b[1]);
        mma_16816<false>(sp[1][2 + (kk & 1)], ql[kk], b[2], b[3]);
      }
    }
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        if constexpr (kFp8) {
          s[nt][e] = (sp[nt][0][e] + sp[nt][1][e]) * ksc[2 * nt + (e & 1)];
        } else {
          s[nt][e] = (sp[nt][0][e] + sp[nt][1][e]) + (sp[nt][2][e] + sp[nt][3][e]);
        }
      }
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
    // 3. O += P V (P in the MMA's type: p <= 1; fp8: times the key's V scale and kFp8PBias).
    if constexpr (kFp8) {
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) s[nt][e] *= vsc[2 * nt + (e & 1)];
      }
    }
    uint32_t pa[4];
    pa[0] = pack_pair<kFp8>(s[0][0], s[0][1]);
    pa[1] = pack_pair<kFp8>(s[0][2], s[0][3]);
    pa[2] = pack_pair<kFp8>(s[1][0], s[1][1]);
    pa[3] = pack_pair<kFp8>(s[1][2], s[1][3]);
    if constexpr (kFp8) {
      // Keys 2 t4 + {0, 1, 8, 9}: head dims [g DT, + DT) — dims g DT + dt for every n-tile dt of O.
      constexpr int kWords = DT / 4;
      uint32_t vw[4][kWords];
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int32_t key = 2 * t4 + (c & 1) + 8 * (c >> 1);
        if constexpr (kWords == 4) {
          const uint4 x = *reinterpret_cast<const uint4*>(st_v + fp8_chunk_offset<D>(key, g));
          vw[c][0] = x.x;
          vw[c][1] = x.y;
          vw[c][2] = x.z;
          vw[c][3] = x.w;
        } else {
          const uint2 x = *reinterpret_cast<const uint2*>(st_v + fp8_chunk_offset<D>(key, g >> 1) + 8 * (g & 1));
          vw[c][0] = x.x;
          vw[c][1] = x.y;
        }
      }
#pragma unroll
      for (int w = 0; w < kWords; ++w) {
        // Dims 4 w .. 4 w + 3 of the slice: pairs (key 2 t4, 2 t4 + 1) -> b0, (2 t4 + 8, 2 t4 + 9) -> b1. __byte_perm
        // selector 0x5140 gives (a.b0, b.b0, a.b1, b.b1) and 0x7362 (a.b2, b.b2, a.b3, b.b3): two keys' bytes per dim.
        const uint32_t lo01 = __byte_perm(vw[0][w], vw[1][w], 0x5140), hi01 = __byte_perm(vw[0][w], vw[1][w], 0x7362);
        const uint32_t lo89 = __byte_perm(vw[2][w], vw[3][w], 0x5140), hi89 = __byte_perm(vw[2][w], vw[3][w], 0x7362);
        mma_16816<true>(o[4 * w], pa, fp8x2_to_f16x2(lo01), fp8x2_to_f16x2(lo89));
        mma_16816<true>(o[4 * w + 1], pa, fp8x2_to_f16x2(lo01 >> 16), fp8x2_to_f16x2(lo89 >> 16));
        mma_16816<true>(o[4 * w + 2], pa, fp8x2_to_f16x2(hi01), fp8x2_to_f16x2(hi89));
        mma_16816<true>(o[4 * w + 3], pa, fp8x2_to_f16x2(hi01 >> 16), fp8x2_to_f16x2(hi89 >> 16));
      }
    } else {
      const uint32_t tile_u32 = smem_u32(st_k);
#pragma unroll
      for (int dp = 0; dp < DT / 2; ++dp) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, tile_u32 + v_off[dp & 3] + uint32_t((dp >> 2) * 128));
        mma_16816<false>(o[2 * dp], pa, b[0], b[1]);
        mma_16816<false>(o[2 * dp + 1], pa, b[2], b[3]);
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // every warp is done with its ring: the merge reuses the memory

  // Merge the 4 warps: sM, sL [4][16], sO [4][16][tc_merge_row_stride] floats.
  static_assert(size_t(kTcWarps) * 16 * (2 + tc_merge_row_stride<T>(D)) * sizeof(float) <= tc_smem_bytes<T>(D),
                "the merge fits in the rings' memory");
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
    if (row >= group) continue;  // M rows past the GQA group hold nothing the merge reads
    const int32_t wr = warp * 16 + row;
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {  // the cache's dim order, through tc_merge_index
      if constexpr (kFp8) {
        sO[tc_merge_index<T, D>(wr, (2 * t4) * DT + dt)] = o[dt][2 * i] * (1.f / kFp8PBias);
        sO[tc_merge_index<T, D>(wr, (2 * t4 + 1) * DT + dt)] = o[dt][2 * i + 1] * (1.f / kFp8PBias);
      } else {
        *reinterpret_cast<float2*>(sO + tc_merge_index<T, D>(wr, 8 * dt + 2 * t4)) =
            make_float2(o[dt][2 * i], o[dt][2 * i + 1]);
      }
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
        acc += wt * sO[tc_merge_index<T, D>(w * 16 + row, d)];
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
    // All of L1 as shared memory: the occupancy the registers allow (fp8: 3 x 67 KB) needs it.
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared));
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
