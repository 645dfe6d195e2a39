// The CPU backend's inner loops: dot products and axpy over fp32 vectors.
//
// Every dot product here has the same arithmetic. It keeps eight lane sums (lane i holds the products of the
// elements j with j % 8 == i, in ascending j), adds them as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)), then adds the tail
// elements one by one. Products and sums are rounded separately (no fused multiply-add), so the result is the same
// bits with AVX-512, AVX2 or SSE2. The functions are compiled once per instruction set and the best one the CPU has
// is picked at load time. That makes the CPU reference repeat exactly across machines, and lets one key's
// score from cpu_dot4 equal its score from cpu_dot.
#pragma once
#include <cstdint>

namespace lcllm {

// Σ a[j]·b[j] over j < n, in the lane order above.
float cpu_dot(const float* a, const float* b, int64_t n);

// out[i] = cpu_dot(q, k[i], n) for four vectors k[0..3] at once: q is loaded once per step for all four, and the
// four independent sums hide the add latency one sum alone would wait on.
void cpu_dot4(const float* q, const float* const k[4], int64_t n, float out[4]);

// out[t][o] = cpu_dot(x[t], w[o], n) for t < 2, o < 4 (a 2×4 block of a matrix product; x rows and w rows are
// n floats each, x rows `x_stride` apart, w rows `w_stride` apart, out rows `out_stride` apart).
void cpu_dot_block_2x4(const float* x, int64_t x_stride, const float* w, int64_t w_stride, int64_t n, float* out,
                       int64_t out_stride);

// out[d] = (((out[d] + p[0]·rows[0][d]) + p[1]·rows[1][d]) + …) for d < n: the rows added in ascending order onto
// what out holds (each product rounded, then added), which is what n_rows calls of cpu_axpy would give. Sixty-four
// outputs at a time stay in registers across all rows, so each row costs its loads and no stores.
void cpu_weighted_sum_add(float* out, const float* p, const float* const* rows, int64_t n_rows, int64_t n);

// y[j] += a · x[j] for j < n (the product rounded, then the sum).
void cpu_axpy(float* y, float a, const float* x, int64_t n);

}  // namespace lcllm
