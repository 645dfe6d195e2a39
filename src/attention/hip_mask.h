// HiP's hierarchical top-k key-block estimation (arXiv 2406.09827 §3.1, "hierarchically pruned attention"), as a
// pure function over a score callback so it can be tested without a model and run by any backend.
//
// The keys [lo, hi) are cut into blocks of block_size_k positions, aligned to absolute positions (block b covers
// [b * block_size_k, (b + 1) * block_size_k)), so a mask means the same blocks from one decode step to the next.
// With K = k / block_size_k:
//   1. the candidate blocks are split into K contiguous chunks of (nearly) equal size;
//   2. every chunk with more than one block is split into two halves; each half (and every single-block chunk) is
//      scored by its representative token, the key in its centre (attention locality, §3.1: neighbouring keys
//      score alike, so the centre stands for the half);
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
std::vector<int32_t> hip_select_blocks(int32_t lo, int32_t hi, int32_t k, int32_t block_size_k,
                                       const std::function<float(int32_t)>& score);

}  // namespace lcllm
