// out = x · Wᵀ (+ bias) with fp32 accumulation over F32/F16/BF16 weights.
//
// Threads split the output features into blocks of four rows. Tokens go in tiles small enough to stay in L2 while
// a thread's weight blocks pass over them, and each 2-token × 4-row piece is one register-blocked kernel
// (cpu_dot_block_2x4): one load of x feeds four rows, one load of W feeds two tokens. Every output element is
// cpu_dot's arithmetic (cpu_simd.h), whatever path computed it.
#include <algorithm>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_simd.h"
#include "lcllm/error.h"

namespace lcllm {

namespace {

constexpr int64_t kRowsPerBlock = 4;
constexpr int64_t kTokenTile = 64;  // 64 tokens × 4 KiB rows (hidden 1024) = 256 KiB of x per tile

void load_row_f32(const Tensor& w, int64_t row, int64_t cols, float* dst) {
  const size_t base = size_t(row) * size_t(cols);
  switch (w.dtype) {
    case DType::DTYPE_F32: {
      const float* src = static_cast<const float*>(w.data) + base;
      std::copy(src, src + cols, dst);
      break;
    }
    case DType::DTYPE_F16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + base;
      for (int64_t j = 0; j < cols; ++j) dst[j] = f16_to_f32(src[j]);
      break;
    }
    case DType::DTYPE_BF16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + base;
      for (int64_t j = 0; j < cols; ++j) dst[j] = bf16_to_f32(src[j]);
      break;
    }
  }
}

}  // namespace

void CpuBackend::matmul(Tensor out, const Tensor& x, const Tensor& w, const Tensor& bias) {
  const int64_t n = x.numel() / x.shape[size_t(x.ndim - 1)];
  const int64_t in = w.dim(1), n_out = w.dim(0);
  LCLLM_ASSERT(x.shape[size_t(x.ndim - 1)] == in, "matmul inner dimensions differ");
  const float* xd = static_cast<const float*>(x.data);  // [n, in]
  float* od = static_cast<float*>(out.data);            // [n, n_out]
  const int64_t n_blocks = (n_out + kRowsPerBlock - 1) / kRowsPerBlock;
  pool_.parallel_for(n_blocks, [&](int64_t b, int64_t e, int32_t) {
    std::vector<float> rows(size_t(kRowsPerBlock * in), 0.f);  // [4, in] the block's weight rows in fp32
    float piece[2 * kRowsPerBlock];                               // [2 tokens, 4 rows]
    for (int64_t t0 = 0; t0 < n; t0 += kTokenTile) {
      const int64_t t1 = std::min(n, t0 + kTokenTile);
      for (int64_t blk = b; blk < e; ++blk) {
        const int64_t o0 = blk * kRowsPerBlock, n_rows = std::min(kRowsPerBlock, n_out - o0);
        const float* wb = rows.data();  // [4, in]; rows past n_rows are stale and their outputs dropped
        if (w.dtype == DType::DTYPE_F32 && n_rows == kRowsPerBlock) {
          wb = static_cast<const float*>(w.data) + o0 * in;
        } else {
          for (int64_t r = 0; r < n_rows; ++r) load_row_f32(w, o0 + r, in, rows.data() + r * in);
        }
        auto store = [&](int64_t t, const float* vals) {
          for (int64_t r = 0; r < n_rows; ++r) {
            const float bo = bias.empty() ? 0.f : dtype_load(bias.data, bias.dtype, size_t(o0 + r));
            od[t * n_out + o0 + r] = vals[r] + bo;
          }
        };
        int64_t t = t0;
        for (; t + 2 <= t1; t += 2) {
          cpu_dot_block_2x4(xd + t * in, in, wb, in, in, piece, kRowsPerBlock);
          store(t, piece);
          store(t + 1, piece + kRowsPerBlock);
        }
        if (t < t1) {  // an odd last token (every decode step): four rows against one x, each cpu_dot's sum
          const float* const w4[4] = {wb, wb + in, wb + 2 * in, wb + 3 * in};
          cpu_dot4(xd + t * in, w4, in, piece);
          store(t, piece);
        }
      }
    }
  });
}

}  // namespace lcllm
