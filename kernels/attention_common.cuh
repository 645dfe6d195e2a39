// Small device helpers shared by the attention kernels (v2): 16-byte read-only loads, bf16 unpacking, cp.async,
// ldmatrix and the bf16 m16n8k16 tensor-core MMA (sm_80+ instructions, used as-is on sm_90a).
#pragma once
#include <cstdint>

#include <cuda_bf16.h>

namespace lcllm {

constexpr float kLog2e = 1.4426950408889634f;

// 16 bytes through the read-only path, not kept in L1 (each K/V byte is used by one block only).
__device__ __forceinline__ uint4 ldg_nc_v4(const void* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}

// bf16 pair packed in a 32-bit word -> two floats (exact).
__device__ __forceinline__ float2 bf2_to_f2(uint32_t w) {
  return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xffff0000u));
}

// 2^x on the SFU alone (MUFU.EX2). exp2f's ex2.approx.f32 keeps denormal results, which ptxas builds with extra
// instructions around the MUFU (a range test and rescaling multiplies: the prefill kernel ran 11-19% faster
// without them); a softmax weight below 2^-126 of the row's max adds nothing to a sum of weights >= 1.
__device__ __forceinline__ float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte async copy global -> shared; src_bytes = 0 writes zeros (no global read).
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(src_bytes));
}
// 8- and 4-byte async copies (through L1: .cg takes 16 bytes only); src_bytes = 0 writes zeros.
__device__ __forceinline__ void cp_async_8(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_4(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// D = A * B + D, A 16x16 bf16 (row), B 16x8 bf16 (col), D 16x8 fp32.
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Per-thread ldmatrix byte offsets into a K tile and a V tile (V at v_tile_offset) of 16-bit [keys][D] rows whose
// 16-byte chunk c of key row k sits at chunk c ^ (k & 7) (conflict-free ldmatrix). With c = 8 * (kk >> 2) +
// (2 (kk & 3) | bit) the swizzled part depends on kk & 3 only, so four offsets per operand cover every 16-dim k-step
// (add (kk >> 2) * 128 bytes) and every 16-key block (add 16 * D * 2 bytes per block): ldmatrix_x4 at k_off gives
// the B fragments of Q K^T for 16 keys (two n-tiles), ldmatrix_x4_trans at v_off those of P V for 16 dims.
template <int D>
__device__ __forceinline__ void swizzled_kv_ldmatrix_offsets(int32_t lane, uint32_t v_tile_offset, uint32_t (&k_off)[4],
                                                             uint32_t (&v_off)[4]) {
  const int32_t r = lane & 7;
  const int32_t key_k = r + ((lane >> 4) << 3), bit_k = (lane >> 3) & 1;
  const int32_t key_v = r + (((lane >> 3) & 1) << 3), bit_v = lane >> 4;
#pragma unroll
  for (int q4 = 0; q4 < 4; ++q4) {
    k_off[q4] = uint32_t(key_k * D + ((((2 * q4) | bit_k) ^ r) * 8)) * 2;
    v_off[q4] = uint32_t(key_v * D + ((((2 * q4) | bit_v) ^ r) * 8)) * 2 + v_tile_offset;
  }
}

// Paged K/V lookup: the cache slot of key position j of a sequence whose block table is `pages` (page j / ps, row
// j % ps). page_shift = page_shift_of(ps) >= 0 for a power-of-two page size (every real configuration) replaces the
// integer division — ~20 instructions per key and lane in the decode kernel's issue-bound loop — by a shift and a
// mask; -1 keeps the division for other page sizes.
// Q of a thread's two M rows (pos / head: position within the tile, query head) as bf16 A fragments of
// m16n8k16: rows g / g + 8 of the warp's 16, dims 16 kk + 2 t4 (+1) and + 8; rows at or past nr are zeros.
template <int D>
__device__ __forceinline__ void load_q_fragments_bf16(uint32_t (&qa)[D / 16][4], const float* q, int32_t n_heads,
                                                      int32_t row0, int32_t nr, const int32_t (&pos)[2],
                                                      const int32_t (&head)[2], int32_t t4) {
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int i = e & 1;
      const int32_t dim = 16 * kk + 8 * (e >> 1) + 2 * t4;
      float2 x = make_float2(0.f, 0.f);
      if (pos[i] < nr) x = *reinterpret_cast<const float2*>(q + (int64_t(row0 + pos[i]) * n_heads + head[i]) * D + dim);
      const __nv_bfloat162 hi = __floats2bfloat162_rn(x.x, x.y);
      qa[kk][e] = *reinterpret_cast<const uint32_t*>(&hi);
    }
  }
}

__device__ __forceinline__ int page_shift_of(int32_t ps) { return (ps & (ps - 1)) == 0 ? __ffs(ps) - 1 : -1; }

__device__ __forceinline__ int64_t paged_slot(const int32_t* pages, int32_t ps, int page_shift, int32_t j) {
  int32_t pg, in_page;
  if (page_shift >= 0) {
    pg = j >> page_shift;
    in_page = j & (ps - 1);
  } else {
    pg = j / ps;
    in_page = j - pg * ps;
  }
  return int64_t(pages[pg]) * ps + in_page;
}

// fp8 KV (kv/kv_quant.h): two e4m3 bytes in the low 16 bits of w16 (the low byte -> the low half) -> fp16x2, exact.
__device__ __forceinline__ uint32_t fp8x2_to_f16x2(uint32_t w16) {
  uint32_t h;
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h) : "h"(uint16_t(w16)));
  return h;
}
// The same pair as two floats (exact).
__device__ __forceinline__ float2 fp8x2_to_f2(uint16_t w) {
  const uint32_t h = fp8x2_to_f16x2(w);
  float lo, hi;
  asm("cvt.f32.f16 %0, %1;" : "=f"(lo) : "h"(uint16_t(h & 0xffff)));
  asm("cvt.f32.f16 %0, %1;" : "=f"(hi) : "h"(uint16_t(h >> 16)));
  return make_float2(lo, hi);
}

// 2^(byte - 127), the fp8 scale of a biased exponent byte (byte 0 is 2^-127, a subnormal).
__device__ __forceinline__ float fp8_scale_of(uint32_t exponent_byte) {
  return __uint_as_float(exponent_byte != 0 ? exponent_byte << 23 : 0x00400000u);
}

__device__ __forceinline__ uint4 ld_shared_v4(uint32_t addr) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(addr));
  return v;
}
__device__ __forceinline__ void st_shared_v4(uint32_t addr, uint4 v) {
  asm volatile("st.shared.v4.u32 [%0], {%1,%2,%3,%4};" ::"r"(addr), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w));
}

// 8 fp8 values (one 8-byte chunk of a K or V row) times their scale -> 8 bf16 (exact: e4m3 values have 4
// significant bits and the scale is a power of two). The prefill kernels stage fp8 tiles as bf16 through this.
__device__ __forceinline__ uint4 fp8x8_to_bf16x8(uint2 raw, float scale) {
  const float2 a = fp8x2_to_f2(uint16_t(raw.x)), b = fp8x2_to_f2(uint16_t(raw.x >> 16));
  const float2 c = fp8x2_to_f2(uint16_t(raw.y)), d = fp8x2_to_f2(uint16_t(raw.y >> 16));
  return make_uint4(pack_bf16(a.x * scale, a.y * scale), pack_bf16(b.x * scale, b.y * scale),
                    pack_bf16(c.x * scale, c.y * scale), pack_bf16(d.x * scale, d.y * scale));
}

// Two stored K/V elements -> two floats: bf16 (uint16_t) or fp8 e4m3 (uint8_t) pairs, unscaled.
__device__ __forceinline__ float2 kv_pair_to_f2(const uint16_t* p) {
  return bf2_to_f2(*reinterpret_cast<const uint32_t*>(p));
}
__device__ __forceinline__ float2 kv_pair_to_f2(const uint8_t* p) { return fp8x2_to_f2(*reinterpret_cast<const uint16_t*>(p)); }

// Where the keys of one (sequence, KV head) live: the page pool through the sequence's block table, or the ring of a
// windowed head (AttentionCommon::ring_heads). offset(pos) is the element offset of key position pos from k / v,
// which already point at the head; a decode block computes this once and calls offset() per key. T is the stored
// element (uint16_t bf16, uint8_t fp8); fp8 stores also have `scale` (already at the head: scale[slot * scale_stride]
// holds the key's K exponent byte | V's << 8).
template <class T>
struct KvHeadSourceT {
  const T* k;
  const T* v;
  const uint16_t* scale;
  int32_t scale_stride;
  int64_t slot_stride;
  const int32_t* pages;  // pool: the sequence's block table
  int32_t page_size;
  int page_shift;
  int32_t ring_base;     // ring: first slot of the sequence's ring, -1 for the pool
  int32_t ring_sink, ring_cycle;  // ring: sinks stay, the rest rotate over ring_len - sink slots

  __device__ __forceinline__ int64_t slot(int32_t pos) const {
    if (ring_base < 0) return paged_slot(pages, page_size, page_shift, pos);
    return int64_t(ring_base + (pos < ring_sink ? pos : ring_sink + (pos - ring_sink) % ring_cycle));
  }
  __device__ __forceinline__ int64_t offset(int32_t pos) const { return slot(pos) * slot_stride; }
};

template <class T, typename Common>
__device__ __forceinline__ KvHeadSourceT<T> kv_head_source(const Common& a, int32_t seq, int32_t kvh) {
  KvHeadSourceT<T> s;
  const int32_t index = a.kv_index[kvh];
  if ((a.ring_heads >> kvh) & 1ull) {
    s.k = static_cast<const T*>(a.k_ring) + a.ring_kv.offset(0, index);
    s.v = static_cast<const T*>(a.v_ring) + a.ring_kv.offset(0, index);
    s.scale = a.ring_scale != nullptr ? a.ring_scale + index : nullptr;
    s.scale_stride = a.ring_kv.n_heads;
    s.slot_stride = a.ring_kv.slot_stride();
    s.pages = nullptr;
    s.page_size = 0;
    s.page_shift = 0;
    s.ring_base = a.ring_base[seq];
    s.ring_sink = a.ring_sink;
    s.ring_cycle = a.ring_kv.page_size - a.ring_sink;
  } else {
    s.k = static_cast<const T*>(a.k_pool) + a.kv.offset(0, index);
    s.v = static_cast<const T*>(a.v_pool) + a.kv.offset(0, index);
    s.scale = a.kv_scale != nullptr ? a.kv_scale + index : nullptr;
    s.scale_stride = a.kv.n_heads;
    s.slot_stride = a.kv.slot_stride();
    s.pages = a.page_indices + a.page_indptr[seq];
    s.page_size = a.page_size;
    s.page_shift = page_shift_of(a.page_size);
    s.ring_base = -1;
    s.ring_sink = 0;
    s.ring_cycle = 1;
  }
  return s;
}

}  // namespace lcllm
