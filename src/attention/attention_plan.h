// AttentionPlan: for every layer, phase (prefill/decode) and KV-head group, how attention is computed
// (ARCHITECTURE.md §3, §4; the schema and every rule are documented in docs/POLICIES.md).
//
//   FULL            exact causal attention (the model's own sliding window, if any, still applies)
//   SELECT{k}       FULL, and the k key positions with the largest group attention mass are recorded in the
//                   step's selection slot for later layers (TidalDecode's token-selection layer)
//   SPARSE{from, sink, recent}
//                   attend only to the positions layer `from` selected for the same query row and KV head in
//                   this step, plus [0, sink) and (pos - recent, pos] when non-zero; `from` may itself be SPARSE
//                   (a reuse chain: the indices travel on unchanged)
//   STREAM{sink, recent}
//                   attend to [0, sink) ∪ (pos - recent, pos] (StreamingLLM)
//   HIP{k, block_size_q, block_size_k, sink, recent, refresh_every, coarse_refresh_every, coarse_piece_keys,
//       dense_below, dense_tail}
//                   HiP (arXiv 2406.09827): per query block and KV head, a hierarchical search keeps k/block_size_k
//                   key blocks; the rows attend to those blocks ∪ [0, sink) ∪ (pos - recent, pos] (hip_mask.h)
//
// Every key set is intersected with what FULL would see (causal, the model's sliding window), so a budget that
// covers the context computes exactly FULL (ARCHITECTURE.md §4.1). A plan is data; the attention op receives
// index lists and does not know which policy chose them (§4.2).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/model_config.h"

namespace lcllm {

enum class AttentionPolicy {
  ATTENTION_POLICY_FULL,
  ATTENTION_POLICY_SELECT,
  ATTENTION_POLICY_SPARSE,
  ATTENTION_POLICY_STREAM,
  ATTENTION_POLICY_HIP,
};

enum class AttentionPhase { ATTENTION_PHASE_PREFILL = 0, ATTENTION_PHASE_DECODE = 1 };

// HiP (arXiv 2406.09827) parameters. k, block_size_q, block_size_k follow the paper's §4 setup (k = 512,
// b_q = 32, b_k = 2); sink and recent are our choice, the same window the streaming preset keeps (docs/POLICIES.md).
struct HipParams {
  int32_t k = 512;             // key tokens kept per query block (a multiple of block_size_k)
  int32_t block_size_q = 32;   // queries sharing one mask
  int32_t block_size_k = 2;    // key block granularity the hierarchy stops at
  int32_t sink = 64;           // always-kept leading tokens
  int32_t recent = 256;        // always-kept sliding window
  // decode: recompute the mask every N steps (a reused mask is dilated forward by the steps it has aged,
  // hip_policy.h). 1 (every step) by default: even dilated, a reused mask loses more of the answer the longer the
  // context (Gemma 3 270M, 8x budget, 32 prompts on the GPU: refresh 8 keeps 91 / 86 / 80% of full's answer
  // probability at 4k / 16k / 32k, refresh 1 95 / 98 / 99%; docs/POLICIES.md "Decode refresh").
  int32_t refresh_every = 1;
  // decode, stage-wise refresh (InfiniteHiP, arXiv 2502.08910 §4: coarse pruning stages refreshed more rarely than
  // fine ones): 0 (off), or every this many steps (> refresh_every) a search runs from the start and keeps its
  // pieces once they are at most coarse_piece_keys keys long (its coarse stage); the searches in between start from
  // those pieces over the coarse search's keys and attend every key after them (hip_policy.h).
  int32_t coarse_refresh_every = 0;
  int32_t coarse_piece_keys = 64;
  // > 0: a query block (a decode row) whose first row sees at most this many keys attends every key it sees, as
  // FULL, without a search: below a context that depends on the phase and the GPU, the search's fixed cost exceeds
  // what dense attention costs (docs/POLICIES.md "Where hip pays off"). 0: always sparse.
  int32_t dense_below = 0;
  // prefill, > 0: in the step that ends a prompt (its last row's logits are sampled), the query blocks holding the
  // prompt's last dense_tail rows attend every key they see, as FULL, without a search. The end of a prompt is
  // where the question usually is (needle and QA tasks, a chat's last turn): its last row computes the first answer
  // token, and its rows' keys and values, in every later layer, are what decode's recent window reads first.
  // SnapKV (arXiv 2404.14469: its observation window) and MInference (arXiv 2407.02490: its pattern estimate from
  // the last 64 queries) lean on the same last queries of a prompt. Cost: dense_tail rows x the context, once per
  // prompt.
  int32_t dense_tail = 0;
  bool operator==(const HipParams&) const = default;
};

struct HeadGroupPolicy {
  int32_t kv_head_begin = 0;  // KV heads [begin, end) use this policy
  int32_t kv_head_end = 0;
  AttentionPolicy policy = AttentionPolicy::ATTENTION_POLICY_FULL;
  int32_t k = 0;        // SELECT: positions kept per (query row, KV head)
  int32_t from = -1;    // SPARSE: the earlier layer whose selection is read
  int32_t sink = 0;     // STREAM, SPARSE: leading positions always attended
  int32_t recent = 0;   // STREAM, SPARSE: trailing positions always attended (the query's own included)
  HipParams hip;        // HIP only
  bool operator==(const HeadGroupPolicy&) const = default;
};

struct LayerPlan {
  std::vector<HeadGroupPolicy> prefill;  // groups partition [0, n_kv_heads), ascending
  std::vector<HeadGroupPolicy> decode;
  const std::vector<HeadGroupPolicy>& phase(AttentionPhase p) const {
    return p == AttentionPhase::ATTENTION_PHASE_PREFILL ? prefill : decode;
  }
  std::vector<HeadGroupPolicy>& phase(AttentionPhase p) {
    return p == AttentionPhase::ATTENTION_PHASE_PREFILL ? prefill : decode;
  }
  bool operator==(const LayerPlan&) const = default;
};

struct AttentionPlan {
  std::string name;
  int32_t n_kv_heads = 0;
  std::vector<LayerPlan> layers;  // [n_layers]
  bool operator==(const AttentionPlan&) const = default;
};

const char* attention_policy_name(AttentionPolicy p);
const char* attention_phase_name(AttentionPhase p);
// "SELECT{k=64}", "SPARSE{from=2}", "STREAM{sink=64, recent=256}", "FULL".
std::string attention_group_describe(const HeadGroupPolicy& g);

// A plan where every layer, phase and KV head is FULL.
AttentionPlan attention_plan_full(const ModelConfig& config, const std::string& name = "full");
// Sets `policy` (its head range ignored) on KV heads [kv_begin, kv_end) of one layer and phase, splitting and
// merging groups so they stay a normalised partition (adjacent equal policies merged).
void attention_plan_set(AttentionPlan& plan, int32_t layer, AttentionPhase phase, int32_t kv_begin, int32_t kv_end,
                        const HeadGroupPolicy& policy);
// The group of `plan` covering one KV head of one layer and phase (the plan must be valid: groups cover every head).
const HeadGroupPolicy& attention_plan_group(const AttentionPlan& plan, int32_t layer, AttentionPhase phase,
                                            int32_t kv_head);
// True when no group in any layer or phase is anything but FULL.
bool attention_plan_is_full(const AttentionPlan& plan);
// Semantic problems of a plan for a model ("layer 3, decode, kv heads 0-1: SPARSE.from = 5 ..."), empty if valid.
std::vector<std::string> attention_plan_problems(const AttentionPlan& plan, const ModelConfig& config);
// The checks of a HIP group's stage-wise refresh and dense threshold (shared by attention_plan_problems and the hip
// preset's reader): problems are appended as "<at>.<key> = <value> must ...".
void hip_refresh_problems(const HipParams& p, const std::string& at, std::vector<std::string>& problems);
// Throws ERROR_KIND_INVALID_ARGUMENT listing every problem (`source` names the file or preset).
void attention_plan_validate(const AttentionPlan& plan, const ModelConfig& config, const std::string& source);

// Resolves `--policy NAME|FILE` for a model: a preset name (attention_plan_presets()) or a path to a JSON plan
// (anything ending in .json or containing '/'). The result is validated.
AttentionPlan attention_plan_resolve(const std::string& name_or_file, const ModelConfig& config);
std::vector<std::string> attention_plan_presets();

}  // namespace lcllm
