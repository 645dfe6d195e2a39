#include "attention/hip_mask.h"

#include <algorithm>
#include <limits>

#include "lcllm/error.h"

namespace lcllm {

std::vector<int32_t> hip_select_blocks(int32_t lo, int32_t hi, int32_t k, int32_t block_size_k, bool descent,
                                       const std::function<float(int32_t)>& score) {
  return hip_select_blocks_staged(lo, hi, k, block_size_k, descent, score, {}, -1, nullptr);
}

std::vector<int32_t> hip_select_blocks_staged(int32_t lo, int32_t hi, int32_t k, int32_t block_size_k, bool descent,
                                              const std::function<float(int32_t)>& score,
                                              const std::vector<HipPiece>& start, int32_t stage_round,
                                              std::vector<HipPiece>* stage) {
  LCLLM_ASSERT(block_size_k >= 1 && k >= block_size_k, "HiP: k must hold at least one block");
  LCLLM_ASSERT(stage_round < 0 || stage != nullptr, "HiP: a stage round needs somewhere to store the stage");
  if (stage != nullptr) stage->clear();
  std::vector<int32_t> out;
  if (hi <= lo) return out;
  const int32_t first = lo / block_size_k, end = (hi - 1) / block_size_k + 1;  // candidate blocks [first, end)
  // (no overflow: block indices are at most hi / block_size_k)
  const int32_t n_blocks = end - first, keep = k / block_size_k;
  if (n_blocks <= keep) {
    for (int32_t b = first; b < end; ++b) out.push_back(b);
    return out;
  }
  struct Piece {
    int32_t begin, end;  // blocks [begin, end)
    float score = 0;
  };
  std::vector<Piece> kept;
  if (start.empty()) {
    // Step 1: `keep` chunks of nearly equal size (the first n_blocks % keep get one block more).
    for (int32_t i = 0, b = first; i < keep; ++i) {
      const int32_t size = n_blocks / keep + (i < n_blocks % keep ? 1 : 0);
      kept.push_back({b, b + size});
      b += size;
    }
  } else {
    LCLLM_ASSERT(start.size() <= size_t(keep), "HiP: more start pieces than the budget keeps");
    for (size_t i = 0; i < start.size(); ++i) {
      const HipPiece& p = start[i];
      LCLLM_ASSERT(p.begin >= first && p.begin < p.end && p.end <= end && (i == 0 || start[i - 1].end <= p.begin),
                   "HiP: start pieces must be ascending, disjoint and inside the candidate blocks");
      kept.push_back({p.begin, p.end});
    }
  }
  auto store_stage = [&](int32_t round) {
    if (round != stage_round) return;
    for (const Piece& p : kept) stage->push_back({p.begin, p.end});
  };
  store_stage(0);
  // Scores by position, each computed once: a half's descent retraces its parent's after the first step (a centre
  // is scored once anyway, so the cache is only kept for descents).
  std::vector<float> known(descent ? size_t(hi - lo) : 0);
  std::vector<uint8_t> scored(descent ? size_t(hi - lo) : 0, 0);
  auto score_at = [&](int32_t j) {
    if (!descent) return score(j);
    const size_t i = size_t(j - lo);
    if (!scored[i]) {
      known[i] = score(j);
      scored[i] = 1;
    }
    return known[i];
  };
  // A piece's score (its keys clipped to [lo, hi)): its centre key; or (descent) descend towards the half whose
  // centre scores higher (ties to the lower half) until one key is left, and take the best centre met on the way
  // (InfiniteHiP §4).
  auto piece_score = [&](const Piece& p) {
    int32_t l = int32_t(std::max<int64_t>(lo, int64_t(p.begin) * block_size_k));
    int32_t r = int32_t(std::min<int64_t>(hi, int64_t(p.end) * block_size_k));
    if (!descent || r - l == 1) return score_at(l + (r - l - 1) / 2);
    float best = -std::numeric_limits<float>::infinity();
    while (r - l >= 2) {
      const int32_t c = l + (r - l) / 2;
      const float left = score_at(l + (c - l - 1) / 2), right = score_at(c + (r - c - 1) / 2);
      if (left >= right) {
        r = c;
        best = std::max(best, left);
      } else {
        l = c;
        best = std::max(best, right);
      }
    }
    return best;
  };
  std::vector<Piece> cand;
  for (int32_t round = 1;; ++round) {
    bool split_any = false;
    cand.clear();
    for (const Piece& p : kept) {
      if (p.end - p.begin > 1) {
        const int32_t mid = p.begin + (p.end - p.begin) / 2;
        cand.push_back({p.begin, mid});
        cand.push_back({mid, p.end});
        split_any = true;
      } else {
        cand.push_back(p);
      }
    }
    if (!split_any) break;
    for (Piece& p : cand) p.score = piece_score(p);
    // Step 3: the `keep` best pieces, ties to the lower position.
    std::stable_sort(cand.begin(), cand.end(), [](const Piece& a, const Piece& b) {
      return a.score > b.score || (a.score == b.score && a.begin < b.begin);
    });
    cand.resize(std::min(cand.size(), size_t(keep)));
    std::sort(cand.begin(), cand.end(), [](const Piece& a, const Piece& b) { return a.begin < b.begin; });
    kept = cand;
    store_stage(round);
  }
  for (const Piece& p : kept) out.push_back(p.begin);
  return out;
}

int32_t hip_stage_round(int32_t lo, int32_t hi, int32_t k, int32_t block_size_k, int32_t piece_keys) {
  if (hi <= lo || block_size_k < 1 || k < block_size_k) return -1;
  const int32_t n_blocks = (hi - 1) / block_size_k + 1 - lo / block_size_k, keep = k / block_size_k;
  const int32_t target = piece_keys / block_size_k;  // blocks
  if (n_blocks <= keep || target < 1) return -1;
  int32_t longest = n_blocks / keep + (n_blocks % keep != 0 ? 1 : 0);  // step 1's longest chunk
  int32_t round = 0;
  while (longest > target) {
    longest -= longest / 2;  // the longer half: [mid, end) with mid = begin + size / 2
    ++round;
  }
  return round > 0 ? round : -1;
}

bool hip_start_usable(const std::vector<HipPiece>& start, int32_t lo, int32_t hi, int32_t k, int32_t block_size_k) {
  if (hi <= lo || block_size_k < 1 || k < block_size_k || start.size() != size_t(k / block_size_k)) return false;
  const int32_t first = lo / block_size_k, end = (hi - 1) / block_size_k + 1;
  for (size_t i = 0; i < start.size(); ++i) {
    const HipPiece& p = start[i];
    if (p.begin < first || p.begin >= p.end || p.end > end || (i > 0 && start[i - 1].end > p.begin)) return false;
  }
  return true;
}

std::vector<HipPiece> hip_dilate_pieces(const std::vector<HipPiece>& pieces, int32_t shift, int32_t end_block) {
  std::vector<HipPiece> out = pieces;
  for (size_t i = 0; i < out.size(); ++i) {
    const int64_t limit = i + 1 < out.size() ? out[i + 1].begin : end_block;
    out[i].end = int32_t(std::max<int64_t>(out[i].end, std::min<int64_t>(int64_t(out[i].end) + shift, limit)));
  }
  return out;
}

}  // namespace lcllm
