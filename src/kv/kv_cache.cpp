#include "kv/kv_cache.h"

#include <algorithm>
#include <limits>
#include <random>
#include <string>
#include <utility>

#include "lcllm/error.h"

namespace lcllm {

namespace {

[[noreturn]] void throw_invalid(const std::string& message) {
  throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "KV cache: " + message);
}

// Validated before the pool is built so a bad page_size is reported even when n_pages is also bad.
int32_t checked_page_size(const KvCacheConfig& config) {
  if (config.page_size < 1) throw_invalid("page_size must be >= 1 (got " + std::to_string(config.page_size) + ")");
  return config.page_size;
}

}  // namespace

KvCache::KvCache(const KvCacheConfig& config)
    : page_size_(checked_page_size(config)), pool_(config.n_pages), hash_seed_(std::random_device{}()) {
  hash_seed_ = (hash_seed_ << 32) ^ std::random_device{}();
}

int32_t KvCache::pages_for(int32_t n_tokens) const {
  return static_cast<int32_t>((static_cast<int64_t>(n_tokens) + page_size_ - 1) / page_size_);
}

KvCache::Sequence& KvCache::find(int32_t seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) throw_invalid("unknown sequence " + std::to_string(seq));
  return it->second;
}

const KvCache::Sequence& KvCache::find(int32_t seq) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) throw_invalid("unknown sequence " + std::to_string(seq));
  return it->second;
}

int32_t KvCache::new_sequence_id() {
  // Ids count up and wrap at INT32_MAX, skipping live ones, so a long-running server never runs out; a live
  // sequence per id is impossible before memory runs out, so the loop ends.
  for (;;) {
    const int32_t id = next_id_;
    next_id_ = (next_id_ == std::numeric_limits<int32_t>::max()) ? 0 : next_id_ + 1;
    if (seqs_.count(id) == 0) return id;
  }
}

int32_t KvCache::create_sequence() {
  const int32_t id = new_sequence_id();
  seqs_.emplace(id, Sequence{});
  return id;
}

void KvCache::free_sequence(int32_t seq) {
  Sequence& s = find(seq);
  // Last page first: with prefix caching the LRU then evicts a cached chain from its tail, and its head (the part
  // other prompts share) survives longest.
  for (auto it = s.pages.rbegin(); it != s.pages.rend(); ++it) pool_.release(*it);
  drop_holder(s);
  seqs_.erase(seq);
}

bool KvCache::reserve(int32_t seq, int32_t pages) {
  Sequence& s = find(seq);
  if (pages < 0) throw_invalid("cannot reserve " + std::to_string(pages) + " pages");
  if (pages > pages_available()) return false;
  if (s.reservation < 0) {
    s.reservation = next_reservation_;
    next_reservation_ = next_reservation_ == std::numeric_limits<int32_t>::max() ? 0 : next_reservation_ + 1;
    reservations_[s.reservation] = Reservation{0, 1};
  }
  reservations_.at(s.reservation).pages += pages;
  reserved_total_ += pages;
  return true;
}

void KvCache::draw_reservation(Sequence& s, int32_t pages) {
  if (s.reservation < 0 || pages <= 0) return;
  Reservation& r = reservations_.at(s.reservation);
  const int32_t take = std::min(pages, r.pages);
  r.pages -= take;
  reserved_total_ -= take;
}

void KvCache::drop_holder(Sequence& s) {
  if (s.reservation < 0) return;
  auto it = reservations_.find(s.reservation);
  if (--it->second.holders == 0) {
    reserved_total_ -= it->second.pages;
    reservations_.erase(it);
  }
  s.reservation = -1;
}

int32_t KvCache::fork_sequence(int32_t seq) {
  Sequence copy = find(seq);  // copied before emplace may rehash
  for (int32_t page : copy.pages) pool_.retain(page);
  if (copy.reservation >= 0) ++reservations_.at(copy.reservation).holders;  // a request's choices share one
  const int32_t id = new_sequence_id();
  seqs_.emplace(id, std::move(copy));
  return id;
}

int32_t KvCache::pages_needed(int32_t seq, int32_t n) const {
  const Sequence& s = find(seq);
  if (n < 0) throw_invalid("cannot append " + std::to_string(n) + " tokens to sequence " + std::to_string(seq));
  if (n == 0) return 0;
  if (static_cast<int64_t>(s.length) + n > std::numeric_limits<int32_t>::max()) {
    throw_invalid("sequence " + std::to_string(seq) + " of length " + std::to_string(s.length) +
                  " cannot grow by " + std::to_string(n) + " tokens (int32 positions)");
  }
  // Copy-on-write: every holder of a shared partial page writes its next token at the same offset, so writing in
  // place would overwrite another sequence's token (or have it overwrite ours). The appender moves to a private
  // copy first; a full shared page is never written again, so it stays shared.
  const bool partial_last = s.length % page_size_ != 0;
  const bool copy_on_write = partial_last && pool_.ref_count(s.pages.back()) > 1;  // shared (cached or not)
  const int32_t grow = pages_for(s.length + n) - static_cast<int32_t>(s.pages.size());
  return grow + (copy_on_write ? 1 : 0);
}

AppendPlan KvCache::append_tokens(int32_t seq, int32_t n) {
  // Everything that can fail is checked before the first change: the caller (scheduler) treats a throw as
  // "not now" and must find the cache exactly as it was, with no page leaked and no length moved.
  const int32_t needed = pages_needed(seq, n);
  Sequence& s = find(seq);
  // Pages promised to other reservations are not ours to take.
  const int32_t own = s.reservation >= 0 ? reservations_.at(s.reservation).pages : 0;
  if (needed > own + pages_available()) {
    throw Error(ErrorKind::ERROR_KIND_OUT_OF_MEMORY,
                "KV cache full: appending " + std::to_string(n) + " tokens to sequence " + std::to_string(seq) +
                    " needs " + std::to_string(needed) + " pages but only " + std::to_string(own + pages_available()) +
                    " of " + std::to_string(pool_.capacity()) + " are free and not promised to other requests " +
                    "(page_size " + std::to_string(page_size_) + ")");
  }
  draw_reservation(s, needed);
  AppendPlan plan;
  plan.first_position = s.length;
  if (n == 0) return plan;

  // From here on no allocation can fail (needed <= free).
  // A registered (prefix-cached) page must never be written again: held by us alone, it leaves the cache before the
  // write; shared, the copy below moves us off it anyway.
  if (s.length % page_size_ != 0 && pool_.ref_count(s.pages.back()) == 1 && !cached_.empty() &&
      cached_[size_t(s.pages.back())].key != 0) {
    forget_page(s.pages.back());
    pool_.mark_cached(s.pages.back(), false);
  }
  if (s.length % page_size_ != 0 && pool_.ref_count(s.pages.back()) > 1) {
    const int32_t shared = s.pages.back();
    const int32_t fresh = allocate_page();
    plan.copies.push_back(PageCopy{shared, fresh});
    s.pages.back() = fresh;
    pool_.release(shared);  // still held by the other sequences, so it does not return to the free list
  }
  const int32_t new_len = s.length + n;
  while (static_cast<int32_t>(s.pages.size()) < pages_for(new_len)) s.pages.push_back(allocate_page());

  plan.slots.reserve(static_cast<size_t>(n));
  for (int32_t pos = s.length; pos < new_len; ++pos) {
    plan.slots.push_back(slot_of(s.pages[pos / page_size_], pos % page_size_, page_size_));
  }
  s.length = new_len;
  return plan;
}

void KvCache::truncate(int32_t seq, int32_t new_len) {
  Sequence& s = find(seq);
  if (new_len < 0 || new_len > s.length) {
    throw_invalid("cannot truncate sequence " + std::to_string(seq) + " of length " + std::to_string(s.length) +
                  " to " + std::to_string(new_len));
  }
  const int32_t keep = pages_for(new_len);
  while (static_cast<int32_t>(s.pages.size()) > keep) {
    pool_.release(s.pages.back());
    s.pages.pop_back();
  }
  // A registered page that becomes this sequence's partial last page will be written again: it stops being a
  // cached prefix (other holders, if any, keep it through copy-on-write).
  if (new_len % page_size_ != 0 && !s.pages.empty() && cached_.size() > size_t(s.pages.back()) &&
      cached_[size_t(s.pages.back())].key != 0) {
    forget_page(s.pages.back());
    if (pool_.ref_count(s.pages.back()) > 0) pool_.mark_cached(s.pages.back(), false);
  }
  s.length = new_len;
}

int32_t KvCache::length(int32_t seq) const { return find(seq).length; }

const std::vector<int32_t>& KvCache::block_table(int32_t seq) const { return find(seq).pages; }

std::vector<int32_t> KvCache::sequences() const {
  std::vector<int32_t> ids;  // [n_live]
  ids.reserve(seqs_.size());
  for (const auto& entry : seqs_) ids.push_back(entry.first);
  std::sort(ids.begin(), ids.end());
  return ids;
}

CsrPages KvCache::export_csr(std::span<const int32_t> seqs) const {
  CsrPages csr;
  csr.indptr.reserve(seqs.size() + 1);
  csr.last_page_len.reserve(seqs.size());
  csr.indptr.push_back(0);
  for (int32_t seq : seqs) {
    const Sequence& s = find(seq);
    csr.indices.insert(csr.indices.end(), s.pages.begin(), s.pages.end());
    LCLLM_ASSERT(csr.indices.size() <= static_cast<size_t>(std::numeric_limits<int32_t>::max()),
                 "CSR export exceeds int32 indices");
    csr.indptr.push_back(static_cast<int32_t>(csr.indices.size()));
    csr.last_page_len.push_back(s.length == 0 ? 0 : (s.length - 1) % page_size_ + 1);
  }
  return csr;
}

int64_t KvCache::slot_at(int32_t seq, int32_t pos) const {
  const Sequence& s = find(seq);
  if (pos < 0 || pos >= s.length) {
    throw_invalid("position " + std::to_string(pos) + " out of range for sequence " + std::to_string(seq) +
                  " of length " + std::to_string(s.length));
  }
  return slot_of(s.pages[pos / page_size_], pos % page_size_, page_size_);
}

// ---- prefix caching ------------------------------------------------------------------------------------------

void KvCache::set_prefix_caching(bool on) {
  prefix_on_ = on;
  if (on && cached_.empty()) cached_.resize(size_t(pool_.capacity()));
}

uint64_t KvCache::chain_key(uint64_t parent, std::span<const int32_t> page_tokens, uint64_t salt) const {
  // FNV-1a over (parent, salt, tokens), then a final mix; 0 is reserved for "no key".
  uint64_t h = 1469598103934665603ull ^ hash_seed_;  // a per-cache random seed: keys cannot be precomputed
  auto mix = [&h](uint64_t v) {
    for (int b = 0; b < 8; ++b) {
      h ^= (v >> (8 * b)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  mix(parent);
  mix(salt);
  for (int32_t t : page_tokens) mix(uint64_t(uint32_t(t)));
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h == 0 ? 1 : h;
}

void KvCache::forget_page(int32_t page) {
  CachedPage& c = cached_[size_t(page)];
  if (c.key == 0) return;
  auto it = by_key_.find(c.key);
  if (it != by_key_.end() && it->second == page) by_key_.erase(it);
  c = CachedPage{};
}

int32_t KvCache::allocate_page() {
  bool evicted = false;
  const int32_t page = pool_.allocate(&evicted);
  if (evicted) {
    forget_page(page);
    ++stats_.evictions;
  }
  return page;
}

std::vector<int32_t> KvCache::prefix_pages(std::span<const int32_t> tokens, uint64_t salt) const {
  std::vector<int32_t> pages;
  if (!prefix_on_ || tokens.empty()) return pages;
  const size_t max_pages = (tokens.size() - 1) / size_t(page_size_);
  int32_t available = pages_available();
  uint64_t parent = 0;
  for (size_t i = 0; i < max_pages; ++i) {
    const auto page_tokens = tokens.subspan(i * size_t(page_size_), size_t(page_size_));
    const uint64_t key = chain_key(parent, page_tokens, salt);
    auto it = by_key_.find(key);
    if (it == by_key_.end()) break;
    const CachedPage& c = cached_[size_t(it->second)];
    if (c.parent != parent || c.salt != salt ||
        !std::equal(c.tokens.begin(), c.tokens.end(), page_tokens.begin(), page_tokens.end())) {
      break;  // a hash collision: a miss
    }
    // An idle cached page counts as free: taking it must not break another request's reservation.
    if (pool_.ref_count(it->second) == 0 && available-- < 1) break;
    pages.push_back(it->second);
    parent = key;
  }
  return pages;
}

KvCache::PrefixMatch KvCache::match_prefix(std::span<const int32_t> tokens, uint64_t salt) const {
  PrefixMatch m;
  for (int32_t page : prefix_pages(tokens, salt)) {
    ++m.pages;
    m.idle_pages += pool_.ref_count(page) == 0 ? 1 : 0;
  }
  return m;
}

std::pair<int32_t, int32_t> KvCache::create_sequence_from_prefix(std::span<const int32_t> tokens, uint64_t salt) {
  std::vector<int32_t> pages = prefix_pages(tokens, salt);
  const int32_t id = create_sequence();
  if (!prefix_on_ || tokens.empty()) return {id, 0};
  Sequence& s = seqs_.at(id);
  for (int32_t page : pages) pool_.retain(page);
  s.pages = std::move(pages);
  s.length = int32_t(s.pages.size()) * page_size_;
  stats_.query_tokens += int64_t(tokens.size());
  stats_.hit_tokens += s.length;
  return {id, s.length};
}

void KvCache::register_prefix(int32_t seq, std::span<const int32_t> tokens, uint64_t salt) {
  if (!prefix_on_) return;
  const Sequence& s = find(seq);
  if (int64_t(tokens.size()) > s.length) throw_invalid("register_prefix: more tokens than the sequence holds");
  const size_t full = tokens.size() / size_t(page_size_);
  uint64_t parent = 0;
  for (size_t i = 0; i < full; ++i) {
    const int32_t page = s.pages[i];
    const auto page_tokens = tokens.subspan(i * size_t(page_size_), size_t(page_size_));
    const uint64_t key = chain_key(parent, page_tokens, salt);
    CachedPage& c = cached_[size_t(page)];
    if (c.key == 0 && by_key_.find(key) == by_key_.end()) {  // another page may already hold this prefix
      c.key = key;
      c.parent = parent;
      c.salt = salt;
      c.tokens.assign(page_tokens.begin(), page_tokens.end());
      by_key_.emplace(key, page);
      pool_.mark_cached(page, true);
    }
    parent = key;
  }
}

KvCache::PrefixStats KvCache::prefix_stats() const {
  PrefixStats p = stats_;
  p.cached_pages = int32_t(by_key_.size());
  return p;
}

}  // namespace lcllm
