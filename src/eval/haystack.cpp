#include "eval/haystack.h"

#include <algorithm>

#include "eval/eval_rng.h"
#include "lcllm/error.h"

namespace lcllm {

namespace {

// The text encode_continuation puts in front: a short sentence end, so what follows is tokenized as mid-text
// after ". ".
constexpr const char* kRefPrefix = "A.";

bool starts_with(const std::vector<int32_t>& v, const std::vector<int32_t>& prefix) {
  return v.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), v.begin());
}

}  // namespace

HaystackBuilder::HaystackBuilder(const Tokenizer& tokenizer, std::vector<std::string> filler, bool in_order)
    : tok_(tokenizer), filler_(std::move(filler)), in_order_(in_order) {
  if (filler_.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "the haystack filler has no sentences");
  ref_prefix_ = tok_.encode(kRefPrefix, false);
  // BOS (and anything else the post-processor puts first): the ids before the plain encoding.
  const std::vector<int32_t> with = tok_.encode(kRefPrefix, true);
  for (size_t i = 0; i + ref_prefix_.size() <= with.size(); ++i) {
    if (std::equal(ref_prefix_.begin(), ref_prefix_.end(), with.begin() + i)) {
      head_.assign(with.begin(), with.begin() + i);
      break;
    }
  }
  for (const auto& s : filler_) {
    cont_ids_.push_back(encode_continuation(s));
    if (cont_ids_.back().empty()) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "filler sentence '" + s + "' encodes to no tokens");
    }
  }
}

std::vector<int32_t> HaystackBuilder::encode_continuation(const std::string& text) const {
  std::vector<int32_t> full = tok_.encode(std::string(kRefPrefix) + " " + text, false);
  if (starts_with(full, ref_prefix_) && full.size() > ref_prefix_.size()) {
    return std::vector<int32_t>(full.begin() + ptrdiff_t(ref_prefix_.size()), full.end());
  }
  return tok_.encode(text, false);  // a tokenizer that merges across the boundary: the standalone form
}

Haystack HaystackBuilder::build(const HaystackRequest& req) const {
  EvalRng rng(req.seed);
  Haystack h;
  std::vector<int32_t> preamble;
  if (!req.preamble.empty()) preamble = encode_continuation(req.preamble);
  std::vector<std::vector<int32_t>> inserts;
  int64_t fixed = int64_t(head_.size()) + int64_t(preamble.size());
  for (const auto& ins : req.inserts) {
    if (!(ins.depth >= 0.0 && ins.depth <= 1.0)) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "insert depth must be in [0, 1]");
    }
    inserts.push_back(encode_continuation(ins.text));
    fixed += int64_t(inserts.back().size());
  }
  std::vector<int32_t> query;
  if (!req.query.empty()) query = encode_continuation(req.query);
  fixed += int64_t(query.size());
  const int64_t budget = int64_t(req.total_tokens) - fixed;
  if (budget < 1) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "a " + std::to_string(req.total_tokens) + "-token prompt cannot hold its fixed parts (" +
                    std::to_string(fixed) + " tokens of BOS, instruction, needles and query); use a longer length");
  }

  // Draw sentences while comfortably inside the budget, then close the gap exactly.
  auto len_of = [&](size_t idx) { return int64_t(cont_ids_[idx].size()); };
  size_t max_len = 0;
  for (const auto& c : cont_ids_) max_len = std::max(max_len, c.size());
  // Stop drawing once at most 2 x (longest sentence) is left: the rest is then in (M, 2M], which two or three
  // sentences can usually fill exactly.
  const int64_t reserve = int64_t(2 * max_len);
  std::vector<size_t> drawn;
  int64_t used = 0;
  size_t next = in_order_ ? size_t(rng.below(filler_.size())) : 0;  // in order: the passage's first sentence
  // The next filler sentence: the passage's next one (natural text) or a random one.
  auto draw = [&] { return in_order_ ? next++ % filler_.size() : size_t(rng.below(filler_.size())); };
  while (budget - used > reserve) {
    size_t idx = draw();
    drawn.push_back(idx);
    used += len_of(idx);
  }
  // Exact fit: up to three more sentences whose lengths sum to the rest, searched among at most 48 candidates
  // from a seeded start (so the choice varies and the search stays cheap for large fillers), else a token-level cut
  // of one sentence.
  int64_t rest = budget - used;
  std::vector<size_t> tail;
  bool cut = false;
  {
    const size_t n_all = filler_.size();
    const size_t n = std::min<size_t>(n_all, 48);
    // In order, the search starts where the passage stopped, so the exact fit usually continues it.
    const size_t off = in_order_ ? next % n_all : size_t(rng.below(n_all));
    auto L = [&](size_t k) { return len_of((k + off) % n_all); };
    auto idx = [&](size_t k) { return (k + off) % n_all; };
    bool found = false;
    for (size_t a = 0; a < n && !found; ++a) {
      if (L(a) == rest) { tail = {idx(a)}; found = true; }
    }
    for (size_t a = 0; a < n && !found; ++a) {
      for (size_t b = 0; b < n && !found; ++b) {
        if (L(a) + L(b) == rest) { tail = {idx(a), idx(b)}; found = true; }
      }
    }
    for (size_t a = 0; a < n && !found; ++a) {
      for (size_t b = 0; b < n && !found; ++b) {
        const int64_t ab = L(a) + L(b);
        if (ab >= rest) continue;
        for (size_t c = 0; c < n && !found; ++c) {
          if (ab + L(c) == rest) { tail = {idx(a), idx(b), idx(c)}; found = true; }
        }
      }
    }
    if (!found) cut = true;
  }
  for (size_t t : tail) drawn.push_back(t);

  // The filler as sentences of ids; with `cut`, a final partial sentence fills the rest.
  std::vector<std::vector<int32_t>> sentences;
  int64_t filler_total = 0;
  for (size_t i = 0; i < drawn.size(); ++i) {
    sentences.push_back(cont_ids_[drawn[i]]);
    filler_total += int64_t(sentences.back().size());
  }
  int64_t whole_tokens = filler_total;
  if (cut) {
    int64_t need = budget - filler_total;
    std::vector<int32_t> partial;
    while (need > 0) {  // rest < reserve, so a few sentences at most
      size_t idx = draw();
      const auto& ids = cont_ids_[idx];
      const int64_t take = std::min<int64_t>(need, int64_t(ids.size()));
      if (take == int64_t(ids.size())) {
        sentences.push_back(ids);  // a whole sentence still fits
        whole_tokens += take;
      } else {
        partial.assign(ids.begin(), ids.begin() + take);
      }
      need -= take;
    }
    if (!partial.empty()) sentences.push_back(partial);
    filler_total = budget;
  }

  // Sentence boundaries (token offsets within the filler) where inserts may go: before each whole sentence and
  // after the last whole sentence.
  std::vector<int64_t> bounds{0};
  {
    int64_t off = 0;
    for (const auto& s : sentences) {
      off += int64_t(s.size());
      if (off <= whole_tokens) bounds.push_back(off);
    }
  }
  std::vector<int64_t> at(inserts.size());
  for (size_t i = 0; i < inserts.size(); ++i) {
    const double target = req.inserts[i].depth * double(filler_total);
    auto it = std::upper_bound(bounds.begin(), bounds.end(), int64_t(target + 1e-9));
    at[i] = *(it - 1);
  }

  // Assemble: head, preamble, filler with inserts at their boundaries (request order at equal boundaries), query.
  h.ids = head_;
  h.ids.insert(h.ids.end(), preamble.begin(), preamble.end());
  h.insert_pos.assign(inserts.size(), 0);
  h.insert_len.assign(inserts.size(), 0);
  h.insert_depth.assign(inserts.size(), 0.0);
  auto place_inserts_at = [&](int64_t boundary) {
    for (size_t i = 0; i < inserts.size(); ++i) {
      if (at[i] != boundary) continue;
      h.insert_pos[i] = int32_t(h.ids.size());
      h.insert_len[i] = int32_t(inserts[i].size());
      h.insert_depth[i] = filler_total ? double(boundary) / double(filler_total) : 0.0;
      h.ids.insert(h.ids.end(), inserts[i].begin(), inserts[i].end());
    }
  };
  int64_t off = 0;
  place_inserts_at(0);
  for (const auto& s : sentences) {
    h.sentence_starts.push_back(int32_t(h.ids.size()));
    h.ids.insert(h.ids.end(), s.begin(), s.end());
    off += int64_t(s.size());
    if (off <= whole_tokens) place_inserts_at(off);
  }
  h.query_pos = int32_t(h.ids.size());
  h.ids.insert(h.ids.end(), query.begin(), query.end());
  h.filler_tokens = int32_t(filler_total);
  h.cut_sentence = cut;
  LCLLM_ASSERT(int64_t(h.ids.size()) == req.total_tokens, "haystack length differs from the request");
  return h;
}

}  // namespace lcllm
