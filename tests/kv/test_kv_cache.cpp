// Paged KV cache bookkeeping: page pool, block tables, copy-on-write, atomic appends, CSR export.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kv/kv_cache.h"
#include "kv/page_pool.h"
#include "lcllm/error.h"

using lcllm::AppendPlan;
using lcllm::CsrPages;
using lcllm::Error;
using lcllm::ErrorKind;
using lcllm::KvCache;
using lcllm::KvCacheConfig;
using lcllm::PagePool;

namespace {

KvCache make_cache(int32_t page_size, int32_t n_pages) {
  KvCacheConfig config;
  config.page_size = page_size;
  config.n_pages = n_pages;
  return KvCache(config);
}

template <typename F>
Error catch_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  FAIL("expected lcllm::Error");
  return Error(ErrorKind::ERROR_KIND_IO, "unreachable");
}

std::vector<int64_t> slots_of_positions(const KvCache& cache, int32_t seq) {
  std::vector<int64_t> slots;
  for (int32_t p = 0; p < cache.length(seq); ++p) slots.push_back(cache.slot_at(seq, p));
  return slots;
}

}  // namespace

TEST_CASE("page pool hands out pages LIFO and counts references", "[kv][pool]") {
  PagePool pool(4);
  CHECK(pool.capacity() == 4);
  CHECK(pool.free_count() == 4);
  CHECK(pool.allocate() == 0);
  CHECK(pool.allocate() == 1);
  CHECK(pool.ref_count(0) == 1);
  pool.retain(0);
  CHECK(pool.ref_count(0) == 2);
  pool.release(0);
  CHECK(pool.ref_count(0) == 1);
  CHECK(pool.free_count() == 2);
  pool.release(0);
  CHECK(pool.ref_count(0) == 0);
  CHECK(pool.free_count() == 3);
  CHECK(pool.allocate() == 0);  // released last, handed out first
}

TEST_CASE("page pool exhaustion throws out-of-memory and leaves the pool usable", "[kv][pool]") {
  PagePool pool(2);
  pool.allocate();
  pool.allocate();
  const Error e = catch_error([&] { pool.allocate(); });
  CHECK(e.kind() == ErrorKind::ERROR_KIND_OUT_OF_MEMORY);
  CHECK(std::string(e.what()).find("KV cache full: 2 pages in use of 2") != std::string::npos);
  CHECK(pool.free_count() == 0);
  pool.release(1);
  CHECK(pool.allocate() == 1);
}

TEST_CASE("bad cache configuration is an invalid-argument error", "[kv]") {
  CHECK(catch_error([] { make_cache(0, 4); }).kind() == ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
  CHECK(catch_error([] { make_cache(16, 0); }).kind() == ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
  CHECK(catch_error([] { PagePool pool(-1); }).kind() == ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
}

TEST_CASE("append across page boundaries allocates pages only when a page fills", "[kv]") {
  KvCache cache = make_cache(4, 8);
  const int32_t s = cache.create_sequence();
  CHECK(cache.length(s) == 0);
  CHECK(cache.block_table(s).empty());

  AppendPlan a = cache.append_tokens(s, 3);
  CHECK(a.first_position == 0);
  CHECK(a.copies.empty());
  CHECK(a.slots == std::vector<int64_t>{0, 1, 2});
  CHECK(cache.block_table(s) == std::vector<int32_t>{0});
  CHECK(cache.pages_free() == 7);

  AppendPlan b = cache.append_tokens(s, 6);  // fills page 0, all of page 1, one token of page 2
  CHECK(b.first_position == 3);
  CHECK(b.slots == std::vector<int64_t>{3, 4, 5, 6, 7, 8});
  CHECK(cache.block_table(s) == std::vector<int32_t>{0, 1, 2});
  CHECK(cache.length(s) == 9);
  CHECK(cache.pages_free() == 5);

  AppendPlan c = cache.append_tokens(s, 0);
  CHECK(c.slots.empty());
  CHECK(c.first_position == 9);
  CHECK(cache.pages_free() == 5);

  CHECK(cache.slot_at(s, 8) == 8);
  CHECK(KvCache::slot_of(2, 0, 4) == 8);
  CHECK(catch_error([&] { cache.slot_at(s, 9); }).kind() == ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
  CHECK(catch_error([&] { cache.append_tokens(s, -1); }).kind() == ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
}

TEST_CASE("slots are contiguous within a page and jump only at page boundaries", "[kv]") {
  KvCache cache = make_cache(4, 8);
  const int32_t a = cache.create_sequence();
  const int32_t b = cache.create_sequence();
  // Interleave so the two sequences' pages alternate in the pool.
  for (int i = 0; i < 4; ++i) {
    cache.append_tokens(a, 3);
    cache.append_tokens(b, 2);
  }
  for (int32_t seq : {a, b}) {
    const std::vector<int64_t> slots = slots_of_positions(cache, seq);
    const std::vector<int32_t>& table = cache.block_table(seq);
    for (int32_t p = 0; p < cache.length(seq); ++p) {
      CHECK(slots[p] == static_cast<int64_t>(table[p / 4]) * 4 + p % 4);
      if (p % 4 != 0) CHECK(slots[p] == slots[p - 1] + 1);
    }
  }
}

TEST_CASE("CSR export matches the block tables for several sequences", "[kv][csr]") {
  KvCache cache = make_cache(4, 16);
  const int32_t s0 = cache.create_sequence();
  const int32_t s1 = cache.create_sequence();
  const int32_t s2 = cache.create_sequence();
  const int32_t s3 = cache.create_sequence();
  cache.append_tokens(s0, 5);  // pages 0,1   last len 1
  cache.append_tokens(s1, 4);  // page  2     last len 4 (full)
  cache.append_tokens(s0, 3);  // page  1 fills to 4 (8 tokens, no new page)
  cache.append_tokens(s2, 9);  // pages 3,4,5 last len 1
  // s3 stays empty
  CHECK(cache.block_table(s0) == std::vector<int32_t>{0, 1});

  const std::vector<int32_t> order{s2, s0, s3, s1};
  const CsrPages csr = cache.export_csr(order);
  CHECK(csr.indptr == std::vector<int32_t>{0, 3, 5, 5, 6});
  CHECK(csr.indices == std::vector<int32_t>{3, 4, 5, 0, 1, 2});
  CHECK(csr.last_page_len == std::vector<int32_t>{1, 4, 0, 4});

  const CsrPages none = cache.export_csr({});
  CHECK(none.indptr == std::vector<int32_t>{0});
  CHECK(none.indices.empty());
  CHECK(none.last_page_len.empty());

  const std::vector<int32_t> bad{s0, 12345};
  CHECK(catch_error([&] { cache.export_csr(bad); }).kind() == ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
}

TEST_CASE("exhaustion gives a clear error and changes nothing", "[kv]") {
  KvCache cache = make_cache(4, 4);
  const int32_t a = cache.create_sequence();
  const int32_t b = cache.create_sequence();
  cache.append_tokens(a, 6);  // pages 0,1
  cache.append_tokens(b, 1);  // page 2
  REQUIRE(cache.pages_free() == 1);
  const std::vector<int32_t> table_a = cache.block_table(a);
  const std::vector<int32_t> table_b = cache.block_table(b);

  // b has 3 free slots in its page + 1 free page = 7 tokens; 8 needs 2 pages.
  CHECK(cache.pages_needed(b, 8) == 2);
  const Error e = catch_error([&] { cache.append_tokens(b, 8); });
  CHECK(e.kind() == ErrorKind::ERROR_KIND_OUT_OF_MEMORY);
  const std::string msg = e.what();
  CHECK(msg.find("KV cache full") != std::string::npos);
  CHECK(msg.find("needs 2 pages") != std::string::npos);
  CHECK(msg.find("only 1 of 4 are free") != std::string::npos);

  CHECK(cache.pages_free() == 1);
  CHECK(cache.length(a) == 6);
  CHECK(cache.length(b) == 1);
  CHECK(cache.block_table(a) == table_a);
  CHECK(cache.block_table(b) == table_b);
  for (int32_t page = 0; page < 3; ++page) CHECK(cache.pool().ref_count(page) == 1);
  CHECK(cache.pool().ref_count(3) == 0);

  // What fits still fits; after freeing, the big append works.
  CHECK(cache.append_tokens(b, 7).slots.size() == 7u);
  CHECK(cache.pages_free() == 0);
  CHECK_THROWS_AS(cache.append_tokens(a, 3), Error);
  cache.free_sequence(a);
  CHECK(cache.pages_free() == 2);
  CHECK(cache.append_tokens(b, 8).slots.size() == 8u);
  CHECK(cache.length(b) == 16);
}

TEST_CASE("copy-on-write page is counted when checking for exhaustion", "[kv][fork]") {
  KvCache cache = make_cache(4, 2);
  const int32_t parent = cache.create_sequence();
  cache.append_tokens(parent, 6);  // pages 0,1 (1 partial, 2 tokens)
  const int32_t child = cache.fork_sequence(parent);
  REQUIRE(cache.pages_free() == 0);
  CHECK(cache.pages_needed(child, 1) == 1);
  const Error e = catch_error([&] { cache.append_tokens(child, 1); });
  CHECK(e.kind() == ErrorKind::ERROR_KIND_OUT_OF_MEMORY);
  CHECK(cache.block_table(child) == cache.block_table(parent));
  CHECK(cache.pool().ref_count(1) == 2);
  CHECK(cache.length(child) == 6);
}

TEST_CASE("fork shares pages; appending into a shared partial page copies it once", "[kv][fork]") {
  KvCache cache = make_cache(4, 8);
  const int32_t parent = cache.create_sequence();
  cache.append_tokens(parent, 6);  // pages 0, 1 (page 1 holds 2 tokens)
  const std::vector<int64_t> parent_slots = slots_of_positions(cache, parent);

  const int32_t child = cache.fork_sequence(parent);
  CHECK(child != parent);
  CHECK(cache.length(child) == 6);
  CHECK(cache.block_table(child) == cache.block_table(parent));
  CHECK(cache.pool().ref_count(0) == 2);
  CHECK(cache.pool().ref_count(1) == 2);
  CHECK(cache.pages_free() == 6);

  const AppendPlan plan = cache.append_tokens(child, 1);
  REQUIRE(plan.copies.size() == 1u);
  const int32_t fresh = plan.copies[0].dst_page;
  CHECK(plan.copies[0].src_page == 1);
  CHECK(fresh != 0);
  CHECK(fresh != 1);
  CHECK(plan.first_position == 6);
  CHECK(plan.slots == std::vector<int64_t>{static_cast<int64_t>(fresh) * 4 + 2});
  CHECK(cache.block_table(child) == std::vector<int32_t>{0, fresh});
  CHECK(cache.pool().ref_count(0) == 2);  // full page stays shared
  CHECK(cache.pool().ref_count(1) == 1);  // now the parent's alone
  CHECK(cache.pool().ref_count(fresh) == 1);
  CHECK(cache.pages_free() == 5);

  // Parent untouched; its next append writes in place.
  CHECK(cache.length(parent) == 6);
  CHECK(cache.block_table(parent) == std::vector<int32_t>{0, 1});
  CHECK(slots_of_positions(cache, parent) == parent_slots);
  const AppendPlan p2 = cache.append_tokens(parent, 1);
  CHECK(p2.copies.empty());
  CHECK(p2.slots == std::vector<int64_t>{6});

  // A second append to the child: its page is private now, no more copies.
  CHECK(cache.append_tokens(child, 1).copies.empty());
}

TEST_CASE("appending to a fork whose last page is full allocates a page without copying", "[kv][fork]") {
  KvCache cache = make_cache(4, 8);
  const int32_t parent = cache.create_sequence();
  cache.append_tokens(parent, 8);  // pages 0, 1, both full
  const int32_t child = cache.fork_sequence(parent);
  const AppendPlan plan = cache.append_tokens(child, 1);
  CHECK(plan.copies.empty());
  CHECK(plan.slots == std::vector<int64_t>{8});  // page 2, offset 0
  CHECK(cache.block_table(child) == std::vector<int32_t>{0, 1, 2});
  CHECK(cache.block_table(parent) == std::vector<int32_t>{0, 1});
  CHECK(cache.pool().ref_count(1) == 2);
  CHECK(cache.pool().ref_count(2) == 1);
}

TEST_CASE("freeing parent then child returns every page", "[kv][fork]") {
  KvCache cache = make_cache(4, 8);
  const int32_t parent = cache.create_sequence();
  cache.append_tokens(parent, 7);
  const int32_t child = cache.fork_sequence(parent);
  cache.append_tokens(child, 5);
  cache.append_tokens(parent, 2);
  cache.free_sequence(parent);
  CHECK(cache.pool().ref_count(0) == 1);  // still the child's
  CHECK_FALSE(cache.has_sequence(parent));
  CHECK(catch_error([&] { cache.length(parent); }).kind() == ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
  CHECK(catch_error([&] { cache.free_sequence(parent); }).kind() == ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
  cache.free_sequence(child);
  CHECK(cache.pages_free() == 8);
  for (int32_t page = 0; page < 8; ++page) CHECK(cache.pool().ref_count(page) == 0);
  CHECK(cache.sequences().empty());
}

TEST_CASE("truncate releases pages no longer needed", "[kv]") {
  KvCache cache = make_cache(4, 8);
  const int32_t s = cache.create_sequence();
  cache.append_tokens(s, 10);  // pages 0,1,2
  cache.truncate(s, 10);
  CHECK(cache.pages_free() == 5);
  cache.truncate(s, 8);
  CHECK(cache.block_table(s) == std::vector<int32_t>{0, 1});
  CHECK(cache.pages_free() == 6);
  cache.truncate(s, 5);
  CHECK(cache.block_table(s) == std::vector<int32_t>{0, 1});
  CHECK(cache.length(s) == 5);
  const AppendPlan plan = cache.append_tokens(s, 1);
  CHECK(plan.slots == std::vector<int64_t>{5});
  CHECK(plan.first_position == 5);
  cache.truncate(s, 0);
  CHECK(cache.block_table(s).empty());
  CHECK(cache.pages_free() == 8);
  CHECK(catch_error([&] { cache.truncate(s, 1); }).kind() == ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
  CHECK(catch_error([&] { cache.truncate(s, -1); }).kind() == ErrorKind::ERROR_KIND_INVALID_ARGUMENT);
}

TEST_CASE("truncating a fork into a shared page makes its next append copy", "[kv][fork]") {
  KvCache cache = make_cache(4, 8);
  const int32_t parent = cache.create_sequence();
  cache.append_tokens(parent, 8);
  const int32_t child = cache.fork_sequence(parent);
  cache.truncate(child, 6);  // page 1 is shared and now partial for the child
  CHECK(cache.pool().ref_count(1) == 2);
  const AppendPlan plan = cache.append_tokens(child, 1);
  REQUIRE(plan.copies.size() == 1u);
  CHECK(plan.copies[0].src_page == 1);
  CHECK(cache.block_table(parent) == std::vector<int32_t>{0, 1});
  CHECK(cache.length(parent) == 8);
}

// Random operations against a model that also simulates the backend's storage: every token written gets a unique
// tag; copies are performed as the plan says; then every position of every sequence must read back its own tag.
TEST_CASE("randomized stress keeps ref counts, free list and token contents consistent", "[kv][stress]") {
  constexpr int32_t kPageSize = 4;
  constexpr int32_t kPages = 64;
  KvCache cache = make_cache(kPageSize, kPages);
  std::vector<int64_t> storage(static_cast<size_t>(kPages) * kPageSize, -1);  // [n_pages * page_size] token tags
  std::map<int32_t, std::vector<int64_t>> model;                              // seq -> tags by position
  std::mt19937 rng(12345);
  auto pick = [&](int32_t lo, int32_t hi) { return std::uniform_int_distribution<int32_t>(lo, hi)(rng); };
  auto any_seq = [&] {
    auto it = model.begin();
    std::advance(it, pick(0, static_cast<int32_t>(model.size()) - 1));
    return it->first;
  };
  int64_t next_tag = 0;
  int ooms = 0;
  int copies = 0;

  auto check_invariants = [&] {
    std::vector<int32_t> refs(kPages, 0);
    REQUIRE(cache.sequences().size() == model.size());
    for (const auto& [seq, tags] : model) {
      REQUIRE(cache.length(seq) == static_cast<int32_t>(tags.size()));
      const std::vector<int32_t>& table = cache.block_table(seq);
      REQUIRE(table.size() == (tags.size() + kPageSize - 1) / kPageSize);
      for (int32_t page : table) ++refs[page];
      for (int32_t p = 0; p < static_cast<int32_t>(tags.size()); ++p) REQUIRE(storage[cache.slot_at(seq, p)] == tags[p]);
    }
    int32_t referenced = 0;
    for (int32_t page = 0; page < kPages; ++page) {
      REQUIRE(cache.pool().ref_count(page) == refs[page]);
      if (refs[page] > 0) ++referenced;
    }
    REQUIRE(referenced == cache.n_pages() - cache.pages_free());
  };

  for (int op = 0; op < 6000; ++op) {
    const int32_t kind = model.empty() ? 0 : pick(0, 9);
    if (kind == 0 && model.size() < 40) {
      model[cache.create_sequence()] = {};
    } else if (kind == 1) {
      const int32_t seq = any_seq();
      cache.free_sequence(seq);
      model.erase(seq);
    } else if (kind == 2 && model.size() < 40) {
      const int32_t seq = any_seq();
      const int32_t child = cache.fork_sequence(seq);
      REQUIRE(model.count(child) == 0);
      model[child] = model[seq];
    } else if (kind == 3) {
      const int32_t seq = any_seq();
      const int32_t new_len = pick(0, cache.length(seq));
      cache.truncate(seq, new_len);
      model[seq].resize(static_cast<size_t>(new_len));
    } else {
      const int32_t seq = any_seq();
      const int32_t n = pick(0, 3 * kPageSize);
      const int32_t free_before = cache.pages_free();
      const std::vector<int32_t> table_before = cache.block_table(seq);
      const int32_t needed = cache.pages_needed(seq, n);
      try {
        const AppendPlan plan = cache.append_tokens(seq, n);
        REQUIRE(needed <= free_before);
        REQUIRE(cache.pages_free() == free_before - needed);
        REQUIRE(plan.first_position == static_cast<int32_t>(model[seq].size()));
        REQUIRE(plan.slots.size() == static_cast<size_t>(n));
        for (const auto& c : plan.copies) {
          std::copy_n(storage.begin() + static_cast<int64_t>(c.src_page) * kPageSize, kPageSize,
                      storage.begin() + static_cast<int64_t>(c.dst_page) * kPageSize);
          ++copies;
        }
        for (int64_t slot : plan.slots) {
          storage[slot] = next_tag;
          model[seq].push_back(next_tag++);
        }
      } catch (const Error& e) {
        REQUIRE(e.kind() == ErrorKind::ERROR_KIND_OUT_OF_MEMORY);
        REQUIRE(needed > free_before);
        REQUIRE(cache.pages_free() == free_before);
        REQUIRE(cache.block_table(seq) == table_before);
        ++ooms;
      }
    }
    check_invariants();
  }
  // The run must have exercised the interesting paths.
  CHECK(ooms > 10);
  CHECK(copies > 10);

  // Drain the free list through a fresh sequence: every page it receives must be referenced by no other sequence.
  std::vector<int32_t> referenced;
  for (const auto& entry : model) {
    const auto& table = cache.block_table(entry.first);
    referenced.insert(referenced.end(), table.begin(), table.end());
  }
  const int32_t drain = cache.create_sequence();
  const int32_t n_free = cache.pages_free();
  cache.append_tokens(drain, n_free * kPageSize);
  CHECK(cache.pages_free() == 0);
  for (int32_t page : cache.block_table(drain)) {
    CHECK(std::find(referenced.begin(), referenced.end(), page) == referenced.end());
  }
  cache.free_sequence(drain);

  for (const auto& entry : model) cache.free_sequence(entry.first);
  CHECK(cache.pages_free() == kPages);
}
