// Prefill attention v3 (E9 item 1): FlashAttention on Hopper's warpgroup MMA, head_dim 64 / 128 over a bf16 or an
// fp8 cache.
//
// The block is v2's (attention_prefill.cu): 128 M rows packed as (query position, query head) pairs of one KV
// head's GQA group, walking the union of its rows' key ranges over the paged cache with cp.async stages. What
// changes is the multiply: two warpgroups of 64 M rows each issue wgmma.mma_async (FlashAttention-3, arXiv
// 2407.08608 §3) instead of per-warp mma.sync + ldmatrix: S = Q K^T as m64n128k16 with Q's fragments in registers
// and the 128-key K tile read by the tensor cores straight from shared memory, then O += P V as m64nDk16 with P's
// fragments in registers (S's accumulator layout is P's A layout) and V read as an N-major operand, one m64n64k16 per
// 64-dim half (docs/DECISIONS.md). No ldmatrix, no per-warp B fragments: a tile's shared-memory reads are issued
// once per warpgroup, not once per warp. The same kernel walks a tile's key sets (kSets, below) for sparse
// policies' prefill rows. Versions, profiles and what limits it: docs/KERNEL_NOTES.md, versions 7 and 8.
//
// Warp-specialised (FlashAttention-3 §3.1, version 8): a producer warpgroup gathers the K / V tiles with cp.async
// into a ring of stages and the consumer warpgroups (two; three for dense tiles at head_dim 64 over bf16, version 11,
// M = 192 rows) multiply; they meet only at per-stage mbarriers (landed / consumed), never at a block-wide barrier,
// and the producer's registers go to the consumers (setmaxnreg).
// Inside a consumer the next tile's S = Q K^T is issued before the previous tile's P V (FlashAttention-3 §3.2), so
// the softmax overlaps the tensor cores' work.
//
// Shared memory holds each K / V tile as 64-dim halves of [128 keys][128 bytes] in 128-byte swizzled atoms
// (wgmma.cuh), which the cp.async gather writes directly: chunk c of key k at ((c % 8) ^ (k % 8)).
// Every tile of the block's key range is multiplied by both consumer groups; the per-element mask runs only on tiles
// not wholly inside every one of the group's rows' ranges (a tile outside all of them is masked to P = 0).
// An fp8 cache (e4m3 with a power-of-two scale per key and head, kv/kv_quant.h) changes only the producer: it copies
// each tile's bytes as stored into a landing area one tile ahead (cp.async), converts them with each key's scale to
// bf16 (exact) into the same swizzled stage the consumers read, and arrives on the stage's mbarrier after its stores
// (version 9, docs/KERNEL_NOTES.md).
// Head_dim 256 (Gemma) takes 64-key tiles, two stages and Q from shared memory: S, O and Q's fragments together would
// not fit the registers of a 64-row warpgroup (version 10, docs/KERNEL_NOTES.md).
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include <cuda_bf16.h>

#include "kernels/attention.h"
#include "kernels/attention_common.cuh"
#include "kernels/attention_prefill_wgmma.h"
#include "kernels/cuda_check.h"
#include "kernels/wgmma.cuh"

namespace lcllm {

namespace {

// Consumer warpgroups of 64 M rows each: three at head_dim 64 over a bf16 cache (dense tiles; version 11), two
// otherwise. At d 64 a tile's exps take as long as its MMAs, so two groups leave the tensor cores idle while both
// run their softmax; a third group's products fill that gap (FlashAttention-3's d 64 shape, M = 192). fp8 keeps two:
// its producer converts each tile and needs the registers a third group would take. Key-set tiles keep two: HiP's
// query blocks (32 positions x a GQA group of 4 = 128 M rows) would leave a third group idle, and an idle group
// still multiplies.
constexpr int v3_groups(int head_dim, bool fp8, bool sets) { return head_dim == 64 && !fp8 && !sets ? 3 : 2; }
constexpr int kProducerThreads = 128;  // one producer warpgroup: the K / V gathers
constexpr int v3_threads(int groups) { return 128 * groups + kProducerThreads; }
// Keys per tile (N of S = Q K^T) and ring stages: head_dim 256 takes 64-key tiles and two stages, with Q in shared
// memory, so that O (128 fp32 a thread), S and P fit a consumer's 224 registers and the stages, Q and (fp8) the
// landing area fit 227 KB.
constexpr int v3_keys(int head_dim) { return head_dim == 256 ? 64 : 128; }
constexpr int v3_stages(int head_dim) { return head_dim == 256 ? 2 : 3; }
// Q's A operand from shared memory (descriptors) instead of registers: at d 256 its fragments do not fit beside O,
// with three groups (d 64) not beside S, P and O in 160 registers.
constexpr bool v3_q_in_smem(int head_dim, int groups) { return head_dim == 256 || groups == 3; }
// Registers per thread after setmaxnreg, within what the launch gave the block: two groups 128 x 56 + 256 x 224 =
// 64512 (168 each at launch), three 128 x 32 + 384 x 160 = 65536 (128 each). An increase past the block's own
// registers would wait forever. With two groups the consumers spill at 216 or fewer (ptxas -v).
constexpr int v3_producer_regs(int groups) { return groups == 3 ? 32 : 56; }
constexpr int v3_consumer_regs(int groups) { return groups == 3 ? 160 : 224; }

constexpr uint32_t v3_tile_bytes(int head_dim) { return uint32_t(v3_keys(head_dim)) * uint32_t(head_dim) * 2; }
// fp8: one tile's K and V as stored, the producer's landing area (tile keys x head_dim bytes, twice).
constexpr uint32_t v3_raw_bytes(int head_dim, bool fp8) {
  return fp8 ? 2u * uint32_t(v3_keys(head_dim)) * uint32_t(head_dim) : 0u;
}
// Q's 64 x groups M rows as bf16 where they live in shared memory.
constexpr uint32_t v3_q_bytes(int head_dim, int groups) {
  return v3_q_in_smem(head_dim, groups) ? 64u * uint32_t(groups) * uint32_t(head_dim) * 2u : 0u;
}
// + 1024: the dynamic window is aligned up to the 1024-byte swizzle atom inside the kernel. d 128 fp8 and d 256 fp8:
// 230,400 bytes of the 232,448 a block may opt into.
constexpr size_t v3_smem_bytes(int head_dim, bool fp8, bool sets) {
  return size_t(v3_stages(head_dim)) * 2 * v3_tile_bytes(head_dim) + v3_raw_bytes(head_dim, fp8) +
         v3_q_bytes(head_dim, v3_groups(head_dim, fp8, sets)) + 1024;
}

}  // namespace

// kSoftcap: scores pass through softcap * tanh(s / softcap) (Gemma 2); a template parameter because the per-element
// branch it needs otherwise cost more issue slots (instruction-fetch stalls on 16 branches a tile) than the math.
// kSets: the tile walks its rows' key sets (PrefillKeySets; KeySet in src/backend/backend.h) as one ascending
// sequence of keys, a superset of every row's set: the last row's sinks [lo, sink_end), its list, then
// [seg3_lo, hi) with seg3_lo past both and at least the smallest recent_begin of the tile's gapped rows. Row r
// sees the key at position j iff j < hi_r and not seg3_lo <= j < recent_begin_r (gapped rows only). That is the
// row's own set when its list is the last row's list cut at hi_r (HiP's rows of one query block) or empty.
// T: the stored K/V element, uint16_t (bf16) or uint8_t (fp8 e4m3).
template <int D, class T, bool kSoftcap, bool kSets>
__global__ void __launch_bounds__(v3_threads(v3_groups(D, sizeof(T) == 1, kSets)), 1)
    kernel_attention_prefill_v3(PrefillParams p, int32_t hp_log2) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr bool kFp8 = sizeof(T) == 1;
  constexpr int kGroups = v3_groups(D, kFp8, kSets);
  constexpr int kConsumerThreads = 128 * kGroups;
  constexpr int kMRows = 64 * kGroups;  // the tile's M rows: (position, head) pairs
  constexpr int kTurnThreads = 256;     // a turn barrier: the group taking its turn + the group handing it over
  constexpr int kQBarrier = 1 + kGroups;  // named barriers: 0 __syncthreads, 1 .. kGroups the groups' turns
  constexpr int kKeysV3 = v3_keys(D), kStagesV3 = v3_stages(D);
  constexpr bool kQs = v3_q_in_smem(D, kGroups);  // Q's A operand from shared memory (descriptors), not registers
  constexpr uint32_t kHalfBytes = kKeysV3 * 128;  // one 64-dim half of a K or V tile: [kKeysV3 keys][128 B]
  constexpr uint32_t kQHalfBytes = kMRows * 128;  // one 64-dim half of Q: [kMRows M rows][128 B]
  constexpr int KC = D * int(sizeof(T)) / 16;  // 16-byte chunks per stored K/V row (a producer thread copies one)
  constexpr int KK = D / 16;            // k-steps of Q K^T
  constexpr int NT = kKeysV3 / 8;       // 8-key column blocks of S
  constexpr int DT = D / 8;             // 8-dim column blocks of O
  constexpr int KP = kKeysV3 / 16;      // k-steps of P V
  constexpr int NH = D / 64;            // 64-dim halves of K / V rows
  constexpr int kRowsPerPass = kProducerThreads / KC;
  constexpr int kPasses = kKeysV3 / kRowsPerPass;
  constexpr int kBasesPerWarp = 32 / KC;  // a producer warp's keys of one pass
  static_assert(kBasesPerWarp * kPasses <= 32, "one lane finds the slot of each of a warp's keys");
  constexpr uint32_t kTileBytes = v3_tile_bytes(D), kStageBytes = 2 * kTileBytes;
  // A thread's keys key_base + i * kRowsPerPass share their swizzle row (kRowsPerPass a multiple of 8), or with 4
  // rows a pass (bf16 at d 256) alternate between two (key_base < 4, so the odd passes' row is key_base ^ 4).
  static_assert((kRowsPerPass % 8 == 0 || kRowsPerPass == 4) && kKeysV3 % kRowsPerPass == 0, "swizzle rows");
  constexpr int32_t kOddPassXor = kRowsPerPass % 8;
  extern __shared__ unsigned char smem_raw[];
  // [stage][K | V][D / 64 halves][kKeysV3 keys][64 dims], 128-byte swizzled atoms, 1024-byte aligned
  const uint32_t smem_base = (smem_u32(smem_raw) + 1023u) & ~1023u;
  // fp8 only, after the stages: [K | V][kPasses][kProducerThreads][16 bytes], the next tile's bytes as stored, each
  // producer thread's chunks in its own slots (it alone writes and reads them)
  const uint32_t raw_base = smem_base + uint32_t(kStagesV3) * kStageBytes;
  // kQs only, after the landing area: [D / 64 halves][kMRows M rows][64 dims] bf16, swizzled like the tiles
  const uint32_t q_base = raw_base + v3_raw_bytes(D, kFp8);
  __shared__ int32_t sRange[2];   // the block's key range: union over its rows
  __shared__ int32_t sGroup[kGroups][2];  // per consumer warpgroup: the intersection of its rows' ranges (lo, hi)
  __shared__ int32_t sPos[kSets ? kStagesV3 : 1][kKeysV3];  // key sets: each staged key's position (INT32_MAX: none)
  // stage landed: each producer thread arrives when its copies land or, fp8, after storing its converted rows (and,
  // with key sets, once more after writing the stage's positions)
  __shared__ __align__(8) uint64_t sFull[kStagesV3];
  __shared__ __align__(8) uint64_t sEmpty[kStagesV3];  // stage consumed: every consumer thread arrives

  const AttentionCommon& a = p.a;
  const int32_t tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp >> 2, g = lane >> 2, t4 = lane & 3;
  const bool producer = tid >= kConsumerThreads;  // the last warpgroup; consumer wg owns M rows 64 wg .. 64 wg + 63
  const int32_t tile = int32_t(gridDim.y) - 1 - int32_t(blockIdx.y);  // heavy (late, causal) tiles first
  const int32_t hp = 1 << hp_log2;
  const int32_t h0 = int32_t(blockIdx.x) * hp, kvh = h0 / (a.n_heads / a.n_kv_heads);
  const int32_t row0 = p.tile_row0[tile], nr = p.tile_rows[tile];
  const int32_t* pages = a.page_indices + a.page_indptr[a.row_seq[row0]];
  const int32_t ps = a.page_size;

  if (tid == 0) {
    sRange[0] = INT32_MAX;
    sRange[1] = 0;
#pragma unroll
    for (int st = 0; st < kStagesV3; ++st) {
      mbar_init(smem_u32(&sFull[st]), kSets ? 2 * kProducerThreads : kProducerThreads);
      mbar_init(smem_u32(&sEmpty[st]), kConsumerThreads);
    }
  }
  if (tid < kGroups) {
    sGroup[tid][0] = 0;
    sGroup[tid][1] = INT32_MAX;
  }
  // A consumer thread's two M rows: warp * 16 + g (+ 8) -> (position, head); warpgroup wg owns M rows 64 wg .. + 63.
  int32_t pos[2] = {0, 0}, head[2] = {0, 0}, rb[2] = {0, 0}, re[2] = {0, 0};
  if (!producer) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int32_t mr = warp * 16 + g + 8 * i;
      pos[i] = mr >> hp_log2;
      head[i] = h0 + (mr & (hp - 1));
      if constexpr (kSets) {
        // The row's set for this KV head: re = hi; rb = recent_begin where the set has a gap after its sinks, else
        // 0 (a range, {lo, hi, hi, hi}, or sinks meeting the recent window: every key below hi).
        const int32_t* set = p.ks.sets + (int64_t(row0 + pos[i]) * a.n_kv_heads + kvh) * 5;
        rb[i] = pos[i] < nr && set[1] < set[2] ? set[2] : 0;
        re[i] = pos[i] < nr ? set[3] : 0;
      } else {
        rb[i] = pos[i] < nr ? a.row_begin[row0 + pos[i]] : 0;
        re[i] = pos[i] < nr ? a.row_end[row0 + pos[i]] : 0;
      }
    }
  }
  int32_t w_lo = INT32_MAX, w_hi = 0, w_in_lo = max(rb[0], rb[1]), w_in_hi = min(re[0], re[1]);
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    if (kSets ? pos[i] < nr : rb[i] < re[i]) {
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
  __syncthreads();  // the ranges' initial values and the mbarriers
  if (lane == 0 && !producer) {
    if (w_lo < w_hi) {
      atomicMin(&sRange[0], w_lo);
      atomicMax(&sRange[1], w_hi);
    }
    atomicMax(&sGroup[wg][0], w_in_lo);
    atomicMin(&sGroup[wg][1], w_in_hi);
  }
  __syncthreads();  // the last block-wide barrier: from here on the warpgroups meet only at the stages' mbarriers
  // The keys the block walks, by index: dense, positions [kb, ke); key sets, indices [0, ke) of the sequence
  // sink range, list, [seg3_lo, hi) of the tile's last row (which sees the most keys).
  int32_t kb = sRange[0], ke = sRange[1];
  int32_t set_lo = 0, n_sink = 0, n_list = 0, seg3_lo = 0;
  const int32_t* list = nullptr;
  if constexpr (kSets) {
    const int64_t last_item = int64_t(row0 + nr - 1) * a.n_kv_heads + kvh;
    const int32_t* last = p.ks.sets + last_item * 5;
    const int32_t sink_end = last[1], hi = last[3], slot = last[4];
    set_lo = last[0];
    n_sink = max(0, sink_end - set_lo);
    if (slot >= 0) {
      const int64_t li = int64_t(slot) * p.ks.sel_items + last_item;
      n_list = max(0, min(p.ks.sel_count[li], p.ks.sel_stride));
      list = p.ks.sel_positions + li * p.ks.sel_stride;
      // A set takes only its list's entries from sink_end on (KeySet): HiP's first block may start below the sink
      // end (blocks are aligned to block_size_k, the sink need not be), and those keys are sinks already.
      int32_t lo_i = 0, hi_i = n_list;
      while (lo_i < hi_i) {
        const int32_t mid = (lo_i + hi_i) >> 1;
        if (list[mid] < sink_end) lo_i = mid + 1; else hi_i = mid;
      }
      list += lo_i;
      n_list -= lo_i;
    }
    // sRange[0]: the smallest rb of the tile's rows; the keys below it that are neither sinks nor listed are no
    // row's (the rows of one sequence chunk share lo and the list, and sink_end wherever hi reaches the sink; the
    // host checks, StepLayerPlan).
    seg3_lo = max(max(kb, sink_end), n_list > 0 ? list[n_list - 1] + 1 : 0);
    kb = 0;
    ke = n_sink + n_list + max(0, hi - seg3_lo);
  }
  const int32_t n_iter = kb < ke ? (ke - kb + kKeysV3 - 1) / kKeysV3 : 0;

  if (producer) {
    // The producer warpgroup (FlashAttention-3 §3.1's warp specialisation): gathers tile it's K and V into stage
    // it % kStagesV3 once the consumers freed it; the stage's sFull phase completes when every producer thread's
    // copies have landed (cp.async.mbarrier.arrive), so the producer runs ahead by as many tiles as there are
    // stages. (Version 8 published a tile only after issuing the next one and waiting for its own copies: ncu showed
    // the consumers waiting on sFull while the producer waited on sEmpty.)
    regs_decrease<v3_producer_regs(kGroups)>();
    const int32_t ptid = tid - kConsumerThreads, pwarp = ptid >> 5;
    // This thread copies chunk `chunk` of keys key_base + i * kRowsPerPass; its swizzled offsets are fixed.
    const int32_t chunk = ptid % KC, key_base = ptid / KC;
    const int ps_shift = page_shift_of(ps);
    const int64_t slot_stride = a.kv.slot_stride();
    const T* k_src = static_cast<const T*>(a.k_pool) + a.kv.offset(0, a.kv_index[kvh]) + chunk * (16 / sizeof(T));
    const T* v_src = static_cast<const T*>(a.v_pool) + a.kv.offset(0, a.kv_index[kvh]) + chunk * (16 / sizeof(T));
    // [slot][kv head] K's exponent byte | V's << 8 (fp8 only)
    const uint16_t* scale_src = kFp8 ? a.kv_scale + a.kv_index[kvh] : nullptr;
    // The stage offset of bf16 chunk c of this thread's first key: 64-dim half c / 8, swizzled within its atom row.
    auto stage_offset = [&](int32_t c, int32_t row_xor) {
      return uint32_t(c / 8) * kHalfBytes + uint32_t(key_base) * 128u +
             uint32_t(((c & 7) ^ ((key_base ^ row_xor) & 7)) * 16);
    };
    // fp8: a 16-byte chunk of a stored row becomes bf16 chunks 2 chunk and 2 chunk + 1. Threads whose chunk lies in
    // the second 64-dim half (D 128) store them in the other order: a quarter-warp's first stores then fall on
    // distinct 16-byte bank groups (chunk and chunk + 4 would otherwise meet in both halves' atom rows).
    const bool swap_order = kFp8 && (chunk & 4) != 0;
    const int32_t c0 = kFp8 ? 2 * chunk + int32_t(swap_order) : chunk, c1 = 2 * chunk + 1 - int32_t(swap_order);
    // [pass parity]: the offsets of the even and the odd passes' keys (equal unless kOddPassXor)
    const uint32_t st_off0[2] = {stage_offset(c0, 0), stage_offset(c0, kOddPassXor)};
    const uint32_t st_off1[2] = {stage_offset(c1, 0), stage_offset(c1, kOddPassXor)};  // fp8 only
    // The warp's kBasesPerWarp * kPasses keys of a tile: lane l finds the slot of key
    // (pwarp * kBasesPerWarp + l % kBasesPerWarp) + kRowsPerPass * (l / kBasesPerWarp) (-1: past the range), and
    // each pass takes its key's slot by a shuffle (one page-table load per lane and tile instead of one per pass);
    // fp8: the lane also loads its key's scale word.
    const int32_t lane_key = pwarp * kBasesPerWarp + lane % kBasesPerWarp + kRowsPerPass * (lane / kBasesPerWarp);
    auto lane_slot_of = [&](int32_t k0) {  // {slot or -1, position or INT32_MAX, fp8 scale word} of the lane's key
      const int32_t v = k0 + lane_key;
      int32_t j = INT32_MAX, slot = -1, scale_word = 0;
      if (lane < kBasesPerWarp * kPasses && v < ke) {
        j = !kSets ? v : v < n_sink ? set_lo + v : v < n_sink + n_list ? list[v - n_sink] : seg3_lo + (v - n_sink - n_list);
        slot = int32_t(paged_slot(pages, ps, ps_shift, j));
        if constexpr (kFp8) scale_word = scale_src[int64_t(slot) * a.kv.n_heads];
      }
      return make_int3(slot, j, scale_word);
    };
    // This thread's cp.async of its chunk of passes [p0, p1) of the tile whose lane_slot_of is `keys`: pass i's K
    // chunk to k_dst_of(i), its V chunk v_bytes further (zeros past the range). bf16 copies into the stage, fp8 into
    // its own raw slots, [K | V][pass] (kRawKvBytes, kRawPassBytes apart).
    auto copy_passes = [&](const int3& keys, int p0, int p1, auto k_dst_of, uint32_t v_bytes) {
#pragma unroll
      for (int i = p0; i < p1; ++i) {
        const int32_t slot = __shfl_sync(0xffffffffu, keys.x, kBasesPerWarp * i + lane / KC);
        const bool valid = slot >= 0;
        const int64_t off = int64_t(valid ? slot : 0) * slot_stride;
        const uint32_t d = k_dst_of(i);
        cp_async_16(d, k_src + off, valid ? 16 : 0);
        cp_async_16(d + v_bytes, v_src + off, valid ? 16 : 0);
      }
    };
    constexpr uint32_t kRawPassBytes = kProducerThreads * 16, kRawKvBytes = kPasses * kRawPassBytes;
    const uint32_t raw_k = raw_base + uint32_t(ptid) * 16u;
    auto copy_raw = [&](const int3& keys, int p0, int p1) {
      copy_passes(keys, p0, p1, [&](int i) { return raw_k + uint32_t(i) * kRawPassBytes; }, kRawKvBytes);
    };
    int3 cur = lane_slot_of(kb);  // tile it's keys
    if constexpr (kFp8) {
      if (n_iter > 0) copy_raw(cur, 0, kPasses);
      cp_async_commit();
    }
    for (int32_t it = 0; it < n_iter; ++it) {
      const int stage = it % kStagesV3;
      const uint32_t dst = smem_base + uint32_t(stage) * kStageBytes;
      // fp8: tile it + 1's keys, whose bytes this iteration copies (past the range: no keys).
      const int3 nxt = kFp8 ? lane_slot_of(kb + (it + 1) * kKeysV3) : cur;
      // fp8: tile it's bytes landed in the raw area during tile it - 1 (cp.async: this thread's own chunks, so its
      // own wait suffices).
      if constexpr (kFp8) cp_async_wait<0>();
      if (it >= kStagesV3) mbar_wait(smem_u32(&sEmpty[stage]), uint32_t((it / kStagesV3 - 1) & 1));
      if constexpr (kSets) {
        if (lane < kBasesPerWarp * kPasses) sPos[stage][lane_key] = cur.y;
        mbar_arrive(smem_u32(&sFull[stage]));  // the positions (release: written before the arrival)
      }
      if constexpr (kFp8) {
        // kBatch passes at a time: read the chunks, convert them with their keys' scales into the stage, then copy
        // tile it + 1's chunks into the same slots, so the copies have a whole tile to land.
        constexpr int kBatch = kPasses < 2 ? kPasses : 2;  // ptxas: a batch of 4 spills at 56 registers
        static_assert(kPasses % kBatch == 0, "whole batches");
#pragma unroll
        for (int b = 0; b < kPasses / kBatch; ++b) {
#pragma unroll
          for (int i = b * kBatch; i < (b + 1) * kBatch; ++i) {
            const uint4 kr = ld_shared_v4(raw_k + uint32_t(i) * kRawPassBytes);
            const uint4 vr = ld_shared_v4(raw_k + kRawKvBytes + uint32_t(i) * kRawPassBytes);
            const uint32_t sw = uint32_t(__shfl_sync(0xffffffffu, cur.z, kBasesPerWarp * i + lane / KC));
            const float ksc = fp8_scale_of(sw & 0xffu), vsc = fp8_scale_of(sw >> 8);
            const uint2 k_first = swap_order ? make_uint2(kr.z, kr.w) : make_uint2(kr.x, kr.y);
            const uint2 k_second = swap_order ? make_uint2(kr.x, kr.y) : make_uint2(kr.z, kr.w);
            const uint2 v_first = swap_order ? make_uint2(vr.z, vr.w) : make_uint2(vr.x, vr.y);
            const uint2 v_second = swap_order ? make_uint2(vr.x, vr.y) : make_uint2(vr.z, vr.w);
            const uint32_t row = dst + uint32_t(i * kRowsPerPass) * 128u;
            st_shared_v4(row + st_off0[i & 1], fp8x8_to_bf16x8(k_first, ksc));
            st_shared_v4(row + st_off1[i & 1], fp8x8_to_bf16x8(k_second, ksc));
            st_shared_v4(row + kTileBytes + st_off0[i & 1], fp8x8_to_bf16x8(v_first, vsc));
            st_shared_v4(row + kTileBytes + st_off1[i & 1], fp8x8_to_bf16x8(v_second, vsc));
          }
          if (it + 1 < n_iter) copy_raw(nxt, b * kBatch, (b + 1) * kBatch);
        }
        cp_async_commit();
        // The converted tile: stored before the arrival (release). The consumers fence the async proxy after their
        // wait as for cp.async's writes; this thread's own fence orders its generic stores for the wgmmas as well.
        fence_proxy_async_shared();
        mbar_arrive(smem_u32(&sFull[stage]));
        cur = nxt;
      } else {
        copy_passes(
            cur, 0, kPasses, [&](int i) { return dst + st_off0[i & 1] + uint32_t(i * kRowsPerPass) * 128u; },
            kTileBytes);
        mbar_arrive_on_cp_async(smem_u32(&sFull[stage]));
        if (it + 1 < n_iter) cur = lane_slot_of(kb + (it + 1) * kKeysV3);
      }
    }
    // fp8: the last (empty) group. bf16 copies are never committed (their mbarrier arrivals track them), so this
    // does not wait for them; the block cannot end before the consumers' sFull waits saw every one land.
    cp_async_wait<0>();
    return;
  }

  regs_increase<v3_consumer_regs(kGroups)>();
  uint32_t qa[kQs ? 1 : KK][4];  // Q's A fragments (bf16), Q in registers
  if constexpr (kQs) {
    // The consumers write Q's kMRows M rows as bf16 into shared memory, 16-byte chunk c of row r at half c / 8,
    // chunk (c % 8) ^ (r % 8) (the tiles' swizzle), zeros past the tile's rows; each warpgroup's wgmmas then read
    // its 64 rows through a descriptor.
    constexpr int kChunks = D / 8;
#pragma unroll 4
    for (int32_t idx = tid; idx < kMRows * kChunks; idx += kConsumerThreads) {
      const int32_t r = idx / kChunks, c = idx % kChunks, rp = r >> hp_log2, rh = h0 + (r & (hp - 1));
      uint4 packed = make_uint4(0, 0, 0, 0);
      if (rp < nr) {
        const float4* src = reinterpret_cast<const float4*>(a.q + (int64_t(row0 + rp) * a.n_heads + rh) * D + c * 8);
        const float4 x = src[0], y = src[1];
        packed = make_uint4(pack_bf16(x.x, x.y), pack_bf16(x.z, x.w), pack_bf16(y.x, y.y), pack_bf16(y.z, y.w));
      }
      st_shared_v4(q_base + uint32_t(c / 8) * kQHalfBytes + uint32_t(r) * 128u + uint32_t(((c & 7) ^ (r & 7)) * 16),
                   packed);
    }
    fence_proxy_async_shared();  // the generic stores before the wgmmas' async-proxy reads
    named_barrier_sync(kQBarrier, kConsumerThreads);
  } else {
    load_q_fragments_bf16<D>(qa, a.q, a.n_heads, row0, nr, pos, head, t4);
  }
  const int32_t g_in_lo = sGroup[wg][0], g_in_hi = sGroup[wg][1];

  float o[NH][32];  // O's accumulators, one m64n64 block per 64-dim half: dims 64 h + 8 (i / 4) + 2 t4 + i % 2
#pragma unroll
  for (int h = 0; h < NH; ++h) {
#pragma unroll
    for (int i = 0; i < 32; ++i) o[h][i] = 0.f;
  }
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  const float smul = kSoftcap ? a.scale / a.softcap : a.scale * kLog2e;
  const float cap_l2 = a.softcap * kLog2e;
  const float emul = kSoftcap ? 1.f : smul;  // raw score -> log2 units inside the exponent

  // Each consumer warpgroup runs its tiles on its own, pipelined inside the group (FlashAttention-3 §3.2): tile j's
  // S = Q K_j is issued before tile j - 1's O += P V_{j-1}, so j's softmax runs while the tensor cores do j - 1's
  // P V; then the stage of j - 1 goes back to the producer and O is rescaled for j. P of the tile waiting for its
  // P V lives in pa. Every tile is multiplied, also one outside the group's rows (its scores are masked to -inf,
  // P = 0): wgmma under a condition the compiler cannot prove uniform is serialised (ptxas C7520), which costs more
  // than the few such tiles at a causal diagonal.
  uint32_t pa[KP][4];
  float s[NT * 4];
  auto zero_scores = [&] {  // before the wgmma_fence that orders these writes before the wgmmas (the first k-step
                            // ignores the accumulators, but its registers must not be written behind its back)
#pragma unroll
    for (int i = 0; i < NT * 4; ++i) s[i] = 0.f;
  };
  auto issue_scores = [&](int stage) {
    const uint64_t k_desc = wgmma_desc_sw128(smem_base + uint32_t(stage) * kStageBytes, 16, 1024);
#pragma unroll
    for (int kk = 0; kk < KK; ++kk) {
      // K-major B: 16 dims of all the tile's keys; dims 16 kk .. 16 kk + 15 lie in half kk / 4 at byte 32 (kk % 4)
      // (the descriptor's address field counts 16-byte units). Q in shared memory is the same K-major layout, this
      // warpgroup's 64 rows 8 KB into each half.
      const uint64_t b = k_desc + ((uint32_t(kk >> 2) * kHalfBytes + uint32_t(kk & 3) * 32u) >> 4);
      if constexpr (kQs) {
        const uint64_t q_desc = wgmma_desc_sw128(q_base + uint32_t(wg) * 64u * 128u, 16, 1024);
        const uint64_t a_k = q_desc + ((uint32_t(kk >> 2) * kQHalfBytes + uint32_t(kk & 3) * 32u) >> 4);
        if constexpr (kKeysV3 == 64) {
          wgmma_m64n64k16_ss(s, a_k, b, kk > 0 ? 1 : 0);
        } else {
          wgmma_m64n128k16_ss(s, a_k, b, kk > 0 ? 1 : 0);
        }
      } else {
        wgmma_m64n128k16_rs<0>(s, qa[kk], b, kk > 0 ? 1 : 0);
      }
    }
    wgmma_commit();
  };
  auto issue_pv = [&](int stage) {
    const uint64_t v_desc = wgmma_desc_sw128(smem_base + uint32_t(stage) * kStageBytes + kTileBytes, 16, 1024);
#pragma unroll
    for (int kp = 0; kp < KP; ++kp) {
      // N-major B: keys 16 kp .. 16 kp + 15 (two 8-key atoms, 1024 B apart) of one 64-dim half (one atom wide:
      // the descriptor's leading offset is never used).
#pragma unroll
      for (int h = 0; h < NH; ++h) {
        wgmma_m64n64k16_rs<1>(o[h], pa[kp], v_desc + ((uint32_t(h) * kHalfBytes + uint32_t(kp) * 2048u) >> 4), 1);
      }
    }
    wgmma_commit();
  };
  // Mask, online softmax of S (tile j at `stage`) into P's values in s; alpha: the rows' O rescale.
  auto softmax = [&](int32_t j, int stage, float (&alpha)[2]) {
    const int32_t k0 = kb + j * kKeysV3;
    // Masked where the tile is not wholly inside every range of the warpgroup's rows. Without a softcap the scores
    // stay raw and the scale (times log2 e) folds into the exponent's FMA; with one they become log2 units here.
    if constexpr (kSoftcap) {
#pragma unroll
      for (int i = 0; i < NT * 4; ++i) s[i] = cap_l2 * tanhf(s[i] * smul);
    }
    bool full;  // every key of the tile visible to every row of the warpgroup (uniform: most tiles skip the mask)
    if constexpr (kSets) {
      const int32_t first = sPos[stage][0], final_key = sPos[stage][kKeysV3 - 1];
      full = final_key < g_in_hi && (final_key < seg3_lo || first >= g_in_lo);
    } else {
      full = k0 >= g_in_lo && k0 + kKeysV3 <= g_in_hi;
    }
    if (!full) {
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int c = nt * 8 + 2 * t4 + (e & 1);
          if constexpr (kSets) {
            const int32_t jp = sPos[stage][c];
            if (jp >= re[e >> 1] || (jp >= seg3_lo && jp < rb[e >> 1])) s[4 * nt + e] = -INFINITY;
          } else {
            const int32_t jp = k0 + c;
            if (jp < rb[e >> 1] || jp >= re[e >> 1]) s[4 * nt + e] = -INFINITY;
          }
        }
      }
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float mx = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) mx = fmaxf(mx, fmaxf(s[4 * nt + 2 * i], s[4 * nt + 2 * i + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[i], mx * emul);  // -inf stays -inf
      const float mu = m_new == -INFINITY ? 0.f : m_new;
      alpha[i] = exp2_ftz(m[i] - mu);
      m[i] = m_new;
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        s[4 * nt + 2 * i] = exp2_ftz(fmaf(s[4 * nt + 2 * i], emul, -mu));
        s[4 * nt + 2 * i + 1] = exp2_ftz(fmaf(s[4 * nt + 2 * i + 1], emul, -mu));
        sum += s[4 * nt + 2 * i] + s[4 * nt + 2 * i + 1];
      }
      l[i] = l[i] * alpha[i] + sum;
    }
  };
  // O *= alpha (skipped by a warp whose rows' maxima did not move: most tiles once they settle), then P into pa
  // (bf16; its fp32 sum is the denominator): keys 16 kp .. 16 kp + 15 are S's blocks 2 kp, 2 kp + 1.
  auto rescale_and_pack = [&](const float (&alpha)[2]) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      if (__any_sync(0xffffffffu, alpha[i] != 1.f)) {
#pragma unroll
        for (int dt = 0; dt < DT; ++dt) {
          o[dt >> 3][4 * (dt & 7) + 2 * i] *= alpha[i];
          o[dt >> 3][4 * (dt & 7) + 2 * i + 1] *= alpha[i];
        }
      }
    }
#pragma unroll
    for (int kp = 0; kp < KP; ++kp) {
      pa[kp][0] = pack_bf16(s[8 * kp + 0], s[8 * kp + 1]);
      pa[kp][1] = pack_bf16(s[8 * kp + 2], s[8 * kp + 3]);
      pa[kp][2] = pack_bf16(s[8 * kp + 4], s[8 * kp + 5]);
      pa[kp][3] = pack_bf16(s[8 * kp + 6], s[8 * kp + 7]);
    }
  };

  // The consumer groups take turns at issuing (FlashAttention-3 §3.1's ping-pong), 0 -> 1 (-> 2) -> 0: group w
  // issues after barrier 1 + w and then hands the turn to the next group, so the tensor cores run one group's
  // products while the others run their softmax. The last group opens the first turn for group 0 and leaves out the
  // hand-over after its last turn, so every arrive meets a sync: each group issues n_iter + 1 times.
  const bool last_group = wg == kGroups - 1;
  const int my_turn = 1 + wg, their_turn = last_group ? 1 : 2 + wg;
  if (n_iter > 0 && last_group) named_barrier_arrive(their_turn, kTurnThreads);
  if (n_iter > 0) {
    mbar_wait(smem_u32(&sFull[0]), 0u);
    fence_proxy_async_shared();  // the landed cp.async writes (generic proxy) before this thread's wgmma reads
    zero_scores();
    wgmma_fence();
    named_barrier_sync(my_turn, kTurnThreads);
    issue_scores(0);
    named_barrier_arrive(their_turn, kTurnThreads);
    wgmma_wait<0>();
    wgmma_pin(s);
    float alpha[2];
    softmax(0, 0, alpha);
    rescale_and_pack(alpha);
  }
  for (int32_t j = 1; j < n_iter; ++j) {
    const int stage = j % kStagesV3, prev = (j - 1) % kStagesV3;
    mbar_wait(smem_u32(&sFull[stage]), uint32_t((j / kStagesV3) & 1));
    fence_proxy_async_shared();
    zero_scores();
    wgmma_fence();  // pa, the rescaled O and the zeroed S are written before the wgmmas below use them
    named_barrier_sync(my_turn, kTurnThreads);
    issue_scores(stage);
    issue_pv(prev);
    named_barrier_arrive(their_turn, kTurnThreads);
    wgmma_wait<1>();  // S_j done, P V_{j-1} may still run
    wgmma_pin(s);
    float alpha[2];
    softmax(j, stage, alpha);
    wgmma_wait<0>();
#pragma unroll
    for (int h = 0; h < NH; ++h) wgmma_pin(o[h]);
    mbar_arrive(smem_u32(&sEmpty[prev]));  // tile j - 1's K and V have been read
    rescale_and_pack(alpha);
  }
  if (n_iter > 0) {
    wgmma_fence();
    named_barrier_sync(my_turn, kTurnThreads);
    issue_pv((n_iter - 1) % kStagesV3);
    if (!last_group) named_barrier_arrive(their_turn, kTurnThreads);
    wgmma_wait<0>();
#pragma unroll
    for (int h = 0; h < NH; ++h) wgmma_pin(o[h]);
  }

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
    if (pos[i] >= nr) continue;
    const float inv = l[i] > 0.f ? 1.f / l[i] : 0.f;
    float* dst = a.out + (int64_t(row0 + pos[i]) * a.n_heads + head[i]) * D + 2 * t4;
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {
      *reinterpret_cast<float2*>(dst + dt * 8) =
          make_float2(o[dt >> 3][4 * (dt & 7) + 2 * i] * inv, o[dt >> 3][4 * (dt & 7) + 2 * i + 1] * inv);
    }
  }
#else
  __trap();  // built without sm_90a: attention_prefill_v3_applies() never picks this kernel
#endif
}

namespace {

template <int D, class T, bool kSoftcap, bool kSets>
void launch_prefill_v3_d(const PrefillParams& p, int32_t hp_log2, cudaStream_t stream) {
  static std::atomic<uint64_t> configured{0};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  const uint64_t bit = uint64_t(1) << (device & 63);
  const size_t smem = v3_smem_bytes(D, sizeof(T) == 1, kSets);
  if ((configured.load() & bit) == 0) {
    CUDA_CHECK(cudaFuncSetAttribute(kernel_attention_prefill_v3<D, T, kSoftcap, kSets>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    configured.fetch_or(bit);
  }
  const dim3 grid(unsigned(p.a.n_heads >> hp_log2), unsigned(p.n_tiles));
  constexpr int threads = v3_threads(v3_groups(D, sizeof(T) == 1, kSets));
  kernel_attention_prefill_v3<D, T, kSoftcap, kSets><<<grid, threads, smem, stream>>>(p, hp_log2);
  CUDA_CHECK_LAUNCH();
}

template <int D, class T>
void launch_prefill_v3_dim(const PrefillParams& p, int32_t hp_log2, cudaStream_t stream) {
  const bool capped = p.a.softcap > 0.f;
  if (p.ks.sets != nullptr) {
    capped ? launch_prefill_v3_d<D, T, true, true>(p, hp_log2, stream)
           : launch_prefill_v3_d<D, T, false, true>(p, hp_log2, stream);
  } else {
    capped ? launch_prefill_v3_d<D, T, true, false>(p, hp_log2, stream)
           : launch_prefill_v3_d<D, T, false, false>(p, hp_log2, stream);
  }
}

template <class T>
void launch_prefill_v3_dtype(const PrefillParams& p, int32_t hp_log2, cudaStream_t stream) {
  if (p.a.head_dim == 64) {
    launch_prefill_v3_dim<64, T>(p, hp_log2, stream);
  } else if (p.a.head_dim == 128) {
    launch_prefill_v3_dim<128, T>(p, hp_log2, stream);
  } else {
    launch_prefill_v3_dim<256, T>(p, hp_log2, stream);
  }
}

}  // namespace

bool attention_prefill_v3_applies(int32_t head_dim, KvDtype dtype) {
  if (head_dim != 64 && head_dim != 128 && head_dim != 256) return false;
  if (dtype != KvDtype::KV_DTYPE_BF16 && dtype != KvDtype::KV_DTYPE_FP8_E4M3) return false;
  // wgmma exists on sm_90a only; the answer is cached per device ordinal (0: unknown, 1: yes, 2: no).
  static std::atomic<uint8_t> known[64] = {};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  std::atomic<uint8_t>& k = known[device & 63];
  if (k.load() == 0) {
    int major = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    k.store(major == 9 ? 1 : 2);
  }
  return k.load() == 1;
}

int32_t attention_prefill_v3_m_rows(int32_t head_dim, KvDtype dtype, bool key_sets) {
  return 64 * v3_groups(head_dim, dtype == KvDtype::KV_DTYPE_FP8_E4M3, key_sets);
}

void launch_attention_prefill_v3(const PrefillParams& p, int32_t hp_log2, cudaStream_t stream) {
  if (p.a.kv.dtype == KvDtype::KV_DTYPE_FP8_E4M3) {
    launch_prefill_v3_dtype<uint8_t>(p, hp_log2, stream);
  } else {
    launch_prefill_v3_dtype<uint16_t>(p, hp_log2, stream);
  }
}

}  // namespace lcllm
