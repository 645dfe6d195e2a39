// Attention-only time of one decode step per attention policy on the CUDA backend: every layer of a real model shape
// (configs/models/*.json) attends over its own K/V in the paged pool at a given context, through the step plan as
// forward_step runs it (dense layers: Backend::attention; the rest: attention_key_sets, SELECT layers with their
// top-k), recorded and replayed as a CUDA graph as the engine's decode steps are. One query row. Prints one JSON
// object per (context, policy): ms per step (median of single replays between two events, the mean of back-to-back
// replays, and the median of eager steps), the K/V bytes the plan reads, and the speedup over FULL. HiP layers
// estimate their masks on the GPU as forward_step does (every step with refresh_every 1, the preset's default; a plan
// with refresh_every > 1 times its steps that reuse the cached masks, aged to their largest dilation, then its
// searching steps, and prints a second line with the mean over one refresh period). Every step is recorded and
// replayed as the engine's are (the reused masks stay on the device, Backend::hip_cache_keep), and ends with a
// synchronisation as the engine's do; "graphs" counts [replays, captures, eager steps] of the timed steps (a
// recorded step that had to capture or run eagerly shows there).
//   bench_sparse_attention MODEL_CONFIG CONTEXTS POLICIES [REPS]
//   e.g. bench_sparse_attention configs/models/llama-3.1-8b.json 32k,128k,512k full,tidal,hylra,streaming,PLAN.json
// Peer: tools/bench/attention_sdpa.py (PyTorch SDPA flash / cuDNN, one layer) in the same device call.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "attention/attention_plan.h"
#include "attention/hip_policy.h"
#include "backend/cuda/cuda_backend.h"
#include "eval/result_io.h"
#include "kernels/cuda_check.h"
#include "models/model_family.h"
#include "runtime/roofline.h"
#include "runtime/step_plan.h"

using namespace lcllm;

namespace {

constexpr int32_t kPageSize = 16;
constexpr int32_t kFillTokens = 4096;  // distinct random K/V rows written per layer, repeated along the context

// Every layer's K/V for `len` positions: a few random blocks of kFillTokens rows, a different rotation per layer
// (the values do not change the bytes read; they keep the top-k from degenerating into ties).
void fill_kv(CudaBackend& be, const ModelConfig& c, int32_t len, std::mt19937& g) {
  std::normal_distribution<float> normal(0.f, 1.f);
  const int64_t row = int64_t(c.n_kv_heads) * c.head_dim;
  constexpr int kBlocks = 4;
  std::vector<Tensor> ks, vs;
  for (int b = 0; b < kBlocks; ++b) {
    std::vector<float> host(size_t(kFillTokens * row));
    for (auto& x : host) x = normal(g);
    ks.push_back(be.alloc({kFillTokens, c.n_kv_heads, c.head_dim}));
    be.from_host(ks.back(), host.data(), int64_t(host.size()));
    for (auto& x : host) x = normal(g);
    vs.push_back(be.alloc({kFillTokens, c.n_kv_heads, c.head_dim}));
    be.from_host(vs.back(), host.data(), int64_t(host.size()));
  }
  std::vector<int64_t> slots(kFillTokens);
  for (int32_t l = 0; l < c.n_layers; ++l) {
    for (int32_t start = 0, i = 0; start < len; start += kFillTokens, ++i) {
      const int32_t n = std::min(kFillTokens, len - start);
      for (int32_t j = 0; j < n; ++j) slots[size_t(j)] = start + j;  // one sequence, pages in order
      Tensor k = ks[size_t((i + l) % kBlocks)], v = vs[size_t((i + 3 * l) % kBlocks)];
      k.shape[0] = v.shape[0] = n;
      be.kv_write(l, k, v, std::span<const int64_t>(slots.data(), size_t(n)));
    }
  }
  be.synchronize();
}

struct StepTiming {
  double median_ms, b2b_ms;
  int64_t replays, captures, eager;  // how the timed steps ran (StepGraphStats over them): printed as "graphs"
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL_CONFIG CONTEXTS POLICIES [REPS]\n", argv[0]);
    return 2;
  }
  const ModelConfig c = model_config_load(argv[1]);
  std::vector<int64_t> contexts;
  for (const std::string& s : eval_split_list(argv[2])) contexts.push_back(eval_parse_length(s, "CONTEXTS"));
  const std::vector<std::string> policies = eval_split_list(argv[3]);
  const int reps = argc > 4 ? std::atoi(argv[4]) : 10;
  std::mt19937 g(1234);
  const cudaDeviceProp prop = [] {
    cudaDeviceProp p{};
    CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
    return p;
  }();

  for (int64_t n64 : contexts) {
    const int32_t len = int32_t(n64);
    CudaBackend be(0, 0.95f);
    const int32_t pages = (len + kPageSize - 1) / kPageSize;
    be.kv_reserve(c.n_layers, pages, kPageSize, c.n_kv_heads, c.head_dim);
    fill_kv(be, c, len, g);
    CsrPages csr;
    csr.indptr = {0, pages};
    for (int32_t p = 0; p < pages; ++p) csr.indices.push_back(p);
    csr.last_page_len = {len - (pages - 1) * kPageSize};
    const std::vector<int32_t> query_start{0, 1}, query_pos{len - 1}, kv_len{len};
    AttentionBatch batch;
    batch.query_start = query_start;
    batch.query_pos = query_pos;
    batch.kv_len = kv_len;
    batch.pages = &csr;
    // The sequence's id, as the engine's steps carry it: HiP keeps reused decode masks per sequence on the device.
    const std::vector<int32_t> seq_ids{0};
    batch.seq_ids = seq_ids;
    const AttentionPhase phase[1] = {AttentionPhase::ATTENTION_PHASE_DECODE};
    Tensor q = be.alloc({1, c.n_heads, c.head_dim}), out = be.alloc({1, c.n_heads, c.head_dim});
    {
      std::normal_distribution<float> normal(0.f, 1.f);
      std::vector<float> host(size_t(c.n_heads * c.head_dim));
      for (auto& x : host) x = normal(g);
      be.from_host(q, host.data(), int64_t(host.size()));
    }
    double full_ms = 0;
    for (const std::string& policy : policies) {
      const AttentionPlan plan = attention_plan_resolve(policy, c);
      const StepPlan step = step_plan_compile(plan, c, batch, phase);
      const AttentionPlan* seq_plans[1] = {&plan};
      std::vector<int64_t> hip_indptr;
      std::vector<int32_t> hip_positions;
      // The sequence's cached HiP decode masks, as the engine keeps them. The position does not move between timed
      // steps, so a plan with refresh_every > 1 times its cached steps (the mask search runs once, in warm-up) and
      // refresh_every 1 times a search every step. The cached masks are aged to refresh_every - 1 steps before the
      // timed steps (age_masks): a reused mask is dilated forward by its age (hip_policy.h hip_dilate_forward), so
      // these are the cached steps' worst case, the largest lists.
      SequencePolicyState policy_state;
      // A mask computed age steps earlier also had its all_from (the first unsearched key) age steps earlier, so its
      // tail of attended keys is age keys longer: both move back together.
      // A coarse stage (stage-wise refresh) is aged to coarse_refresh_every - 1 steps as well, its start pieces then
      // dilated the most; its stage_hi stays (its pieces were searched over [lo, stage_hi)), so a resumed search's
      // tail is up to coarse_refresh_every - 1 keys shorter than at its oldest (~1% of a 3k-key list).
      auto age_masks = [&] {
        for (HipCachedMask& m : policy_state.hip) {
          if (m.stage_valid) m.stage_at = std::min(m.stage_at, len - 1 - (m.params.coarse_refresh_every - 1));
          if (!m.valid) continue;
          const int32_t aged_at = std::min(m.computed_at, len - 1 - (m.params.refresh_every - 1));
          m.all_from = std::max(0, m.all_from - (m.computed_at - aged_at));
          m.computed_at = aged_at;
        }
      };
      // As forward_step runs a decode step: recorded once, then replayed as a CUDA graph (graphs = false: eager).
      bool graphs = true;
      auto run_step = [&] {
        if (step.n_slots > 0) be.selection_reserve(step.n_slots, step.n_rows * step.n_kv_heads, step.slot_stride);
        be.step_begin(graphs);
        const int32_t* data = be.step_upload(step.data);
        for (int32_t l = 0; l < c.n_layers; ++l) {
          AttentionParams params;
          params.scale = c.query_scale;
          params.softcap = c.attn_logit_softcap;
          params.sliding_window = c.layers[size_t(l)].sliding_window;
          const StepLayerPlan& lp = step.layers[size_t(l)];
          const AttentionBatch layer_batch = step_plan_layer_batch(step, l, batch, data);
          if (lp.dense) {
            be.attention(out, q, l, layer_batch, params);
            continue;
          }
          if (lp.hip) {
            SequencePolicyState* states[1] = {&policy_state};
            const HipLayerMasks masks = attention_layer_hip(be, q, seq_plans, l, layer_batch, step.row_phase, params, states);
            const KeySet* sets = step_plan_layer_keys(step, l, data).sets;
            if (masks.any && !be.selection_write_hip(step.hip_slot, masks.view(), sets)) {
              step_plan_hip_lists(step, l, masks, hip_indptr, hip_positions);
              be.selection_write(step.hip_slot, hip_indptr, hip_positions);
            }
          }
          be.attention_key_sets(out, q, l, layer_batch, params, step_plan_layer_keys(step, l, data));
        }
        be.step_end();
        // As the engine's steps end (it reads the logits): the staging ring starts empty again, so every step stages
        // its uploads at the same offsets and a recorded step replays its graph instead of capturing a new one.
        be.synchronize();
      };
      cudaEvent_t a, b;
      CUDA_CHECK(cudaEventCreate(&a));
      CUDA_CHECK(cudaEventCreate(&b));
      // search: every timed step searches its masks anew (the cached ones dropped first, host state only): the
      // refreshing step of a plan with refresh_every > 1; with coarse stages, either from step 1 (the stages dropped
      // too: a coarse search, which keeps a stage) or resumed from the kept (aged) stages.
      enum class Search { kNone, kFromStart, kResumed };
      auto drop_masks = [&](Search kind) {
        for (HipCachedMask& m : policy_state.hip) {
          m.valid = false;
          if (kind == Search::kFromStart) m.stage_valid = false;
        }
      };
      auto time_steps = [&](Search search) {
        for (int w = 0; w < 3; ++w) {
          if (search != Search::kNone) drop_masks(search);
          run_step();
        }
        age_masks();
        const StepGraphStats before = be.graph_stats();
        std::vector<double> single;
        for (int r = 0; r < reps; ++r) {
          if (search != Search::kNone) drop_masks(search);
          CUDA_CHECK(cudaEventRecord(a, be.stream()));
          run_step();
          CUDA_CHECK(cudaEventRecord(b, be.stream()));
          CUDA_CHECK(cudaEventSynchronize(b));
          float ms = 0;
          CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
          single.push_back(ms);
        }
        CUDA_CHECK(cudaEventRecord(a, be.stream()));
        for (int r = 0; r < reps; ++r) {
          if (search != Search::kNone) drop_masks(search);
          run_step();
        }
        CUDA_CHECK(cudaEventRecord(b, be.stream()));
        CUDA_CHECK(cudaEventSynchronize(b));
        float b2b = 0;
        CUDA_CHECK(cudaEventElapsedTime(&b2b, a, b));
        std::sort(single.begin(), single.end());
        const StepGraphStats after = be.graph_stats();
        return StepTiming{single[single.size() / 2], double(b2b) / reps, after.replays - before.replays,
                          after.captures - before.captures, after.eager - before.eager};
      };
      const StepTiming t = time_steps(Search::kNone);
      graphs = false;
      const StepTiming eager = time_steps(Search::kNone);
      graphs = true;
      // A plan that reuses its masks: the refreshing step too, and the mean over one refresh period (one search
      // step and refresh_every - 1 cached steps at their oldest), which is what decode pays per token. With coarse
      // stages the period is the coarse one: searches every refresh_every steps, the first from step 1 and the
      // others resumed, until one is at least coarse_refresh_every steps after the first (hip_policy.cpp): P =
      // ceil(C / R) * R steps holding ceil(C / R) searches.
      int32_t refresh_every = 1, coarse_every = 0;
      for (const LayerPlan& layer : plan.layers)
        for (const HeadGroupPolicy& group : layer.decode)
          if (group.policy == AttentionPolicy::ATTENTION_POLICY_HIP) {
            refresh_every = std::max(refresh_every, group.hip.refresh_every);
            coarse_every = std::max(coarse_every, group.hip.coarse_refresh_every);
          }
      const StepTiming searching = refresh_every > 1 || coarse_every > 0 ? time_steps(Search::kFromStart) : t;
      const StepTiming resumed = coarse_every > 0 ? time_steps(Search::kResumed) : searching;
      const int32_t searches = coarse_every > 0 ? (coarse_every + refresh_every - 1) / refresh_every : 1;
      const int32_t period = searches * refresh_every;
      const double period_ms =
          (searching.b2b_ms + (searches - 1) * resumed.b2b_ms + (period - searches) * t.b2b_ms) / period;
      CUDA_CHECK(cudaEventDestroy(a));
      CUDA_CHECK(cudaEventDestroy(b));
      if (attention_plan_is_full(plan)) full_ms = t.b2b_ms;
      else if (refresh_every > 1 || coarse_every > 0)
        std::printf("{\"card\": \"%s\", \"model\": \"%s\", \"context\": %d, \"policy\": \"%s\", \"refresh_every\": %d, "
                    "\"coarse_refresh_every\": %d, \"search_step_ms_b2b\": %.4f, \"resumed_search_step_ms_b2b\": %.4f, "
                    "\"cached_step_ms_b2b\": %.4f, \"mean_ms_per_step\": %.4f, "
                    "\"speedup_vs_full_mean\": %.2f, \"search_graphs\": [%lld, %lld, %lld], "
                    "\"resumed_graphs\": [%lld, %lld, %lld]}\n",
                    prop.name, argv[1], len, policy.c_str(), refresh_every, coarse_every, searching.b2b_ms,
                    coarse_every > 0 ? resumed.b2b_ms : 0.0, t.b2b_ms, period_ms,
                    full_ms > 0 ? full_ms / period_ms : 0.0, (long long)searching.replays,
                    (long long)searching.captures, (long long)searching.eager, (long long)resumed.replays,
                    (long long)resumed.captures, (long long)resumed.eager);
      const double kv = decode_kv_bytes_read(plan, c, len, be.kv_storage_dtype());
      int32_t sparse_layers = 0, select_layers = 0;
      for (const StepLayerPlan& lp : step.layers) {
        sparse_layers += lp.dense ? 0 : 1;
        select_layers += lp.select_slot >= 0 ? 1 : 0;
      }
      std::printf("{\"card\": \"%s\", \"model\": \"%s\", \"context\": %d, \"policy\": \"%s\", \"layers\": %d, "
                  "\"key_set_layers\": %d, \"select_layers\": %d, \"attention_ms_per_step\": %.4f, "
                  "\"attention_ms_per_step_b2b\": %.4f, \"eager_ms_per_step\": %.4f, \"kv_bytes_read\": %.0f, "
                  "\"effective_gbps\": %.1f, \"speedup_vs_full_b2b\": %.2f, \"graphs\": [%lld, %lld, %lld]}\n",
                  prop.name, argv[1], len, policy.c_str(), c.n_layers, sparse_layers, select_layers, t.median_ms,
                  t.b2b_ms, eager.median_ms, kv, kv / (t.b2b_ms * 1e-3) / 1e9, full_ms > 0 ? full_ms / t.b2b_ms : 0.0,
                  (long long)t.replays, (long long)t.captures, (long long)t.eager);
      std::fflush(stdout);
    }
  }
  return 0;
}
