// Hopper warpgroup MMA (wgmma.mma_async, sm_90a) wrappers: shared-memory matrix descriptors, the fence / commit /
// wait protocol, and the two shapes the prefill kernel uses with A in registers. PTX ISA §9.7.15 ("Asynchronous
// Warpgroup Level Matrix Multiply-Accumulate"): a warpgroup (4 consecutive warps) issues each wgmma together; warp w
// of the group owns accumulator rows 16w..16w+15 in the mma.sync m16n8 C layout, repeated over the N/8 column
// blocks (d[4j + e]: rows g (e < 2) / g + 8, columns 8j + 2 (lane % 4) + e % 2), and A from registers uses the
// m16n8k16 A layout per warp, so S's accumulators become P's A fragments without shuffles (FlashAttention-3 §3.1).
// Also the synchronisation a warp-specialised kernel needs beside them: mbarriers, named barriers, setmaxnreg.
#pragma once

#include <cstdint>

namespace lcllm {

// Descriptor of a bf16 operand stored in 128-byte swizzled atoms: 8 rows of 128 bytes (1024 B, 1024-B aligned),
// 16-byte chunk c of row r stored at chunk c ^ (r % 8) (PTX "Shared Memory Matrix Layout", Swizzle<3,4,3>).
//   K-major (B = K of QK^T, rows = keys, 64 dims a row): lbo unused (1), sbo = 1024 (next 8 rows).
//   MN-major (B = V of PV, rows = keys, 64 dims a row): one atom wide (N = 64), so lbo is unused; sbo = 1024 (next 8
//   keys). An N = 128 operand over two atoms, lbo = the distance between them, read wrong values on the H100
//   (docs/DECISIONS.md), so P V runs one m64n64k16 per 64-dim half.
__device__ __forceinline__ uint64_t wgmma_desc_sw128(uint32_t smem_addr, uint32_t lbo_bytes, uint32_t sbo_bytes) {
  return uint64_t((smem_addr & 0x3FFFFu) >> 4) | (uint64_t((lbo_bytes & 0x3FFFFu) >> 4) << 16) |
         (uint64_t((sbo_bytes & 0x3FFFFu) >> 4) << 32) | (uint64_t(1) << 62);
}

// Orders this thread's register writes (accumulators, A fragments) before the next wgmma reads them.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory");
}
// Shared-memory writes of the generic proxy (st.shared, cp.async) made visible to wgmma's async-proxy reads: run by
// a writing thread after its writes land and before the barrier that publishes them, or by a reading thread after
// the barrier (an mbarrier wait) that showed it the writes and before its wgmmas.
__device__ __forceinline__ void fence_proxy_async_shared() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

// Pins accumulator registers after a wait so the compiler keeps every use of them behind it.
template <int N>
__device__ __forceinline__ void wgmma_pin(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// The 64 fp32 accumulators of an m64n128 wgmma as the asm's first operands: their list (%0-%63) and the operands
// (read and written).
#define LCLLM_WGMMA_ACC64_LIST                                                                  \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "                      \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "            \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "            \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define LCLLM_WGMMA_ACC64_OPERANDS(d)                                                                                \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),        \
      "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),         \
      "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),        \
      "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]),        \
      "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]),        \
      "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),        \
      "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),        \
      "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])

// D[64 x 128] (+)= A[64 x 16] (registers, bf16) * B[16 x 128] (shared memory, bf16), fp32 accumulators.
// kTransB = 0: B is K-major (its 16 k values of a column contiguous); 1: MN-major.
template <int kTransB>
__device__ __forceinline__ void wgmma_m64n128k16_rs(float (&d)[64], const uint32_t (&a)[4], uint64_t b_desc,
                                                     int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{" LCLLM_WGMMA_ACC64_LIST
      "}, {%64, %65, %66, %67}, %68, p, 1, 1, %70;\n}\n"
      : LCLLM_WGMMA_ACC64_OPERANDS(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc), "r"(accumulate), "n"(kTransB));
}

// D[64 x 64] (+)= A[64 x 16] (registers, bf16) * B[16 x 64] (shared memory, bf16), fp32 accumulators.
// kTransB = 0: B is K-major (its 16 k values of a column contiguous); 1: MN-major.
template <int kTransB>
__device__ __forceinline__ void wgmma_m64n64k16_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t b_desc,
                                                     int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{" 
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
      "}, {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc), "r"(accumulate), "n"(kTransB));
}

// D[64 x 64] (+)= A[64 x 16] * B[16 x 64], both bf16 in shared memory, K-major (A: 16 k values of a row contiguous,
// B: of a column); fp32 accumulators. The prefill at head_dim 256 reads Q this way: its fragments would not fit the
// registers beside O.
__device__ __forceinline__ void wgmma_m64n64k16_ss(float (&d)[32], uint64_t a_desc, uint64_t b_desc, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
      "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(a_desc), "l"(b_desc), "r"(accumulate));
}

// D[64 x 128] (+)= A[64 x 16] * B[16 x 128], both bf16 in shared memory, K-major; fp32 accumulators. The prefill at
// head_dim 64 with three consumer warpgroups reads Q this way: its fragments would not fit 160 registers beside S,
// P and O.
__device__ __forceinline__ void wgmma_m64n128k16_ss(float (&d)[64], uint64_t a_desc, uint64_t b_desc, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{" LCLLM_WGMMA_ACC64_LIST
      "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : LCLLM_WGMMA_ACC64_OPERANDS(d)
      : "l"(a_desc), "l"(b_desc), "r"(accumulate));
}

// mbarrier (PTX ISA §9.7.13.15): a shared-memory barrier object whose phase completes when `count` arrivals have
// happened; waiters spin on the parity of the phase they wait for. The warp-specialised prefill uses one per stage
// and direction (tile landed / tile consumed) instead of block-wide barriers.
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}
// Arrive (release semantics at CTA scope: this thread's earlier shared-memory writes are visible to a waiter).
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}" ::"r"(bar) : "memory");
}
// An arrival that happens when every cp.async this thread issued before it has landed (.noinc: it is one of the
// barrier's `count` arrivals, not an extra one the thread announces).
__device__ __forceinline__ void mbar_arrive_on_cp_async(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(bar) : "memory");
}
// Wait until the phase of parity `parity` has completed (acquire semantics).
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred done;\nwait_again:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra wait_again;\n}" ::"r"(bar),
      "r"(parity)
      : "memory");
}

// Register reallocation between warpgroups (PTX setmaxnreg, sm_90a): a producer warpgroup gives registers back, the
// consumers take them, so that a 384-thread block's consumers hold more than 65536 / 384 each.
template <int N>
__device__ __forceinline__ void regs_decrease() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(N)); }
template <int N>
__device__ __forceinline__ void regs_increase() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(N)); }


// Named barriers (PTX bar.sync / bar.arrive with an id other than 0, which __syncthreads uses): `threads` of the
// block meet; arrive does not wait. The prefill's consumer warpgroups take turns issuing their wgmmas through two.
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;" ::"r"(id), "r"(threads) : "memory");
}

}  // namespace lcllm
