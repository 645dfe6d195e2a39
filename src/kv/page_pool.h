// A fixed pool of KV page ids with reference counts.
//
// The pool manages ids only: the storage behind a page (one [page_size, n_kv_heads, head_dim] K and V block per
// layer, fp32 on the CPU backend, bf16 on CUDA) belongs to the backend, so both backends share this code.
// A page is free exactly when its reference count is 0. Several sequences may hold the same page (fork, prefix
// sharing); each holder owns one reference.
#pragma once
#include <cstdint>
#include <vector>

namespace lcllm {

class PagePool {
 public:
  // n_pages >= 1, else lcllm::Error ERROR_KIND_INVALID_ARGUMENT (it comes from the user's cache size).
  explicit PagePool(int32_t n_pages);

  // Takes a free page and gives it reference count 1. The free list is LIFO: the page released last is handed out
  // first, so a busy server keeps reusing the pages that are hot in cache. Throws ERROR_KIND_OUT_OF_MEMORY
  // ("KV cache full: ...") when no page is free, leaving the pool unchanged.
  int32_t allocate();

  // One more holder for an allocated page.
  void retain(int32_t page);
  // One holder fewer; at 0 the page goes back to the free list.
  void release(int32_t page);

  int32_t ref_count(int32_t page) const;
  int32_t free_count() const { return static_cast<int32_t>(free_list_.size()); }
  int32_t capacity() const { return static_cast<int32_t>(ref_counts_.size()); }

 private:
  std::vector<int32_t> ref_counts_;  // [n_pages]; 0 = free
  std::vector<int32_t> free_list_;   // [free_count], a stack: back() is handed out next
};

}  // namespace lcllm
