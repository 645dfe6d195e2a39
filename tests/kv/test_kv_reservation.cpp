// Page reservations in KvCache (E11 item 1): the scheduler's admission uses them instead of a second copy of the
// pool's state. A reservation promises pages; its sequences draw from it first; nobody else may take them; forks
// share their parent's; the last holder's free releases the rest; idle cached pages count as free.
#include <catch2/catch.hpp>

#include <numeric>
#include <vector>

#include "kv/kv_cache.h"
#include "lcllm/error.h"

using lcllm::Error;
using lcllm::KvCache;
using lcllm::KvCacheConfig;

TEST_CASE("a reservation holds pages for its sequence against everyone else", "[kv][reservation]") {
  KvCache kv(KvCacheConfig{4, 10});
  const int32_t a = kv.create_sequence(), b = kv.create_sequence();
  REQUIRE(kv.reserve(a, 6));
  CHECK(kv.pages_reserved() == 6);
  CHECK(kv.pages_available() == 4);
  CHECK_FALSE(kv.reserve(b, 5));  // only 4 left to promise; nothing changed
  CHECK(kv.pages_reserved() == 6);
  CHECK_THROWS_AS(kv.reserve(b, -1), Error);
  // b may take the 4 unpromised pages but not a fifth.
  kv.append_tokens(b, 16);
  CHECK(kv.pages_available() == 0);
  CHECK_THROWS_WITH(kv.append_tokens(b, 1), Catch::Contains("not promised to other requests"));
  CHECK(kv.length(b) == 16);  // the failed append changed nothing
  // a draws from its own reservation.
  kv.append_tokens(a, 24);
  CHECK(kv.pages_reserved() == 0);
  CHECK(kv.pages_free() == 0);
  kv.free_sequence(b);
  CHECK(kv.pages_available() == 4);
}

TEST_CASE("forks share their parent's reservation; the last holder's free releases it", "[kv][reservation]") {
  KvCache kv(KvCacheConfig{4, 16});
  const int32_t a = kv.create_sequence();
  kv.append_tokens(a, 6);  // 2 pages, the second partial
  REQUIRE(kv.reserve(a, 5));
  const int32_t f = kv.fork_sequence(a);
  CHECK(kv.pages_reserved() == 5);
  // The fork's copy-on-write copy of the shared partial page and its growth come from the shared reservation.
  kv.append_tokens(f, 3);  // copy page 2, fill it to 8, one more page for the 9th token
  CHECK(kv.pages_reserved() == 3);
  kv.free_sequence(a);
  CHECK(kv.pages_reserved() == 3);  // the fork still holds it
  kv.free_sequence(f);
  CHECK(kv.pages_reserved() == 0);
  CHECK(kv.pages_free() == 16);
}

TEST_CASE("prefix hits on idle cached pages never break a reservation", "[kv][reservation]") {
  KvCache kv(KvCacheConfig{4, 4});
  kv.set_prefix_caching(true);
  std::vector<int32_t> tokens(9);
  std::iota(tokens.begin(), tokens.end(), 100);
  {
    const auto [s, cached] = kv.create_sequence_from_prefix(tokens, 1);
    kv.append_tokens(s, 9);
    kv.register_prefix(s, tokens, 1);
    kv.free_sequence(s);  // 2 full pages cached, idle (free)
  }
  CHECK(kv.pages_free() == 4);
  const auto m = kv.match_prefix(tokens, 1);
  CHECK(m.pages == 2);
  CHECK(m.idle_pages == 2);
  CHECK(kv.prefix_stats().query_tokens == 9);  // match_prefix counts nothing
  // Another request reserves 3 of the 4 free pages: only one idle cached page may still be taken.
  const int32_t other = kv.create_sequence();
  REQUIRE(kv.reserve(other, 3));
  CHECK(kv.match_prefix(tokens, 1).pages == 1);
  const auto [s, cached] = kv.create_sequence_from_prefix(tokens, 1);
  CHECK(cached == 4);
  CHECK(kv.pages_available() == 0);
  kv.append_tokens(other, 12);  // its 3 promised pages are there
  kv.free_sequence(s);
  kv.free_sequence(other);
}
