// A fixed pool of KV page ids with reference counts.
//
// The pool manages ids only: the storage behind a page (one [page_size, n_kv_heads, head_dim] K and V block per
// layer, fp32 on the CPU backend, bf16 on CUDA) belongs to the backend, so both backends share this code.
// A page is free exactly when its reference count is 0. Several sequences may hold the same page (fork, prefix
// sharing); each holder owns one reference.
#pragma once
#include <cstddef>
#include <cstdint>
#include <list>
#include <vector>

namespace lcllm {

class PagePool {
 public:
  // n_pages >= 1, else lcllm::Error ERROR_KIND_INVALID_ARGUMENT (it comes from the user's cache size).
  explicit PagePool(int32_t n_pages);

  // Takes a free page and gives it reference count 1. The free list is LIFO: the page released last is handed out
  // first, so a busy server keeps reusing the pages that are hot in cache. Throws ERROR_KIND_OUT_OF_MEMORY
  // ("KV cache full: ...") when no page is free, leaving the pool unchanged.
  // `evicted`, when given, is set to whether the page was a cached idle one (whose owner must forget it).
  int32_t allocate(bool* evicted = nullptr);

  // One more holder for an allocated page (or the first again for a cached idle one).
  void retain(int32_t page);
  // One holder fewer; at 0 the page goes back to the free list.
  void release(int32_t page);

  int32_t ref_count(int32_t page) const;
  // Pages allocate() can hand out: free ones plus cached ones nobody holds.
  int32_t free_count() const { return static_cast<int32_t>(free_list_.size() + lru_.size()); }
  int32_t capacity() const { return static_cast<int32_t>(ref_counts_.size()); }

  // Prefix caching (kv/kv_cache.h): a page marked cached keeps its contents when its last holder releases it. It
  // then waits in an LRU list instead of the free list; retain() takes it back (a prefix hit), and allocate(), when
  // no page is free, evicts the one released longest ago (and says so, so that its owner forgets it).
  void mark_cached(int32_t page, bool cached);

 private:
  std::vector<int32_t> ref_counts_;  // [n_pages]; 0 = free or cached-idle
  std::vector<int32_t> free_list_;   // [n_free], a stack: back() is handed out next
  std::vector<uint8_t> cached_;      // [n_pages] 1: kept for prefix reuse when idle
  std::list<int32_t> lru_;           // [n_cached_idle] cached pages nobody holds, least recently released first
  std::vector<std::list<int32_t>::iterator> lru_pos_;  // [n_pages] position in lru_ of a cached idle page
};

}  // namespace lcllm
