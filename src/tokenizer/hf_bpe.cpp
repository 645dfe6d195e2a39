// BPE word tokenization with the merge order of HF `tokenizers` (models/bpe/word.rs): a priority queue of
// candidate merges keyed by (rank, position), stale entries skipped, and a cache for repeated words.
#include <queue>

#include "tokenizer/hf_tokenizer.h"

#include <algorithm>
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
}  // namespace

void MergeTable::reserve(std::size_t n) {
  std::size_t cap = 16;
  while (cap < 2 * n) cap <<= 1;
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(cap, Slot{kEmpty, 0, 0});
  mask_ = cap - 1;
  count_ = 0;
  for (const Slot& s : old)
    if (s.key != kEmpty) insert_or_assign(s.key, s.rank, s.new_id);
}

void MergeTable::insert_or_assign(uint64_t k, int32_t rank, int32_t new_id) {
  if (2 * (count_ + 1) > slots_.size()) reserve(2 * (count_ + 1));
  for (std::size_t i = hash(k);; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.key == kEmpty) {
      s = Slot{k, rank, new_id};
      ++count_;
      return;
    }
    if (s.key == k) {
      s.rank = rank;
      s.new_id = new_id;
      return;
    }
  }
}

void BpeModel::build_vocab_index(const std::vector<int32_t>& ids) {
  std::size_t cap = 16;
  while (cap < 2 * ids.size()) cap <<= 1;
  vocab_slots_.assign(cap, -1);
  vocab_mask_ = cap - 1;
  vocab_count_ = ids.size();
  for (int32_t id : ids) {
    const std::string& s = id_to_token[static_cast<std::size_t>(id)];
    std::size_t i = std::hash<std::string_view>{}(s) & vocab_mask_;
    while (vocab_slots_[i] >= 0) i = (i + 1) & vocab_mask_;
    vocab_slots_[i] = id;
    max_token_bytes_ = std::max(max_token_bytes_, s.size());
  }
}

std::size_t BpeModel::min_ids_for(std::size_t word_bytes) const {
  // Fused unknown runs cover any number of bytes with one id: no bound then.
  if (fuse_unk && !byte_fallback && unk_id >= 0) return 0;
  // A model token covers at most its stored string's bytes (prefixes/suffixes only add to the stored form); an
  // unknown character is at most 4 bytes.
  const std::size_t widest = std::max<std::size_t>(max_token_bytes_, 4);
  return (word_bytes + widest - 1) / widest;
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges) {
    const int32_t id = vocab_find(word);
    if (id >= 0) {
      out.push_back(id);
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
    const int32_t id = vocab_find(s);
    if (id >= 0) {
      if (pending_unk_len >= 0) {
        add(unk_id, static_cast<std::size_t>(pending_unk_len));
        pending_unk_len = -1;
      }
      add(id, j - i);
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
    const auto* m = merges.find(sym[k].id, sym[k + 1].id);
    if (m) queue.push(Candidate{m->rank, static_cast<int32_t>(k), m->new_id});
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& cur = sym[static_cast<std::size_t>(top.pos)];
    if (cur.len == 0 || cur.next < 0) continue;
    const auto next_pos = static_cast<std::size_t>(cur.next);
    const Symbol right = sym[next_pos];
    const auto* m = merges.find(cur.id, right.id);
    if (!m || m->new_id != top.new_id) continue;  // stale entry
    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    sym[next_pos].len = 0;
    if (right.next >= 0) sym[static_cast<std::size_t>(right.next)].prev = top.pos;
    if (cur.prev >= 0) {
      const Symbol& p = sym[static_cast<std::size_t>(cur.prev)];
      const auto* pm = merges.find(p.id, cur.id);
      if (pm) queue.push(Candidate{pm->rank, cur.prev, pm->new_id});
    }
    if (cur.next >= 0) {
      const Symbol& n = sym[static_cast<std::size_t>(cur.next)];
      const auto* nm = merges.find(cur.id, n.id);
      if (nm) queue.push(Candidate{nm->rank, top.pos, nm->new_id});
    }
  }
  for (const auto& s : sym)
    if (s.len != 0) out.push_back(s.id);
}

}  // namespace lcllm::hf
