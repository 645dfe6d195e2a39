// HiP's hierarchical top-k key-block estimation (arXiv 2406.09827 §3.1, "hierarchically pruned attention"), as a
// pure function over a score callback so it can be tested without a model and run by any backend.
//
// The keys [lo, hi) are cut into blocks of block_size_k positions, aligned to absolute positions (block b covers
// [b * block_size_k, (b + 1) * block_size_k)), so a mask means the same blocks from one decode step to the next.
// With K = k / block_size_k:
//   1. the candidate blocks are split into K contiguous chunks of (nearly) equal size;
//   2. every chunk with more than one block is split into two halves; each half (and every single-block chunk) is
//      scored through a representative token:
//        - centre (HiP §3.1): the key in the piece's centre (attention locality: neighbouring keys score alike);
//        - descent (InfiniteHiP, arXiv 2502.08910 §4): from the piece's keys, score the centre key of each half,
//          move into the half whose centre scores higher (ties to the lower half), and repeat until one key is
//          left; the piece scores the best centre met on the way. Locality makes the descent climb towards the
//          piece's peak: it raised the recall of the exact top-k from 0.065 to 0.309 on random attention and from
//          0.775 to 0.905 on structured attention (k = 128 of 4096, tests/attention/test_hip.cpp). Each key is
//          scored at most once per call (a half's descent retraces its parent's);
//   3. the K best-scoring pieces are kept (ties to the lower position), and step 2 repeats until every kept
//      piece is one block.
// When the range has <= K blocks, every block is kept: the mask is exact (k >= context equals FULL).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace lcllm {

// Ascending block indices (block b = keys [b * block_size_k, (b + 1) * block_size_k) ∩ [lo, hi)), at most
// k / block_size_k of them. score(pos) estimates key pos's importance for the query block (higher is better).
// descent: the descent representative, else the centre (step 2).
std::vector<int32_t> hip_select_blocks(int32_t lo, int32_t hi, int32_t k, int32_t block_size_k, bool descent,
                                       const std::function<float(int32_t)>& score);

// A piece of the search: key blocks [begin, end).
struct HipPiece {
  int32_t begin = 0, end = 0;
  bool operator==(const HipPiece&) const = default;
};

// The same search with its stages exposed, the building block of stage-wise refresh (InfiniteHiP, arXiv 2502.08910
// §4, refreshes its coarse pruning stages more rarely than its fine ones; attention/hip_policy.h uses it):
//   - start, when not empty, replaces step 1's chunks: pieces an earlier search kept after some round (ascending,
//     disjoint, at most k / block_size_k, inside the candidate blocks of [lo, hi)); the rounds then go on from them;
//   - stage_round >= 0 stores in *stage the pieces kept after that many rounds (0: step 1's chunks, or start), left
//     empty when the search is exact (every block kept) or ends before that round.
// Resuming from the stage of round R of the same [lo, hi) gives exactly hip_select_blocks's blocks.
std::vector<int32_t> hip_select_blocks_staged(int32_t lo, int32_t hi, int32_t k, int32_t block_size_k, bool descent,
                                              const std::function<float(int32_t)>& score,
                                              const std::vector<HipPiece>& start, int32_t stage_round,
                                              std::vector<HipPiece>* stage);

// The round after which every piece of a search over [lo, hi) is at most piece_keys keys long (pieces halve each
// round, the longer half taking the odd block), or -1 when that stage is not worth keeping: the search is exact
// (every block kept), its first chunks are already that short (round 0: the resumed search would do every round),
// or piece_keys is shorter than a block.
int32_t hip_stage_round(int32_t lo, int32_t hi, int32_t k, int32_t block_size_k, int32_t piece_keys);

// Whether start can resume a search over [lo, hi) of budget k: exactly k / block_size_k pieces, ascending, disjoint,
// non-empty and inside the candidate blocks (a backend ignores any other start and searches from step 1's chunks).
bool hip_start_usable(const std::vector<HipPiece>& start, int32_t lo, int32_t hi, int32_t k, int32_t block_size_k);

// Start pieces aged `shift` blocks: each piece's end moves forward by shift blocks, stopping at the next piece's
// begin and at end_block (the search's candidate end), so the pieces stay ascending and disjoint. A coarse stage
// reused d steps after it was searched then also covers the keys just after its pieces that attention drifts onto
// as generation goes on (hip_policy.h hip_reuse_shift_blocks: the same forward dilation as a reused mask's); keys
// past the coarse search's range are attended anyway (all_from). The kernel applies the same rule.
std::vector<HipPiece> hip_dilate_pieces(const std::vector<HipPiece>& pieces, int32_t shift, int32_t end_block);

}  // namespace lcllm
