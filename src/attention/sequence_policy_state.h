// Policy state that must outlive one step: HiP's decode mask, refreshed every `refresh_every` decode steps
// (arXiv 2406.09827 §3.3: the mask is reused across several decoding steps to amortise its estimation).
// It belongs to a sequence: Engine keeps one SequencePolicyState per live sequence (created with it, copied by
// fork, dropped by free) and forward_step receives the states of the step's sequences through StepInput —
// nothing global, and two sequences never share a mask. (TidalDecode/HyLRA selections live for one step only:
// the step's selection slots, runtime/step_plan.h.)
#pragma once
#include <cstdint>
#include <vector>

#include "attention/attention_plan.h"
#include "attention/hip_mask.h"

namespace lcllm {

struct HipCachedMask {
  std::vector<int32_t> blocks;  // ascending key-block indices chosen when the mask was computed (host-kept masks)
  int32_t device_row = -1;      // >= 0: the blocks live on the backend instead (Backend::hip_cache_keep's row)
  int32_t all_from = 0;         // keys >= all_from were not searched: every one of them is attended
  int32_t computed_at = 0;      // the query position it was computed for: it serves positions up to
                                // computed_at + refresh_every - 1 (so its list stays within the step's slot stride)
  HipParams params;             // the parameters it was computed with (another plan's HIP group searches again)
  bool valid = false;
  // The coarse stage (HipParams::coarse_refresh_every): the pieces a search from step 1 over [stage_lo, stage_hi),
  // computed for position stage_at, kept after its first rounds; later searches resume from them until
  // stage_at + coarse_refresh_every - 1.
  std::vector<HipPiece> stage;  // host-kept stages
  bool stage_on_device = false; // the stage lives on the backend instead, as device_row's stage
  int32_t stage_lo = 0, stage_hi = 0, stage_at = 0;
  bool stage_valid = false;
};

struct SequencePolicyState {
  std::vector<HipCachedMask> hip;  // [n_layers * n_kv_heads], sized at first use
};

}  // namespace lcllm
