// Split-KV decode on the tensor cores (E9 item 2; E11 item 3), bf16 and fp8 KV caches, head_dim 64 and 128.
//
// Why: on the CUDA cores a decode step costs ~head_dim x group FMAs per key for q·k and as many for p·v, whatever
// the bytes per key; that work, not HBM, bounds the CUDA-core split-KV kernel (H200, Llama-3.1-8B shape: bf16 at
// 2.5 TB/s, fp8 at 1.1 TB/s). Here one mma.m16n8k16 does a 16-dim slice of q·k for 8 or 16 keys and every head of
// the GQA group at once (bf16: up to 16 heads as the M rows; fp8: up to 8 heads per N block), end to end at 512k
// 31.9 -> 21.7 ms/token on the H200 when it came.
//
// Block = (query row, KV head, key split), 4 warps; warp w takes the split's 16-key tiles w, w + 4, ... and keeps its
// own online softmax (log2 domain). Per tile a warp
//   1. copies the tile's K and V (16 keys x head_dim, paged) into its own shared-memory ring with cp.async (S
//      stages: bf16 S - 1 tiles in flight while one is multiplied, fp8 S - 2 while a pair is), swizzled; fp8 also
//      copies the 4-byte words holding each key's scale pair,
//   2. multiplies, masks and runs the softmax in one of two layouts:
//      bf16 (Bf16HeadMajorDecode, attention_decode_tc_bf16.cuh): the group's heads are the M rows, S = Q K^T with q
//      as bf16 hi + lo (q exact to ~2^-17), O += P V, K and V fragments through ldmatrix;
//      fp8 (Fp8KeyMajorDecode, attention_decode_tc_fp8.cuh): the tile's keys are the M rows, S^T = K Q^T and
//      O^T += V^T P^T with the heads as N, operands converted in registers from the raw e4m3 bytes (exact in fp16)
//      and the per-key power-of-two scales applied to S's and P's rows in fp32.
// The warps' (o, max, sum) merge in shared memory into the same unnormalised partials the merge kernel reads.
// fp8's fp16 P * V-scale bounds |V| by ~57k (kFp8PBias; an activation that large is far outside what real models
// write).
#include <atomic>
#include <type_traits>

#include "kernels/attention.h"
#include "kernels/attention_common.cuh"
#include "kernels/attention_decode_keys.cuh"
#include "kernels/attention_decode_tc_bf16.cuh"
#include "kernels/attention_decode_tc_fp8.cuh"
#include "kernels/cuda_check.h"
#include "kernels/pdl.cuh"

namespace lcllm {

namespace {

constexpr int kTcThreads = 128;
constexpr int kTcWarps = kTcThreads / 32;
// Keys per warp tile (one ring stage): one k-chunk of P V; S's two n-tiles (bf16) or its M rows (fp8).
constexpr int kTcKeys = 16;

// Ring stages per warp: fp8 4, two pairs (one in flight while one is multiplied; 16 KB per warp at head_dim 128),
// bf16 3 (2 tiles in flight; 24 KB).
template <class T>
constexpr int tc_stages() { return sizeof(T) == 1 ? 4 : 3; }
// Per-warp shared memory: the ring [S][K|V][16][D] of T, swizzled; fp8 adds scale words [S][16] uint32 and scale
// pairs [2][16] uint16 (64 bytes).
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
template <class T>
constexpr size_t tc_smem_bytes(int D) { return kTcWarps * tc_warp_bytes<T>(D); }
template <class T, int D>
__device__ __forceinline__ int32_t tc_merge_index(int32_t row, int32_t dim) {
  if constexpr (sizeof(T) == 1) {
    return fp8_merge_index<D>(row, dim);
  } else {
    return bf16_merge_index<D>(row, dim);
  }
}
template <class T, int D>
constexpr int32_t tc_merge_row_stride() { return sizeof(T) == 1 ? fp8_merge_stride<D>() : bf16_merge_stride<D>(); }

}  // namespace

// T: uint8_t (fp8 cache: Fp8KeyMajorDecode, attention_decode_tc_fp8.cuh) or uint16_t (bf16: Bf16HeadMajorDecode).
// NG: fp8's 8-head column blocks (1 for GQA groups up to 8, 2 up to 16); bf16 takes 1.
template <int D, bool kKeySets, class T, int NG>
// fp8: at least 3 blocks per SM (<= 168 registers: 12 warps to hide the loads' latency instead of 8); with two 8-head
// blocks (NG 2, groups over 8) 2, which its registers need to run without spilling.
__global__ void __launch_bounds__(kTcThreads, sizeof(T) == 1 ? (NG == 1 ? 3 : 2) : 1)
    kernel_attention_decode_tc(DecodeParams p) {
  constexpr bool kFp8 = sizeof(T) == 1;
  constexpr int kTcStages = tc_stages<T>();
  constexpr int kChunks16 = D * int(sizeof(T)) / 16;  // 16-byte pieces per key row
  constexpr int kPieces = kTcKeys * kChunks16 / 32;   // 16-byte pieces of K (and of V) per lane per tile
  const AttentionCommon& a = p.a;
  extern __shared__ __align__(128) unsigned char smem_tc[];

  const int32_t group = a.n_heads / a.n_kv_heads;  // <= 16 (fp8: <= 8 NG)
  const int32_t kvh = int32_t(blockIdx.x % unsigned(a.n_kv_heads));
  const int32_t ri = int32_t(blockIdx.x / unsigned(a.n_kv_heads));  // row of this launch
  const int32_t r = p.ks.rows != nullptr ? p.ks.rows[ri] : ri;      // row of q / out
  const int32_t split = blockIdx.y, h0 = kvh * group;
  const int32_t lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t4 = lane & 3;

  // Dense rows whose older keys are all in the pool before the previous kernel ran (DecodeParams::old_keys_early)
  // start copying them before waiting for it; what they read before the wait (key ranges, block tables) was uploaded
  // before the step's first kernel. Key sets come from this step's selection kernels: after the wait.
  pdl_release();  // the merge grid may launch once every split block runs; it waits for this grid itself
  const bool early = !kKeySets && p.old_keys_early != 0;
  if (!early) pdl_wait();
  const BlockKeys keys = block_keys<kKeySets>(p, r, kvh);
  const int32_t begin = split * p.split_len;
  const int32_t end = min(keys.n, begin + p.split_len);
  const KvHeadSourceT<T> src = kv_head_source<T>(a, a.row_seq[r], kvh);
  const float softcap = a.softcap;
  const float qmul = softcap > 0.f ? a.scale : a.scale * kLog2e;

  unsigned char* wbase = smem_tc + size_t(warp) * tc_warp_bytes<T>(D);
  unsigned char* raw = wbase;                                                        // [S][2][16][D] of T
  uint32_t* scale_words = reinterpret_cast<uint32_t*>(wbase + tc_raw_bytes<T>(D));   // fp8: [S][16]
  uint16_t* scale_pairs = reinterpret_cast<uint16_t*>(scale_words + kTcStages * kTcKeys);  // fp8: [2][16]

  std::conditional_t<kFp8, Fp8KeyMajorDecode<D, NG>, Bf16HeadMajorDecode<D>> acc;
  const float* q_group = a.q + (int64_t(r) * a.n_heads + h0) * D;  // [group][D]

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

  // The ring's first fill: tiles 0 and 1 (fp8: one pair of its two; bf16: two of its three stages).
  static_assert(kTcStages == (kFp8 ? 4 : 3), "the prologue below fills tiles 0 and 1");
  auto issue_prologue = [&] {
    if constexpr (kFp8) {
      issue(0, 0);
      issue(1, 1);
      cp_async_commit();
    } else {
      issue(0, 0);
      cp_async_commit();
      issue(1, 1);
      cp_async_commit();
    }
  };
  // Before the wait only if tiles 0 and 1 hold no key at or past the row's last (the one the previous kernel wrote).
  const bool prologue_early = early && min(end, first_tile + kTileStep + kTcKeys) <= keys.n - 1;
  if (prologue_early) issue_prologue();
  if (early) pdl_wait();
  if constexpr (kFp8) {
    acc.init(q_group, group, qmul, g, t4);
  } else {
    acc.init(q_group, group, qmul, g, t4, lane, kTcKeys * D * 2);
  }
  if (!prologue_early) issue_prologue();

  if constexpr (kFp8) {
    // fp8 takes its tiles two at a time (Fp8KeyMajorDecode::tile_pair): the ring's stages are pairs, all but one
    // landing while one is multiplied. Scale pairs of the two tiles: scale_pairs[0, 16) and [16, 32).
    constexpr int kPairs = kTcStages / 2;
    static_assert(kTcStages % 2 == 0, "the ring holds whole pairs");
    for (int32_t t = 0; t < n_tiles; t += 2) {
      const int stage = t % kTcStages;
      __syncwarp();  // every lane's reads of the pair about to be refilled (and of the scale pairs) are done
      const int refill = (stage + kTcStages - 2) % kTcStages;  // the pair multiplied in the previous step
      issue(refill, t + kTcStages - 2);
      issue(refill + 1, t + kTcStages - 1);
      cp_async_commit();
      cp_async_wait<kPairs - 1>();  // tiles t and t + 1 (this lane's copies) have landed
      if (lane < kTcKeys) {  // each key's scale pair, from its lane's word (the lane that copied it knows the half)
#pragma unroll
        for (int u = 0; u < 2; ++u) {
          const uint32_t w = scale_words[(stage + u) * kTcKeys + lane];
          scale_pairs[u * kTcKeys + lane] = uint16_t(((parity >> (stage + u)) & 1u) ? (w >> 16) : (w & 0xffffu));
        }
      }
      __syncwarp();  // every lane's copies and the scale pairs visible to the warp
      const unsigned char* st_k0 = raw + size_t(stage) * 2 * kTcKeys * D;  // [16][D] e4m3, then V
      const unsigned char* st_k1 = st_k0 + 2 * kTcKeys * D;
      const unsigned char* const st_k[2] = {st_k0, st_k1};  // [tile of the pair] -> [16][D] e4m3
      const unsigned char* const st_v[2] = {st_k0 + kTcKeys * D, st_k1 + kTcKeys * D};  // [tile] -> [16][D] e4m3
      const uint16_t* const pairs[2] = {scale_pairs, scale_pairs + kTcKeys};  // [tile] -> [16] scale pairs
      const int32_t k0[2] = {first_tile + t * kTileStep, first_tile + (t + 1) * kTileStep};  // [tile]: first key
      acc.tile_pair(st_k, st_v, pairs, k0, end, softcap, g, t4);
    }
  } else {
    for (int32_t t = 0; t < n_tiles; ++t) {
      const int stage = t % kTcStages;
      __syncwarp();  // every lane's reads of the stage about to be refilled are done
      issue((t + kTcStages - 1) % kTcStages, t + kTcStages - 1);
      cp_async_commit();
      cp_async_wait<kTcStages - 1>();  // tile t's copies (this lane's) have landed
      __syncwarp();                    // every lane's copies visible to the warp
      acc.tile(raw + size_t(stage) * 2 * kTcKeys * D * sizeof(T), first_tile + t * kTileStep, end, softcap, t4);
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // every warp is done with its ring: the merge reuses the memory

  // Merge the 4 warps: sM, sL [4][16], sO [4][16][tc_merge_row_stride] floats.
  static_assert(size_t(kTcWarps) * 16 * (2 + tc_merge_row_stride<T, D>()) * sizeof(float) <= tc_smem_bytes<T>(D),
                "the merge fits in the rings' memory");
  float* sM = reinterpret_cast<float*>(smem_tc);
  float* sL = sM + kTcWarps * 16;
  float* sO = sL + kTcWarps * 16;
  acc.write_merge(sM, sL, sO, warp, group, g, t4);
  __syncthreads();
  for (int32_t e = threadIdx.x; e < group * D; e += kTcThreads) {
    const int32_t row = e / D, d = e % D;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < kTcWarps; ++w) mx = fmaxf(mx, sM[w * 16 + row]);
    float acc_o = 0.f, sum = 0.f;
    if (mx != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kTcWarps; ++w) {
        const float mw = sM[w * 16 + row];
        const float wt = mw == -INFINITY ? 0.f : exp2f(mw - mx);
        acc_o += wt * sO[tc_merge_index<T, D>(w * 16 + row, d)];
        sum += wt * sL[w * 16 + row];
      }
    }
    const int64_t part = (int64_t(ri) * a.n_heads + h0 + row) * p.n_splits + split;
    p.part_o[part * D + d] = acc_o;
    if (d == 0) {
      p.part_ml[2 * part] = mx;
      p.part_ml[2 * part + 1] = sum;
    }
  }
}

// ---- launchers ----------------------------------------------------------------------------------------------

namespace {

template <int D, bool kKeySets, class T, int NG>
void launch_tc_instance(const DecodeParams& p, cudaStream_t stream, int* occupancy) {
  auto kernel = kernel_attention_decode_tc<D, kKeySets, T, NG>;
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
  launch_dependent(kernel, grid, dim3(kTcThreads), smem, stream, p);
}

// fp8 takes one 8-head column block for GQA groups up to 8 and two up to 16 (Fp8KeyMajorDecode); bf16 has no blocks.
template <int D, bool kKeySets, class T>
void launch_tc_group(const DecodeParams& p, cudaStream_t stream, int* occupancy) {
  if constexpr (sizeof(T) == 1) {
    if (p.a.n_heads > 8 * p.a.n_kv_heads) return launch_tc_instance<D, kKeySets, T, 2>(p, stream, occupancy);
  }
  launch_tc_instance<D, kKeySets, T, 1>(p, stream, occupancy);
}

template <int D, class T>
void launch_tc_d(const DecodeParams& p, cudaStream_t stream, int* occupancy) {
  if (p.ks.sets != nullptr) {
    launch_tc_group<D, true, T>(p, stream, occupancy);
  } else {
    launch_tc_group<D, false, T>(p, stream, occupancy);
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

int attention_decode_tc_occupancy(int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, KvDtype dtype) {
  // [device][head_dim 64 / 128][bf16 / fp8][one / two 8-head blocks (fp8 groups over 8)]
  static std::atomic<int> cache[64][2][2][2] = {};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  const bool fp8 = dtype == KvDtype::KV_DTYPE_FP8_E4M3;
  const bool two_blocks = fp8 && n_heads > 8 * n_kv_heads;
  std::atomic<int>& slot = cache[device & 63][head_dim == 64 ? 0 : 1][fp8 ? 1 : 0][two_blocks ? 1 : 0];
  if (const int c = slot.load(); c > 0) return c;
  int occ = 1 << 30;
  for (const bool sets : {false, true}) {  // the range and key-set instances plan the same splits
    DecodeParams p{};
    p.a.head_dim = head_dim;
    p.a.kv.dtype = dtype;
    p.a.n_heads = n_heads;  // picks the instance (launch_tc_group); nothing else is read before the query returns
    p.a.n_kv_heads = n_kv_heads;
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
