// Prefix caching in KvCache (E11 item 2): full pages keyed by a chained hash of their tokens and a salt; registered
// pages outlive their sequences (LRU) until the pool needs them; hits, misses, salts, evictions and truncation.
#include <catch2/catch.hpp>

#include <numeric>
#include <vector>

#include "kv/kv_cache.h"

using lcllm::KvCache;
using lcllm::KvCacheConfig;
using Tokens = std::vector<int32_t>;

namespace {

std::vector<int32_t> iota(int32_t n, int32_t from = 0) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), from);
  return v;
}

// A sequence that computed `tokens` and registered them, then ended (its pages become cached and idle).
void compute_and_cache(KvCache& kv, const std::vector<int32_t>& tokens, uint64_t salt) {
  const auto [seq, cached] = kv.create_sequence_from_prefix(tokens, salt);
  kv.append_tokens(seq, int32_t(tokens.size()) - cached);
  kv.register_prefix(seq, tokens, salt);
  kv.free_sequence(seq);
}

}  // namespace

TEST_CASE("a later sequence starts from the cached full pages of its prefix, one token left to compute", "[kv][prefix]") {
  KvCache kv(KvCacheConfig{4, 16});
  kv.set_prefix_caching(true);
  const std::vector<int32_t> a = iota(10);  // pages [0..3] [4..7] full, [8, 9] partial
  compute_and_cache(kv, a, 7);
  CHECK(kv.prefix_stats().cached_pages == 2);
  CHECK(kv.pages_free() == 16);  // cached idle pages count as free: the pool can hand them out
  // Same 8-token prefix, different tail: both full pages hit.
  std::vector<int32_t> b = iota(8);
  b.push_back(99);
  const auto [s, cached] = kv.create_sequence_from_prefix(b, 7);
  CHECK(cached == 8);
  CHECK(kv.length(s) == 8);
  CHECK(kv.block_table(s) == std::vector<int32_t>{0, 1});
  // Exactly 8 tokens: only one page may be reused, so that the 8th token is computed (its logits are the output).
  const auto [s2, cached2] = kv.create_sequence_from_prefix(iota(8), 7);
  CHECK(cached2 == 4);
  // Another salt (another attention plan): no hit. A different first page: no hit for the second either.
  CHECK(kv.create_sequence_from_prefix(b, 8).second == 0);
  std::vector<int32_t> c = b;
  c[0] = 42;
  CHECK(kv.create_sequence_from_prefix(c, 7).second == 0);
  const auto st = kv.prefix_stats();
  CHECK(st.hit_tokens == 8 + 4);
  CHECK(st.query_tokens == 10 + 9 + 8 + 9 + 9);
}

TEST_CASE("idle cached pages are evicted least recently released first, and forgotten", "[kv][prefix]") {
  KvCache kv(KvCacheConfig{2, 6});
  kv.set_prefix_caching(true);
  compute_and_cache(kv, Tokens{1, 2, 3, 4, 5}, 0);   // pages 0, 1 cached; 2 free again
  compute_and_cache(kv, Tokens{9, 8, 7, 6, 5}, 0);   // reuses free pages first: cached pages stay
  CHECK(kv.prefix_stats().cached_pages == 4);
  CHECK(kv.prefix_stats().evictions == 0);
  // A 6-page sequence needs every page: the 4 cached ones are evicted, the oldest released first.
  const int32_t big = kv.create_sequence();
  kv.append_tokens(big, 12);
  CHECK(kv.prefix_stats().evictions == 4);
  CHECK(kv.prefix_stats().cached_pages == 0);
  kv.free_sequence(big);
  CHECK(kv.create_sequence_from_prefix(Tokens{1, 2, 3, 4, 5}, 0).second == 0);  // forgotten: recomputed
}

TEST_CASE("a cached page held by a live sequence is never evicted; full means full", "[kv][prefix]") {
  KvCache kv(KvCacheConfig{2, 3});
  kv.set_prefix_caching(true);
  const auto [a, ca] = kv.create_sequence_from_prefix(Tokens{1, 2, 3}, 0);
  kv.append_tokens(a, 3);
  kv.register_prefix(a, std::vector<int32_t>{1, 2, 3}, 0);  // page 0 registered, still held by a
  const auto [b, cb] = kv.create_sequence_from_prefix(Tokens{1, 2, 5}, 0);
  CHECK(cb == 2);  // shares page 0 with the live sequence
  kv.append_tokens(b, 1);
  CHECK_THROWS(kv.append_tokens(b, 4));  // no idle cached page to take: the held one stays
  CHECK(kv.block_table(b).at(0) == kv.block_table(a).at(0));
}

TEST_CASE("truncating into a cached page takes it out of the cache before it is written again", "[kv][prefix]") {
  KvCache kv(KvCacheConfig{4, 8});
  kv.set_prefix_caching(true);
  const std::vector<int32_t> t = iota(9);
  const auto [s, c0] = kv.create_sequence_from_prefix(t, 0);
  kv.append_tokens(s, 9);
  kv.register_prefix(s, t, 0);
  CHECK(kv.prefix_stats().cached_pages == 2);
  kv.truncate(s, 6);  // page 1 becomes the partial last page
  CHECK(kv.prefix_stats().cached_pages == 1);
  kv.append_tokens(s, 2);  // writes into page 1: it must not serve [4..7] any more
  kv.free_sequence(s);
  CHECK(kv.create_sequence_from_prefix(t, 0).second == 4);
}

TEST_CASE("with prefix caching off nothing is kept", "[kv][prefix]") {
  KvCache kv(KvCacheConfig{2, 4});
  compute_and_cache(kv, Tokens{1, 2, 3, 4, 5}, 0);
  CHECK(kv.create_sequence_from_prefix(Tokens{1, 2, 3, 4, 5}, 0).second == 0);
  CHECK(kv.prefix_stats().cached_pages == 0);
}

TEST_CASE("a page registered while another holder has it as its partial last page is never written in place",
          "[kv][prefix]") {
  // The review's sequence: A (8 tokens) forks B, B truncates into page 1, A registers page 1, A ends, B appends.
  KvCache kv(KvCacheConfig{4, 8});
  kv.set_prefix_caching(true);
  const Tokens t = iota(8);
  const auto [a, ca] = kv.create_sequence_from_prefix(t, 0);
  kv.append_tokens(a, 8);
  const int32_t b = kv.fork_sequence(a);
  kv.truncate(b, 6);                // page 1 is B's shared partial page
  kv.register_prefix(a, t, 0);      // ... and now registered
  kv.free_sequence(a);              // B holds it alone
  const lcllm::AppendPlan plan = kv.append_tokens(b, 2);  // must not write into the registered page 1
  kv.free_sequence(b);
  // Either B moved to a copy or page 1 left the cache: a lookup of t never serves B's positions 6-7.
  const auto [c, cached] = kv.create_sequence_from_prefix(Tokens{0, 1, 2, 3, 4, 5, 6, 7, 99}, 0);
  CHECK((cached == 4 || plan.copies.size() == 1));
}
