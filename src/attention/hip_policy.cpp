#include "attention/hip_policy.h"

#include <algorithm>
#include <climits>

#include "lcllm/error.h"

namespace lcllm {

namespace {

// The mask of one (query block, KV head): where its blocks come from.
struct Mask {
  int32_t row_begin, row_end, kv_head;
  int32_t block_size, all_from;
  int32_t request = -1;                  // index into this step's requests, or -1: from the cache
  const HipCachedMask* cached = nullptr;
  int32_t shift = 0;                     // a cached mask's forward dilation in blocks (hip_dilate_forward)
};

}  // namespace

HipLayerMasks attention_layer_hip(Backend& be, const Tensor& q, std::span<const AttentionPlan* const> seq_plans,
                                  int32_t layer, const AttentionBatch& batch, std::span<const AttentionPhase> row_phase,
                                  const AttentionParams& params, std::span<SequencePolicyState* const> seq_state,
                                  std::span<const uint8_t> seq_ends_prompt) {
  HipLayerMasks out;
  const size_t n_seq = batch.kv_len.size();
  LCLLM_ASSERT(seq_plans.size() == n_seq, "one plan per sequence");
  const int32_t H = seq_plans.empty() ? 0 : seq_plans[0]->n_kv_heads;
  const int64_t n_rows = batch.query_start[n_seq];
  LCLLM_ASSERT(seq_state.empty() || seq_state.size() == n_seq, "one policy state per sequence");
  LCLLM_ASSERT(seq_ends_prompt.empty() || seq_ends_prompt.size() == n_seq, "one prompt-end flag per sequence");
  std::vector<Mask> masks;
  std::vector<HipBlockRequest> requests;
  std::vector<HipCachedMask*> store;  // [requests] where a fresh decode mask is cached, or null
  std::vector<HipParams> store_params;  // [requests] the parameters of each request's group
  std::vector<int32_t> request_seq;     // [requests] the batch's sequence index of each request
  std::vector<uint8_t> resumed;         // [requests] 1: the search starts from its group's cached coarse stage
  // Where a stage lives follows where masks are kept: on the backend when it keeps them for the batch's sequences.
  const bool device_cache = be.supports_hip_cache() && batch.seq_ids.size() == n_seq;
  for (size_t s = 0; s < n_seq; ++s) {
    const int32_t qs = batch.query_start[s], qe = batch.query_start[s + 1];
    if (qs == qe) continue;
    const AttentionPhase phase = row_phase[size_t(qs)];
    const AttentionPlan& plan = *seq_plans[s];
    SequencePolicyState* state = seq_state.empty() ? nullptr : seq_state[s];
    if (state && state->hip.size() != plan.layers.size() * size_t(H)) state->hip.assign(plan.layers.size() * size_t(H), {});
    for (int32_t h = 0; h < H; ++h) {
      const HeadGroupPolicy& g = attention_plan_group(plan, layer, phase, h);
      HipCachedMask* cache = state ? &state->hip[size_t(layer) * size_t(H) + size_t(h)] : nullptr;
      const bool decode_one = phase == AttentionPhase::ATTENTION_PHASE_DECODE && qe - qs == 1;
      // Any step but one decode row (new prefill keys, under whatever policy) makes the next decode step search again.
      if (!decode_one && cache) cache->valid = cache->stage_valid = false;
      if (g.policy != AttentionPolicy::ATTENTION_POLICY_HIP) continue;
      const HipParams& p = g.hip;
      const int32_t pos = batch.query_pos[size_t(qs)];
      if (decode_one && cache && cache->valid && cache->params == p && pos >= cache->computed_at &&
          pos - cache->computed_at < p.refresh_every) {
        const int32_t bs = cache->params.block_size_k;
        out.any = true;
        masks.push_back({qs, qe, h, bs, cache->all_from, -1, cache, hip_reuse_shift_blocks(pos - cache->computed_at, bs)});
        continue;
      }
      const int32_t bq = decode_one ? 1 : p.block_size_q;
      const bool ends_prompt = !seq_ends_prompt.empty() && seq_ends_prompt[s];  // (prefill sequences only)
      for (int32_t rb = qs; rb < qe; rb += bq) {
        const int32_t re = std::min(qe, rb + bq);
        const int32_t first = batch.query_pos[size_t(rb)];
        // A short context, or the end of a prompt, attends densely (the step plan gave these rows FULL's sets): no
        // search, no mask.
        if (hip_block_attends_densely(p, first, re, qe, ends_prompt)) continue;
        out.any = true;
        const int32_t window_lo = attention_visible_keys(first, batch.kv_len[s], params.sliding_window).lo;
        const int32_t lo = std::max(window_lo, p.sink);
        const int32_t hi = std::max(lo, std::min(first - p.recent + 1, batch.kv_len[s]));
        HipBlockRequest rq;
        rq.row_begin = rb;
        rq.row_end = re;
        rq.kv_head = h;
        rq.lo = lo;
        rq.hi = hi;
        rq.k = p.k;
        rq.block_size_k = p.block_size_k;
        // Decode rows score pieces by descent, prefill query blocks by their centre (hip_mask.h). The descent
        // recovered most of what decode masks lost (SmolLM2-135M at 4k, 8x budget: 65.6% of full's value
        // probability kept with centres, 94.6% with descent everywhere, 96.3% with descent in decode only);
        // a prefill mask serves 32 rows and its descent costs the GPU search several times more for no measured
        // gain (docs/EVALUATION.md).
        rq.descent = decode_one;
        // Stage-wise refresh (InfiniteHiP §4): a search from step 1 every coarse_refresh_every steps keeps its coarse
        // stage; the searches in between resume from it (aged like a reused mask: hip_dilate_pieces) over the keys
        // it searched, [lo, stage_hi), and every key from stage_hi on is attended (all_from), so no key that arrived
        // since is left out. Both intervals 1 (or coarse off) is the plain search every refresh.
        const bool staged = decode_one && cache && p.coarse_refresh_every > 0;
        const bool resume = staged && cache->stage_valid && cache->params == p && cache->stage_lo == lo &&
                            pos >= cache->stage_at && pos - cache->stage_at < p.coarse_refresh_every &&
                            cache->stage_on_device == device_cache;
        if (resume) {
          rq.hi = cache->stage_hi;
          if (device_cache) rq.start_row = cache->device_row;
          else rq.start = cache->stage;
          rq.start_shift = hip_reuse_shift_blocks(pos - cache->stage_at, p.block_size_k);
        } else if (staged) {
          rq.stage_round = hip_stage_round(lo, hi, p.k, p.block_size_k, p.coarse_piece_keys);
        }
        masks.push_back({rb, re, h, p.block_size_k, rq.hi, int32_t(requests.size()), nullptr});
        requests.push_back(rq);
        // A mask computed for one position is reused only while pos - computed_at < refresh_every: with 1, never;
        // a search from step 1 under stage-wise refresh is kept for its stage (a resumed one leaves the stage).
        store.push_back(decode_one && (p.refresh_every > 1 || (staged && !resume)) ? cache : nullptr);
        store_params.push_back(p);
        request_seq.push_back(int32_t(s));
        resumed.push_back(resume ? 1 : 0);
      }
    }
  }
  if (!out.any) return out;
  // Blocks stay on the device: no round trip to the host per layer. Those a later step reuses stay there too when
  // the backend keeps per-sequence masks and the batch names its sequences (the engine's always does).
  const bool any_store = std::any_of(store.begin(), store.end(), [](const HipCachedMask* c) { return c; });
  const bool keep_on_device = !requests.empty() && (!any_store || device_cache) &&
                              be.attention_hip_blocks_device(q, layer, batch, params, requests);
  HipBlocks fresh;
  std::vector<int32_t> kept_rows;  // the backend rows of the stored requests, in request order (device cache)
  if (keep_on_device) {
    fresh.indptr.assign(requests.size() + 1, 0);
    if (any_store) {
      std::vector<HipCacheKeep> keeps;
      for (size_t i = 0; i < requests.size(); ++i) {
        if (store[i]) {
          keeps.push_back({batch.seq_ids[size_t(request_seq[i])], layer, requests[i].kv_head, int32_t(i),
                           requests[i].stage_round >= 0});
        }
      }
      be.hip_cache_keep(keeps, kept_rows);
      LCLLM_ASSERT(kept_rows.size() == keeps.size(), "one cache row per kept mask");
    }
  } else if (!requests.empty()) {
    be.attention_hip_blocks(q, layer, batch, params, requests, fresh);
  }
  size_t next_row = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (!store[i]) continue;
    HipCachedMask& c = *store[i];
    if (keep_on_device) {
      c.blocks.clear();
      c.device_row = kept_rows[next_row++];
    } else {
      c.blocks.assign(fresh.blocks.begin() + fresh.indptr[i], fresh.blocks.begin() + fresh.indptr[i + 1]);
      c.device_row = -1;
    }
    c.all_from = requests[i].hi;
    c.computed_at = batch.query_pos[size_t(requests[i].row_begin)];
    c.params = store_params[i];
    c.valid = true;
    if (resumed[i]) continue;  // the stage it resumed from stays
    // A search from step 1: its stage (if it kept one, and the backend returned it) replaces the old one.
    const HipBlockRequest& rq = requests[i];
    c.stage_valid = false;
    c.stage.clear();
    if (rq.stage_round < 0) continue;
    if (keep_on_device) {
      c.stage_on_device = true;
    } else if (!fresh.stage_indptr.empty() && fresh.stage_indptr[i + 1] > fresh.stage_indptr[i]) {
      c.stage.assign(fresh.stage.begin() + fresh.stage_indptr[i], fresh.stage.begin() + fresh.stage_indptr[i + 1]);
      c.stage_on_device = false;
    } else {
      continue;  // no stage came back: the next refresh searches from step 1 again
    }
    c.stage_lo = rq.lo;
    c.stage_hi = rq.hi;
    c.stage_at = c.computed_at;
    c.stage_valid = true;
  }
  // One entry per mask; its (row, head)s point at it.
  out.indptr.assign(1, 0);
  out.mask_of.assign(size_t(n_rows * H), -1);
  for (size_t mi = 0; mi < masks.size(); ++mi) {
    const Mask& m = masks[mi];
    if (m.request >= 0) {
      const size_t i = size_t(m.request);
      out.blocks.insert(out.blocks.end(), fresh.blocks.begin() + fresh.indptr[i], fresh.blocks.begin() + fresh.indptr[i + 1]);
    } else if (m.cached->device_row < 0) {
      // The blocks as computed; the consumer dilates them (a decode step's upload keeps its size from step to step,
      // so a recorded step's graph is replayed).
      out.blocks.insert(out.blocks.end(), m.cached->blocks.begin(), m.cached->blocks.end());
    }
    out.indptr.push_back(int64_t(out.blocks.size()));
    out.shift.push_back(m.shift);
    out.cache_row.push_back(m.request < 0 ? m.cached->device_row : -1);
    if (keep_on_device) out.on_device.push_back(m.request);  // -1 for a cached mask
    out.block_size.push_back(m.block_size);
    out.all_from.push_back(m.all_from);
    for (int32_t r = m.row_begin; r < m.row_end; ++r) out.mask_of[size_t(int64_t(r) * H + m.kv_head)] = int32_t(mi);
  }
  return out;
}

int32_t hip_reuse_shift_blocks(int32_t steps_since, int32_t block_size_k) {
  return steps_since <= 0 ? 0 : int32_t((int64_t(steps_since) + block_size_k - 1) / block_size_k);
}

int64_t hip_list_bound(const HipParams& p) {
  const int64_t shift = hip_reuse_shift_blocks(p.refresh_every - 1, p.block_size_k);
  // A search resumed from a coarse stage up to coarse_refresh_every - 1 steps old attends every key from that
  // stage's end on: its tail is that much longer.
  const int64_t tail = int64_t(p.refresh_every) + (p.coarse_refresh_every > 0 ? p.coarse_refresh_every - 1 : 0);
  return int64_t(p.k) * (1 + shift) + p.recent + std::max<int64_t>(p.block_size_q, tail);
}

void hip_dilate_forward(std::span<const int32_t> blocks, int32_t shift, std::vector<int32_t>& out) {
  int64_t next = INT64_MIN;  // first block not yet emitted
  for (const int32_t b : blocks) {
    const int64_t last = int64_t(b) + shift;  // the list's consumers clip blocks past the mask's all_from
    for (int64_t x = std::max<int64_t>(b, next); x <= last && x <= INT32_MAX; ++x) out.push_back(int32_t(x));
    next = std::max(next, last + 1);
  }
}

void hip_expand_lists(const HipMaskLists& masks, std::span<const KeySet> sets, int32_t slot,
                      std::vector<int64_t>& indptr, std::vector<int32_t>& positions) {
  LCLLM_ASSERT(masks.mask_of.empty() || masks.mask_of.size() == sets.size(), "one mask index per item");
  LCLLM_ASSERT(std::all_of(masks.on_device.begin(), masks.on_device.end(), [](int32_t r) { return r < 0; }),
               "HiP masks kept on a device cannot be expanded on the host");
  LCLLM_ASSERT(masks.shift.empty() || masks.shift.size() == masks.block_size.size(), "one shift per mask");
  LCLLM_ASSERT(std::all_of(masks.cache_row.begin(), masks.cache_row.end(), [](int32_t r) { return r < 0; }),
               "HiP masks cached on a device cannot be expanded on the host");
  indptr.assign(sets.size() + 1, 0);
  positions.clear();
  std::vector<int32_t> dilated;
  for (size_t item = 0; item < sets.size(); ++item) {
    const KeySet& s = sets[item];
    const int32_t m = masks.mask_of.empty() ? -1 : masks.mask_of[item];
    if (s.list == slot && slot >= 0 && m >= 0) {
      // Blocks ascending and disjoint, clipped below the tail [tail, hi) that follows them: already ascending and
      // distinct. Block b = keys [b * bs, (b + 1) * bs) (64-bit: bs may be huge).
      const int64_t bs = masks.block_size[size_t(m)];
      const int32_t tail = std::max(s.lo, std::min(s.hi, masks.all_from[size_t(m)]));
      const std::span<const int32_t> mine =
          masks.blocks.subspan(size_t(masks.indptr[size_t(m)]), size_t(masks.indptr[size_t(m) + 1] - masks.indptr[size_t(m)]));
      dilated.clear();
      hip_dilate_forward(mine, masks.shift.empty() ? 0 : masks.shift[size_t(m)], dilated);
      for (const int32_t block : dilated) {
        const int64_t b = block;
        const int64_t end = std::min<int64_t>((b + 1) * bs, tail);
        for (int64_t j = std::max<int64_t>(b * bs, s.lo); j < end; ++j) positions.push_back(int32_t(j));
      }
      for (int32_t j = tail; j < s.hi; ++j) positions.push_back(j);
    }
    indptr[item + 1] = int64_t(positions.size());
  }
}

}  // namespace lcllm
