// See cpu_simd.h for the arithmetic every function here shares. This file is compiled with -ffp-contract=off
// (CMakeLists.txt): a fused multiply-add in one instruction set's clone would round differently from the others.
#include "backend/cpu/cpu_simd.h"

// Each function is cloned for these instruction sets and dispatched at load (GCC/Clang ifunc on x86-64 Linux).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define LCLLM_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LCLLM_CPU_CLONES
#endif

namespace lcllm {

namespace {

constexpr int kLanes = 8;
// Eight fp32 lanes as one value (GCC vector extension): elementwise + and * on it are the lane arithmetic, one
// ymm register with AVX2, two xmm registers with SSE2. Written out, not left to the auto-vectoriser, which
// shuffles lanes through the stack for these loops.
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));

inline Lanes load(const float* p) {
  Lanes v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

inline float reduce_lanes(Lanes l) {
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

}  // namespace

LCLLM_CPU_CLONES float cpu_dot(const float* a, const float* b, int64_t n) {
  Lanes l = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) l += load(a + j) * load(b + j);
  float s = reduce_lanes(l);
  for (; j < n; ++j) s += a[j] * b[j];
  return s;
}

LCLLM_CPU_CLONES void cpu_dot4(const float* q, const float* const k[4], int64_t n, float out[4]) {
  const float *k0 = k[0], *k1 = k[1], *k2 = k[2], *k3 = k[3];
  Lanes l0 = {}, l1 = {}, l2 = {}, l3 = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    const Lanes qj = load(q + j);
    l0 += qj * load(k0 + j);
    l1 += qj * load(k1 + j);
    l2 += qj * load(k2 + j);
    l3 += qj * load(k3 + j);
  }
  float s0 = reduce_lanes(l0), s1 = reduce_lanes(l1), s2 = reduce_lanes(l2), s3 = reduce_lanes(l3);
  for (; j < n; ++j) {
    s0 += q[j] * k0[j];
    s1 += q[j] * k1[j];
    s2 += q[j] * k2[j];
    s3 += q[j] * k3[j];
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}

LCLLM_CPU_CLONES void cpu_dot_block_2x4(const float* x, int64_t x_stride, const float* w, int64_t w_stride,
                                        int64_t n, float* out, int64_t out_stride) {
  const float* xs[2] = {x, x + x_stride};
  const float* ws[4] = {w, w + w_stride, w + 2 * w_stride, w + 3 * w_stride};
  Lanes l00 = {}, l01 = {}, l02 = {}, l03 = {}, l10 = {}, l11 = {}, l12 = {}, l13 = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    const Lanes a0 = load(xs[0] + j), a1 = load(xs[1] + j);
    const Lanes b0 = load(ws[0] + j), b1 = load(ws[1] + j), b2 = load(ws[2] + j), b3 = load(ws[3] + j);
    l00 += a0 * b0;
    l01 += a0 * b1;
    l02 += a0 * b2;
    l03 += a0 * b3;
    l10 += a1 * b0;
    l11 += a1 * b1;
    l12 += a1 * b2;
    l13 += a1 * b3;
  }
  const Lanes l[2][4] = {{l00, l01, l02, l03}, {l10, l11, l12, l13}};
  for (int t = 0; t < 2; ++t) {
    for (int o = 0; o < 4; ++o) {
      float s = reduce_lanes(l[t][o]);
      for (int64_t r = j; r < n; ++r) s += xs[t][r] * ws[o][r];
      out[t * out_stride + o] = s;
    }
  }
}

LCLLM_CPU_CLONES void cpu_weighted_sum_add(float* out, const float* p, const float* const* rows, int64_t n_rows,
                                           int64_t n) {
  int64_t d = 0;
  for (; d + 8 * kLanes <= n; d += 8 * kLanes) {  // 64 outputs in eight registers
    Lanes o0 = load(out + d), o1 = load(out + d + 8), o2 = load(out + d + 16), o3 = load(out + d + 24);
    Lanes o4 = load(out + d + 32), o5 = load(out + d + 40), o6 = load(out + d + 48), o7 = load(out + d + 56);
    for (int64_t i = 0; i < n_rows; ++i) {
      const float pi = p[i];
      const Lanes pv = {pi, pi, pi, pi, pi, pi, pi, pi};
      const float* r = rows[i] + d;
      o0 += pv * load(r);
      o1 += pv * load(r + 8);
      o2 += pv * load(r + 16);
      o3 += pv * load(r + 24);
      o4 += pv * load(r + 32);
      o5 += pv * load(r + 40);
      o6 += pv * load(r + 48);
      o7 += pv * load(r + 56);
    }
    const Lanes o[8] = {o0, o1, o2, o3, o4, o5, o6, o7};
    __builtin_memcpy(out + d, o, sizeof o);
  }
  for (; d + kLanes <= n; d += kLanes) {
    Lanes o = load(out + d);
    for (int64_t i = 0; i < n_rows; ++i) {
      const Lanes pv = {p[i], p[i], p[i], p[i], p[i], p[i], p[i], p[i]};
      o += pv * load(rows[i] + d);
    }
    __builtin_memcpy(out + d, &o, sizeof o);
  }
  for (; d < n; ++d) {
    float o = out[d];
    for (int64_t i = 0; i < n_rows; ++i) o += p[i] * rows[i][d];
    out[d] = o;
  }
}

LCLLM_CPU_CLONES void cpu_axpy(float* y, float a, const float* x, int64_t n) {
  int64_t j = 0;
  const Lanes av = {a, a, a, a, a, a, a, a};
  for (; j + kLanes <= n; j += kLanes) {
    const Lanes r = load(y + j) + av * load(x + j);
    __builtin_memcpy(y + j, &r, sizeof r);
  }
  for (; j < n; ++j) y[j] += a * x[j];
}

}  // namespace lcllm
