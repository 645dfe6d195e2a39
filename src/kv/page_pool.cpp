#include "kv/page_pool.h"

#include <string>

#include "lcllm/error.h"

namespace lcllm {

PagePool::PagePool(int32_t n_pages) {
  if (n_pages < 1) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "KV cache: n_pages must be >= 1 (got " + std::to_string(n_pages) + ")");
  }
  ref_counts_.assign(static_cast<size_t>(n_pages), 0);
  cached_.assign(static_cast<size_t>(n_pages), 0);
  lru_pos_.assign(static_cast<size_t>(n_pages), lru_.end());
  free_list_.reserve(static_cast<size_t>(n_pages));
  // Pushed in reverse so that a fresh pool hands out 0, 1, 2, ... (easier to read in tests and dumps).
  for (int32_t page = n_pages - 1; page >= 0; --page) free_list_.push_back(page);
}

int32_t PagePool::allocate(bool* evicted) {
  if (evicted) *evicted = false;
  if (free_list_.empty() && !lru_.empty()) {
    // Evict the cached page released longest ago: its owner forgets it, then it is handed out like a free one.
    const int32_t page = lru_.front();
    lru_.pop_front();
    lru_pos_[size_t(page)] = lru_.end();
    cached_[size_t(page)] = 0;
    if (evicted) *evicted = true;
    ref_counts_[size_t(page)] = 1;
    return page;
  }
  if (free_list_.empty()) {
    throw Error(ErrorKind::ERROR_KIND_OUT_OF_MEMORY,
                "KV cache full: " + std::to_string(capacity()) + " pages in use of " + std::to_string(capacity()));
  }
  const int32_t page = free_list_.back();
  free_list_.pop_back();
  LCLLM_ASSERT(ref_counts_[page] == 0, "page on the free list has holders");
  ref_counts_[page] = 1;
  return page;
}

void PagePool::retain(int32_t page) {
  LCLLM_ASSERT(page >= 0 && page < capacity(), "page id out of range");
  if (ref_counts_[page] == 0) {
    LCLLM_ASSERT(cached_[size_t(page)] && lru_pos_[size_t(page)] != lru_.end(), "retain of a free page");
    lru_.erase(lru_pos_[size_t(page)]);  // a prefix hit takes an idle cached page back
    lru_pos_[size_t(page)] = lru_.end();
  }
  ++ref_counts_[page];
}

void PagePool::release(int32_t page) {
  LCLLM_ASSERT(page >= 0 && page < capacity(), "page id out of range");
  LCLLM_ASSERT(ref_counts_[page] > 0, "release of a free page");
  if (--ref_counts_[page] > 0) return;
  if (cached_[size_t(page)]) {
    lru_pos_[size_t(page)] = lru_.insert(lru_.end(), page);
  } else {
    free_list_.push_back(page);
  }
}

void PagePool::mark_cached(int32_t page, bool cached) {
  LCLLM_ASSERT(page >= 0 && page < capacity(), "page id out of range");
  LCLLM_ASSERT(ref_counts_[page] > 0, "only a held page changes its cached mark");
  cached_[size_t(page)] = cached ? 1 : 0;
}

int32_t PagePool::ref_count(int32_t page) const {
  LCLLM_ASSERT(page >= 0 && page < capacity(), "page id out of range");
  return ref_counts_[page];
}

}  // namespace lcllm
