// BPE word tokenization with the merge order of HF `tokenizers` (models/bpe/word.rs): a priority queue of
// candidate merges keyed by (rank, position), stale entries skipped, and a cache for repeated words.
#include <queue>

#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/unicode_util.h"

namespace lcllm::hf {

namespace {
constexpr std::size_t kCacheMaxWordBytes = 256;
constexpr std::size_t kCacheCapacity = 100000;

struct Symbol {
  int32_t id;
  int32_t prev, next;  // indices into the symbol array, -1 at the ends
  int32_t len;         // byte length; 0 = merged away
};
struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
};
struct CandidateOrder {  // lowest rank first, then leftmost position
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};
inline uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}
}  // namespace

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges) {
    auto it = vocab.find(word);
    if (it != vocab.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() < kCacheMaxWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const std::size_t mark = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= kCacheCapacity) cache_.clear();
    cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + static_cast<std::ptrdiff_t>(mark), out.end()));
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  std::vector<Symbol> sym;
  sym.reserve(word.size());
  auto add = [&](int32_t id, std::size_t len) {
    const auto n = static_cast<int32_t>(sym.size());
    sym.push_back(Symbol{id, n - 1, -1, static_cast<int32_t>(len)});
    if (n > 0) sym[static_cast<std::size_t>(n - 1)].next = n;
  };
  int32_t pending_unk_len = -1;  // fused unknown run not yet added
  std::string tmp;
  for (std::size_t i = 0; i < word.size();) {
    std::size_t j = i;
    utf8_next(word, j);
    const bool first = i == 0, last = j == word.size();
    std::string_view s = word.substr(i, j - i);
    if ((!first && !continuing_subword_prefix.empty()) || (last && !end_of_word_suffix.empty())) {
      tmp.assign(first ? std::string() : continuing_subword_prefix);
      tmp.append(s);
      if (last) tmp.append(end_of_word_suffix);
      s = tmp;
    }
    auto it = vocab.find(s);
    if (it != vocab.end()) {
      if (pending_unk_len >= 0) {
        add(unk_id, static_cast<std::size_t>(pending_unk_len));
        pending_unk_len = -1;
      }
      add(it->second, j - i);
    } else {
      bool done = false;
      if (byte_fallback) {
        bool all = true;
        for (char b : s) all = all && byte_ids[static_cast<unsigned char>(b)] >= 0;
        if (all) {
          for (char b : s) add(byte_ids[static_cast<unsigned char>(b)], 1);
          done = true;
        }
      }
      if (!done && unk_id >= 0) {
        const auto blen = static_cast<int32_t>(j - i);
        if (pending_unk_len >= 0 && fuse_unk) {
          pending_unk_len += blen;
        } else {
          if (pending_unk_len >= 0) add(unk_id, static_cast<std::size_t>(pending_unk_len));
          pending_unk_len = blen;
        }
      }
      // Without an unk token the character is dropped, as HF does.
    }
    i = j;
  }
  if (pending_unk_len >= 0) add(unk_id, static_cast<std::size_t>(pending_unk_len));

  std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder> queue;
  for (std::size_t k = 0; k + 1 < sym.size(); ++k) {
    auto m = merges.find(pair_key(sym[k].id, sym[k + 1].id));
    if (m != merges.end()) queue.push(Candidate{m->second.rank, static_cast<int32_t>(k), m->second.new_id});
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& cur = sym[static_cast<std::size_t>(top.pos)];
    if (cur.len == 0 || cur.next < 0) continue;
    const auto next_pos = static_cast<std::size_t>(cur.next);
    const Symbol right = sym[next_pos];
    auto m = merges.find(pair_key(cur.id, right.id));
    if (m == merges.end() || m->second.new_id != top.new_id) continue;  // stale entry
    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    sym[next_pos].len = 0;
    if (right.next >= 0) sym[static_cast<std::size_t>(right.next)].prev = top.pos;
    if (cur.prev >= 0) {
      const Symbol& p = sym[static_cast<std::size_t>(cur.prev)];
      auto pm = merges.find(pair_key(p.id, cur.id));
      if (pm != merges.end()) queue.push(Candidate{pm->second.rank, cur.prev, pm->second.new_id});
    }
    if (cur.next >= 0) {
      const Symbol& n = sym[static_cast<std::size_t>(cur.next)];
      auto nm = merges.find(pair_key(cur.id, n.id));
      if (nm != merges.end()) queue.push(Candidate{nm->second.rank, top.pos, nm->second.new_id});
    }
  }
  for (const auto& s : sym)
    if (s.len != 0) out.push_back(s.id);
}

}  // namespace lcllm::hf
