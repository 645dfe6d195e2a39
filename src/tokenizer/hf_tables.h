// Lookup tables of the tokenizer.json BPE: the merge table and the added-token trie. Internal to src/tokenizer.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace lcllm::hf {

// (left id, right id) -> (rank, merged id), open addressing: the merge loop's hot lookup.
class MergeTable {
 public:
  struct Slot { uint64_t key; int32_t rank; int32_t new_id; };
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void reserve(std::size_t n);
  void insert_or_assign(uint64_t k, int32_t rank, int32_t new_id);  // a later duplicate wins, as in HF
  const Slot* find(int32_t a, int32_t b) const {
    if (slots_.empty()) return nullptr;
    const uint64_t k = key(a, b);
    for (std::size_t i = hash(k);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == k) return &s;
      if (s.key == kEmpty) return nullptr;
    }
  }
  std::size_t size() const { return count_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  std::size_t hash(uint64_t k) const { return static_cast<std::size_t>((k * 0x9E3779B97F4A7C15ULL) >> 20) & mask_; }
  std::vector<Slot> slots_;
  std::size_t mask_ = 0, count_ = 0;
};

// Leftmost-longest matcher over the added tokens (what HF does with aho-corasick).
class AddedTokenTrie {
 public:
  void insert(std::string_view s, int32_t token_index);
  bool empty() const { return nodes_.size() <= 1; }
  // Longest token matching at text[pos...]: returns its index and sets len, or -1.
  int32_t match_at(std::string_view text, std::size_t pos, std::size_t& len) const;
  bool can_start(unsigned char c) const { return first_[c]; }

 private:
  struct Node {
    int32_t token = -1;
    std::vector<std::pair<unsigned char, int32_t>> children;  // sorted by byte
  };
  std::vector<Node> nodes_{Node{}};
  bool first_[256] = {};
};

}  // namespace lcllm::hf
