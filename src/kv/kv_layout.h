// KvLayout: the one owner of how one layer's K (or V) elements sit in the paged pool (ARCHITECTURE.md §3; FlashInfer
// `paged_kv_t`). The pool of a layer is [n_pages, page_size, n_heads_stored, head_dim] of one element type: a cache
// slot is page * page_size + row, and (slot, stored head) is one contiguous head_dim vector. Every kernel (through
// its parameter struct) and the CPU backend take their offsets and strides from it; nobody writes
// `(slot * n_kv_heads + h) * head_dim` by hand. Plain data with host/device inline functions, so kernels/ can use it
// without depending on anything else in src/.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define LCLLM_KV_FN __host__ __device__ __forceinline__
#else
#define LCLLM_KV_FN inline
#endif

namespace lcllm {

enum class KvDtype : int32_t {
  KV_DTYPE_F32 = 0,   // the CPU reference
  KV_DTYPE_BF16 = 1,  // the GPU's default
  // fp8 e4m3 values with one power-of-two scale per (slot, head) vector (kv/kv_quant.h); the scales are a second
  // array [n_slots, n_heads] of uint16 (low byte: K's exponent, high byte: V's) beside the pools.
  KV_DTYPE_FP8_E4M3 = 2,
};

struct KvLayout {
  int32_t page_size = 0;
  int32_t n_heads = 0;    // KV heads stored per slot (the layer's heads minus those kept in windows elsewhere)
  int32_t head_dim = 0;
  KvDtype dtype = KvDtype::KV_DTYPE_BF16;

  // Elements between consecutive cache slots.
  LCLLM_KV_FN int64_t slot_stride() const { return int64_t(n_heads) * head_dim; }
  // Element offset of stored head `h` of cache slot `slot`.
  LCLLM_KV_FN int64_t offset(int64_t slot, int32_t h) const { return slot * slot_stride() + int64_t(h) * head_dim; }
  // Elements of one page (all its slots and stored heads).
  LCLLM_KV_FN int64_t page_elems() const { return int64_t(page_size) * slot_stride(); }
  // The cache slot of key position `pos` of a sequence whose block table is `pages`.
  LCLLM_KV_FN int64_t slot_of(const int32_t* pages, int32_t pos) const {
    return int64_t(pages[pos / page_size]) * page_size + pos % page_size;
  }
  LCLLM_KV_FN int32_t element_bytes() const {
    return dtype == KvDtype::KV_DTYPE_F32 ? 4 : (dtype == KvDtype::KV_DTYPE_BF16 ? 2 : 1);
  }
  // Bytes of one page of K (or of V), and of the page's fp8 scale pairs (0 for the other dtypes). A store of n
  // pages is laid out K | V | scales: n * page_bytes() each for K and V, then n * page_scale_bytes().
  LCLLM_KV_FN int64_t page_bytes() const { return page_elems() * element_bytes(); }
  LCLLM_KV_FN int64_t page_scale_bytes() const {
    return dtype == KvDtype::KV_DTYPE_FP8_E4M3 ? int64_t(page_size) * n_heads * 2 : 0;
  }
  // Index of (slot, stored head) in the fp8 scale array: one uint16 per vector pair (K exponent | V exponent << 8).
  LCLLM_KV_FN int64_t scale_index(int64_t slot, int32_t h) const { return slot * n_heads + h; }
};

}  // namespace lcllm
