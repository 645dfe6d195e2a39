// Paged KV cache bookkeeping: per-sequence block tables over a ref-counted PagePool (vLLM PagedAttention layout).
//
// Token position p of a sequence lives in page block_table[p / page_size] at offset p % page_size; its global
// slot is page * page_size + offset. One page id stands for the same slot range in every layer's K and V storage,
// which the backend owns. Attention kernels see only the CSR export (FlashInfer paged layout).
//
// Sharing: fork_sequence() makes a second block table over the same pages (ref counts +1). A shared page is never
// written: appending into a partially filled shared last page first moves the appender onto a fresh copy
// (copy-on-write), which the backend performs from AppendPlan::copies.
#pragma once
#include <cstdint>
#include <span>
#include <utility>
#include <unordered_map>
#include <vector>

#include "kv/page_pool.h"

namespace lcllm {

struct KvCacheConfig {
  int32_t page_size = 16;  // tokens per page, >= 1
  int32_t n_pages = 0;     // pages in the pool, >= 1
};

struct PageCopy {
  int32_t src_page;
  int32_t dst_page;
};

struct AppendPlan {
  std::vector<int64_t> slots;     // [n] global slot (page * page_size + offset) of each new token, in order
  // [n_copies] (0 or 1): whole-page copies src -> dst. The backend runs the copies of every plan of a step before
  // any KV write of that step: the source page stays shared, and another holder may write into it in the same step.
  std::vector<PageCopy> copies;
  int32_t first_position = 0;     // position of slots[0] in the sequence (its length before the append)
};

struct CsrPages {
  std::vector<int32_t> indptr;         // [n_seq + 1]; pages of seqs[i] are indices[indptr[i] .. indptr[i+1])
  std::vector<int32_t> indices;        // [nnz] page ids, in position order
  std::vector<int32_t> last_page_len;  // [n_seq] tokens in the last page, 1..page_size; 0 only for an empty sequence
};

class KvCache {
 public:
  // Throws ERROR_KIND_INVALID_ARGUMENT when page_size < 1 or n_pages < 1.
  explicit KvCache(const KvCacheConfig& config);

  // A new empty sequence (no pages yet). Ids are never reused while a sequence holds them.
  int32_t create_sequence();
  // Releases the sequence's pages (a page shared with a fork stays allocated). Unknown seq: INVALID_ARGUMENT.
  void free_sequence(int32_t seq);
  // A new sequence with the same length and the same pages (each ref count +1). Never allocates, never fails on
  // memory: the copies happen lazily at the first append into a shared partial page.
  int32_t fork_sequence(int32_t seq);

  // Reserves n >= 0 more token slots at the end of seq and says where to write them. All or nothing: when the pool
  // cannot supply every page the append needs (copy-on-write page included), throws ERROR_KIND_OUT_OF_MEMORY with
  // the pages needed and free, and nothing changes — so the scheduler can preempt or retry without cleanup.
  AppendPlan append_tokens(int32_t seq, int32_t n);
  // Pages append_tokens(seq, n) would take from the pool now (for admission checks); n < 0: INVALID_ARGUMENT.
  int32_t pages_needed(int32_t seq, int32_t n) const;
  // Drops tokens new_len..length-1 (0 <= new_len <= length), releasing pages no longer needed (rollback of
  // rejected speculative tokens, retries). Data kept in a partial last page stays valid.
  void truncate(int32_t seq, int32_t new_len);

  int32_t length(int32_t seq) const;
  // Valid until the next call that changes seq.
  const std::vector<int32_t>& block_table(int32_t seq) const;  // [ceil(length / page_size)] page ids
  bool has_sequence(int32_t seq) const { return seqs_.count(seq) != 0; }
  std::vector<int32_t> sequences() const;  // [n_live] live ids, ascending

  int32_t pages_free() const { return pool_.free_count(); }

  // ---- page reservations (E11 item 1: admission uses the cache's own accounting, no second copy) ----
  // A reservation promises pages that sequences will take later (a request's prompt + max_tokens), so that a
  // running sequence never finds the pool empty. Sequences sharing a reservation (a request's choices: forks
  // inherit it) draw their appends and copy-on-write copies from it first; whatever it does not cover comes from
  // pages_available(). It is released when its last sequence is freed.
  // Adds `pages` (>= 0) to seq's reservation; false, changing nothing, when pages_available() < pages.
  bool reserve(int32_t seq, int32_t pages);
  // Free pages (idle cached ones included) not promised to any reservation. Never negative.
  int32_t pages_available() const { return pool_.free_count() - reserved_total_; }
  int32_t pages_reserved() const { return reserved_total_; }
  int32_t n_pages() const { return pool_.capacity(); }
  int32_t page_size() const { return page_size_; }
  const PagePool& pool() const { return pool_; }

  // Block tables of seqs (in the given order; repeats allowed) in the layout attention kernels read.
  CsrPages export_csr(std::span<const int32_t> seqs) const;

  static int64_t slot_of(int32_t page, int32_t offset, int32_t page_size) {
    return static_cast<int64_t>(page) * page_size + offset;
  }
  // Global slot of position pos (0 <= pos < length) of seq; out of range: INVALID_ARGUMENT.
  int64_t slot_at(int32_t seq, int32_t pos) const;

  // ---- prefix caching (E11 item 2; vLLM's automatic prefix caching, SGLang's radix cache) ----
  // Full pages are keyed by a chained hash: page i's key covers the tokens of pages 0..i and a salt (the attention
  // plan, which changes what a page holds). A registered page stays in the pool when its last holder goes (LRU; it
  // is evicted only when no page is free), so a later sequence with the same prefix starts from it. Keys are
  // verified against the stored tokens, so a hash collision is a miss, never a wrong page.
  void set_prefix_caching(bool on);
  bool prefix_caching() const { return prefix_on_; }
  // A new sequence holding the longest registered run of full pages that begins `tokens`, at most
  // (tokens.size() - 1) / page_size pages, so that at least one token is left to compute (its logits are needed).
  // Returns {sequence, tokens it already holds}. With prefix caching off: a new empty sequence. Idle cached pages
  // are taken only while pages_available() stays >= 0 (they count as free, so taking one spends a free page).
  std::pair<int32_t, int32_t> create_sequence_from_prefix(std::span<const int32_t> tokens, uint64_t salt);
  // What create_sequence_from_prefix would find now, changing nothing (no statistics either): admission checks
  // that the request fits before it takes the pages.
  struct PrefixMatch {
    int32_t pages = 0;       // cached full pages that begin `tokens`
    int32_t idle_pages = 0;  // of those, held by no sequence (taking one spends a free page)
  };
  PrefixMatch match_prefix(std::span<const int32_t> tokens, uint64_t salt) const;
  // Registers the full pages of seq that hold tokens[0, tokens.size()) (tokens.size() <= the sequence's length).
  void register_prefix(int32_t seq, std::span<const int32_t> tokens, uint64_t salt);
  struct PrefixStats {
    int64_t query_tokens = 0;  // prompt tokens looked up
    int64_t hit_tokens = 0;    // of those, found cached
    int64_t evictions = 0;     // cached pages handed out again
    int32_t cached_pages = 0;  // registered pages now (held or idle)
  };
  PrefixStats prefix_stats() const;

 private:
  struct CachedPage {
    uint64_t key = 0;             // 0: not registered
    uint64_t parent = 0;          // the previous page's key (0 for the first page)
    uint64_t salt = 0;            // the salt it was registered under
    std::vector<int32_t> tokens;  // [page_size] the page's tokens, to verify a key match
  };
  uint64_t chain_key(uint64_t parent, std::span<const int32_t> page_tokens, uint64_t salt) const;
  // The registered pages that begin `tokens` (at most (size - 1) / page_size), stopping before an idle page would
  // take pages_available() below zero.
  std::vector<int32_t> prefix_pages(std::span<const int32_t> tokens, uint64_t salt) const;
  void forget_page(int32_t page);
  int32_t allocate_page();  // pool_.allocate(), forgetting an evicted cached page
  struct Sequence {
    std::vector<int32_t> pages;  // [ceil(length / page_size)]
    int32_t length = 0;
    int32_t reservation = -1;    // key in reservations_, -1: none
  };
  struct Reservation {
    int32_t pages = 0;    // promised and not yet taken
    int32_t holders = 0;  // sequences drawing from it
  };
  // Takes up to `pages` from seq's reservation for pages it just allocated.
  void draw_reservation(Sequence& s, int32_t pages);
  void drop_holder(Sequence& s);
  Sequence& find(int32_t seq);
  const Sequence& find(int32_t seq) const;
  int32_t pages_for(int32_t n_tokens) const;  // ceil(n_tokens / page_size)
  int32_t new_sequence_id();

  int32_t page_size_;
  PagePool pool_;
  bool prefix_on_ = false;
  std::unordered_map<uint64_t, int32_t> by_key_;  // registered key -> page
  std::vector<CachedPage> cached_;                // [n_pages] what each registered page holds
  PrefixStats stats_;
  uint64_t hash_seed_ = 0;  // random per cache, mixed into every key
  std::unordered_map<int32_t, Sequence> seqs_;
  int32_t next_id_ = 0;
  std::unordered_map<int32_t, Reservation> reservations_;
  int32_t reserved_total_ = 0;  // sum of reservations_[*].pages
  int32_t next_reservation_ = 0;
};

}  // namespace lcllm
