// The ops the forward pass calls. `cpu` (src/backend/cpu) and `cuda` (src/backend/cuda) implement the same
// signatures; src/runtime/forward.cpp is written once against this interface.
//
// Conventions: activations are row-major [n_tokens, features]; weights follow Hugging Face layout
// [out_features, in_features]; every op may be asynchronous until to_host().
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "attention/hip_mask.h"
#include "backend/tensor.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "kv/kv_cache.h"
#include "kv/kv_quant.h"
#include "kv/kv_rotation.h"
#include "kv/kv_window.h"
#include "lcllm/error.h"

namespace lcllm {

// The step's rows and block tables for one layer, already where the kernels run (the step plan's one upload,
// runtime/step_plan.h): a backend reads these instead of uploading the batch's arrays again for every layer.
// Null: not provided (direct calls from tests and tools; the backend then stages the batch itself).
struct AttentionRowsUploaded {
  const int32_t* row_seq = nullptr;       // [n_rows] sequence of each query row
  const int32_t* row_begin = nullptr;     // [n_rows] first key FULL lets the row see in this layer
  const int32_t* row_end = nullptr;       // [n_rows] one past the last
  const int32_t* page_indptr = nullptr;   // [n_seq + 1] the block tables, CSR
  const int32_t* page_indices = nullptr;  // [nnz]
  int32_t sliding_window = 0;             // the window row_begin/row_end were computed with (checked against params)
};

// What one attention call needs to find the keys of each sequence in the batch (plain data, no globals).
struct AttentionBatch {
  std::span<const int32_t> query_start;    // [n_seq + 1] rows of q belonging to each sequence
  std::span<const int32_t> query_pos;      // [n_tokens] absolute position of each query row
  std::span<const int32_t> kv_len;         // [n_seq] keys visible to the sequence after this step's writes
  const CsrPages* pages = nullptr;         // block tables of the n_seq sequences (CSR)
  // [n_seq] KvCache ids of the sequences: needed only by windowed KV heads (their rings are per sequence).
  std::span<const int32_t> seq_ids = {};
  AttentionRowsUploaded uploaded = {};     // the same rows and block tables on the backend, when the step has them
};

struct AttentionParams {
  float scale = 1.0f;        // softmax scale applied to q·k
  float softcap = 0.0f;      // 0: off; else s = cap·tanh(s/cap) after scaling
  int32_t sliding_window = 0;  // 0: full causal; W: keys j with pos - W < j <= pos
};

// The keys [lo, hi) FULL attention lets a query row at position `pos` see: causal, within the kv_len keys its
// sequence holds after this step's writes, and within the sliding window (0: none). The visible-key rule is written
// here only; the CPU and CUDA backends and the step plan all call it.
struct VisibleKeys {
  int32_t lo = 0, hi = 0;
};
inline VisibleKeys attention_visible_keys(int32_t pos, int32_t kv_len, int32_t sliding_window) {
  const int32_t lo = sliding_window > 0 ? std::max(0, pos - sliding_window + 1) : 0;
  return {lo, std::max(lo, std::min(pos + 1, kv_len))};
}

// One projection of matmul_group: out = x · wᵀ (+ bias).
struct MatmulTarget {
  Tensor out;   // [n, out_features]
  Tensor w;     // [out_features, in_features]
  Tensor bias;  // [out_features] or empty
};

// The keys one (query row, KV head) attends to in one layer: a key set of the step plan (src/runtime/step_plan.h),
// the ascending union
//     [lo, sink_end)  ∪  {j in list : sink_end <= j < recent_begin}  ∪  [recent_begin, hi)
// with lo <= sink_end <= recent_begin <= hi, all within what FULL lets the row see (attention_visible_keys).
// list = -1: no middle keys (a dense range is {lo, hi, hi, hi, -1}; sink + recent leaves the middle out); else the
// selection slot whose list for the same (row, KV head) supplies them — filled on the backend by an earlier layer's
// top-k (or, for HiP on the CPU, by the host), ascending. The attention op does not know which policy chose the set
// (ARCHITECTURE.md §4.2). Plain int32 fields: sets travel to the device as one array per step.
struct KeySet {
  int32_t lo = 0, sink_end = 0, recent_begin = 0, hi = 0;
  int32_t list = -1;
};
static_assert(sizeof(KeySet) == 5 * sizeof(int32_t), "KeySet is uploaded as plain int32 data");

// HiP's masks of one layer for a step (attention/hip_policy.h builds them): mask m = the key blocks
// blocks[indptr[m], indptr[m + 1]) (ascending, block_size[m] keys each) plus every key >= all_from[m]; item
// (row, KV head) i uses mask mask_of[i] (-1: none). The rows of one query block share a mask.
struct HipMaskLists {
  std::span<const int64_t> indptr;      // [n_masks + 1]
  std::span<const int32_t> blocks;      // [nnz]
  std::span<const int32_t> block_size;  // [n_masks]
  std::span<const int32_t> all_from;    // [n_masks]
  std::span<const int32_t> mask_of;     // [n_rows * n_kv_heads]
  // [n_masks] or empty: -1, or the index of the layer's attention_hip_blocks_device request whose blocks the mask is
  // (they stay where the backend computed them; the mask's CSR range is then empty).
  std::span<const int32_t> on_device;
  // [n_masks] or empty (all 0): a reused decode mask's forward dilation in blocks: each of its blocks b stands for
  // the blocks [b, b + shift] (attention/hip_policy.h hip_dilate_forward). The backend dilates, so a reused mask
  // uploads the blocks it was computed with, the same count every step.
  std::span<const int32_t> shift;
  // [n_masks] or empty: -1, or the row of the backend's cached decode masks (Backend::hip_cache_keep) whose blocks
  // the mask is (its CSR range is then empty).
  std::span<const int32_t> cache_row;
};

// One decode mask a sequence keeps on the backend for later steps: search request `request` of this layer's
// attention_hip_blocks_device becomes the cached mask of (seq, layer, kv_head).
struct HipCacheKeep {
  int32_t seq = 0, layer = 0, kv_head = 0, request = 0;
  bool stage = false;  // also keep the request's coarse stage (HipBlockRequest::stage_round) as the row's stage
};

// One layer's work for Backend::attention_key_sets; the pointers were returned by Backend::step_upload (host memory
// on the CPU, device memory on the GPU), so a layer asks the host nothing.
struct LayerKeySets {
  const KeySet* sets = nullptr;       // [n_rows * n_kv_heads]
  int32_t max_keys = 0;               // no set of the layer holds more keys (split planning on the GPU)
  int32_t work_keys = 0;              // the largest mean set size over one row's KV heads (balances the splits)
  // TidalDecode token selection (arXiv 2410.05076 §3.1): items (row, KV head) with select_k[item] > 0 also keep the
  // min(k, |set|) keys of their set with the largest summed probability over the GQA group (ties to the lower
  // position) and write them, ascending, to selection slot select_slot for later layers. A selecting item's set is
  // a range (FULL's keys).
  const int32_t* select_k = nullptr;  // [n_rows * n_kv_heads] or null: nothing selects
  int32_t select_slot = -1;
  // The rows whose sequences need their key sets (ascending, whole sequences), host and backend copies; empty: every
  // row. The other rows' sets are FULL's ranges: a backend may compute them as dense attention (the GPU: the prefill
  // kernel, as FULL would), so a prefill chunk batched with sparse decode rows costs what it costs under FULL.
  std::span<const int32_t> rows_host = {};
  const int32_t* rows = nullptr;
  // > 0: the key rows of each multi-row sequence (a prefill chunk) may be attended in tiles of consecutive rows
  // that stay inside aligned runs of this many rows from the chunk's first (HiP's query blocks: their rows share a
  // mask), because within such a run the sets share lo and sink_end and each row's list is the run's last row's list
  // cut at the row's hi (the GPU's prefill kernel then walks one set per tile, kernels/attention_prefill_wgmma.cu).
  // 0: every key row is attended on its own.
  int32_t prefill_tile_align = 0;
};

// HiP block indices per request, CSR (host memory; the CPU reference of the HiP search, E9 moves it to the GPU).
struct HipBlocks {
  std::vector<int64_t> indptr;  // [n_requests + 1]
  std::vector<int32_t> blocks;  // [nnz] ascending per request
  // The coarse stage of each request with stage_round >= 0 (hip_select_blocks_staged's *stage; empty when the
  // search ended before that round or was exact), CSR like the blocks; empty when no request asked for one.
  std::vector<int64_t> stage_indptr;  // [n_requests + 1] or empty
  std::vector<HipPiece> stage;        // [n_stage_pieces]
};

// One HiP mask estimate (arXiv 2406.09827 §3.1; src/attention/hip_mask.h): query rows [row_begin, row_end) of one
// sequence, KV head kv_head, candidate keys [lo, hi), budget k keys in blocks of block_size_k.
struct HipBlockRequest {
  int32_t row_begin = 0, row_end = 0;
  int32_t kv_head = 0;
  int32_t lo = 0, hi = 0;
  int32_t k = 0, block_size_k = 1;
  bool descent = false;  // the descent representative (hip_mask.h), else the centre
  // Stage-wise refresh (hip_mask.h hip_select_blocks_staged; attention/hip_policy.h): the search starts from the
  // pieces of an earlier search's coarse stage, each aged start_shift blocks (hip_dilate_pieces), instead of step 1's
  // chunks — given on the host (start) or, on a backend that keeps HiP masks (hip_cache_keep), as the stage kept in
  // cache row start_row; and stores its own pieces after stage_round rounds (-1: none) in HipBlocks::stage (a backend
  // may return none there: the CUDA backend keeps stages in its cache rows only), or for hip_cache_keep with stage
  // set. A start that is not the budget's keep pieces inside [lo, hi) is ignored (the search starts from step 1's
  // chunks).
  std::vector<HipPiece> start;
  int32_t start_row = -1;
  int32_t start_shift = 0;
  int32_t stage_round = -1;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // ---- memory ----
  // Makes a checkpoint tensor usable by the ops (CPU: a view into the mmap; CUDA: a bf16 copy on the device).
  virtual Tensor weight(const TensorView& view) = 0;
  // Whether weight() keeps reading the view's bytes (a zero-copy view), so their owner must keep them alive.
  virtual bool weights_alias_views() const { return true; }
  // Activation buffer, fp32 on the CPU, owned by the backend until it is destroyed.
  virtual Tensor alloc(std::initializer_list<int64_t> shape) = 0;
  // The paged KV pool: per layer K and V, each [n_pages, page_size, n_kv_heads, head_dim].
  virtual void kv_reserve(int32_t n_layers, int32_t n_pages, int32_t page_size, int32_t n_kv_heads,
                          int32_t head_dim) = 0;
  virtual void kv_copy_pages(std::span<const PageCopy> copies) = 0;
  // The precision K/V values are kept in (E11 item 3, --kv-cache-dtype; kv/kv_quant.h). The CPU stores fp32 and
  // emulates bf16 and fp8 exactly by rounding each vector at the write, as the GPU stores it; the GPU stores bf16 or
  // fp8 with per-vector scales. kv_set_dtype comes before kv_reserve and before the weights are bound (an fp8 cache
  // keeps Hadamard-rotated vectors, and model_weights_bind folds the rotation into o_proj; kv/kv_rotation.h); a
  // dtype the backend cannot keep throws.
  virtual bool kv_dtype_supported(KvDtype dtype) const { return dtype == kv_dtype(); }
  virtual void kv_set_dtype(KvDtype dtype) {
    if (!kv_dtype_supported(dtype)) {
      throw Error(ErrorKind::ERROR_KIND_UNSUPPORTED, std::string("the ") + name() + " backend cannot keep a " +
                                                         kv_dtype_name(dtype) + " KV cache");
    }
  }
  virtual KvDtype kv_dtype() const { return KvDtype::KV_DTYPE_F32; }
  // What the pool stores (its bytes per vector: kv_vector_bytes): fp32 on the CPU whatever it emulates.
  virtual KvDtype kv_storage_dtype() const { return KvDtype::KV_DTYPE_F32; }
  // Bytes a KV pool may still take (the GPU: under --gpu-memory-fraction); the CPU reports no limit.
  virtual size_t kv_budget_bytes() const { return SIZE_MAX; }
  virtual void to_host(const Tensor& t, float* dst, int64_t n) = 0;  // copies the first n elements
  virtual void synchronize() {}

  // ---- ops ----
  // out[i] = table[ids[i]] * scale.  out [n, hidden], table [vocab, hidden]
  virtual void embed(Tensor out, const Tensor& table, std::span<const int32_t> ids, float scale) = 0;
  // Row-wise RMSNorm over the last dim: out = x / rms(x) * (w or 1 + w).  x, out [rows, d], w [d]
  virtual void rmsnorm(Tensor out, const Tensor& x, const Tensor& w, float eps, bool one_plus) = 0;
  // x += y (residual add).  [n, d]
  virtual void add_inplace(Tensor x, const Tensor& y) = 0;
  // out = x · Wᵀ (+ bias).  x [n, in], W [out, in], bias [out] or empty, out [n, out]
  virtual void matmul(Tensor out, const Tensor& x, const Tensor& w, const Tensor& bias) = 0;
  // Rotary embedding in place, rotate-half layout (pairs i, i + d/2).  x [n, heads, head_dim]
  virtual void rope(Tensor x, std::span<const int32_t> positions, const RopeConfig& rope) = 0;
  // Writes this step's keys and values into their slots.  k, v [n, n_kv_heads, head_dim], slots [n]
  virtual void kv_write(int32_t layer, const Tensor& k, const Tensor& v, std::span<const int64_t> slots) = 0;
  // Causal attention over the paged cache, GQA.  q, out [n, n_heads, head_dim]
  virtual void attention(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                         const AttentionParams& params) = 0;
  // out = act(gate) * up.  gate, up, out [n, intermediate]
  virtual void glu(Tensor out, const Tensor& gate, const Tensor& up, Activation act) = 0;
  // x = cap·tanh(x/cap) elementwise.  [n, d]
  virtual void softcap(Tensor x, float cap) = 0;
  // Copies selected rows: out[i] = x[rows[i]].  x [n, d], out [rows.size(), d]
  virtual void gather_rows(Tensor out, const Tensor& x, std::span<const int32_t> rows) = 0;
  // Greedy decoding where the logits are: out[i] = the index of row i's largest value, lowest on ties, stored as a
  // float (exact: d < 2^24); -1 where the row holds a NaN or nothing above -inf (Sampler refuses both).
  // x [rows, d] fp32, out [rows] fp32
  virtual void argmax_rows(Tensor out, const Tensor& x) = 0;

  // ---- pipelined decoding (Engine::step_launch): the next step runs while the host has not yet read this one ----
  // embed() whose row i takes, where from_argmax[i] >= 0, the id argmax_rows left in argmax[from_argmax[i]] (by
  // the step before, still on the device) instead of ids[i]. The default reads the ids back first (in order, so
  // exact; no overlap).  out [n, d], ids [n], from_argmax [n], argmax [>= max(from_argmax) + 1] fp32
  virtual void embed_chained(Tensor out, const Tensor& table, std::span<const int32_t> ids,
                             std::span<const int32_t> from_argmax, const Tensor& argmax, float scale);
  // to_host() split in two: begin enqueues the copy of t's first n values after everything launched so far and
  // returns at once; end waits for it and returns the values. At most two copies are in flight; each begin is
  // ended exactly once, in order. The default copies at begin.
  struct HostCopy {
    int32_t ticket = -1;        // the backend's handle of the copy in flight (-1: none, values already read)
    std::vector<float> values;  // [n] once ended
  };
  virtual HostCopy to_host_begin(const Tensor& t, int64_t n) {
    HostCopy c;
    c.values.resize(size_t(n));
    to_host(t, c.values.data(), n);
    return c;
  }
  virtual void to_host_end(HostCopy& copy) { copy.ticket = -1; }

  // ---- fused ops: a backend may run each as one kernel; the defaults call the separate ops ----
  // Projections of one input (q/k/v, gate/up): targets[i].out = x · targets[i].wᵀ (+ bias).
  virtual void matmul_group(const Tensor& x, std::span<const MatmulTarget> targets) {
    for (const MatmulTarget& t : targets) matmul(t.out, x, t.w, t.bias);
  }
  // The sublayer input: targets[i].out = rmsnorm(x; norm_w) · targets[i].wᵀ (+ bias). normed [rows, d] is scratch a
  // backend may use for rmsnorm(x) (the CUDA decode GEMV normalises on the fly and leaves it untouched).
  virtual void norm_matmul_group(const Tensor& x, const Tensor& norm_w, float eps, bool one_plus, Tensor normed,
                                 std::span<const MatmulTarget> targets) {
    rmsnorm(normed, x, norm_w, eps, one_plus);
    matmul_group(normed, targets);
  }
  // The gated MLP's hidden activation: gate_up[0].out, gate_up[1].out = (rmsnorm(x; *norm_w) into normed when norm_w
  // is set, else x) · W_gateᵀ, · W_upᵀ (+ biases), then out = act(gate) ⊙ up. out is read by the next matmul only
  // (the down projection) and the gate / up outputs by nobody, so a backend may keep all three in the precision that
  // matmul reads: the CUDA backend keeps them in bf16 for GEMM-sized rows, as a bf16 model computes them, and then
  // leaves their fp32 tensors unwritten. x [rows, d], normed [rows, d], gate_up 2 targets, out [rows, intermediate]
  virtual void gated_mlp_hidden(const Tensor& x, const Tensor* norm_w, float eps, bool one_plus, Tensor normed,
                                std::span<const MatmulTarget> gate_up, Tensor out, Activation act) {
    if (norm_w != nullptr) {
      norm_matmul_group(x, *norm_w, eps, one_plus, normed, gate_up);
    } else {
      matmul_group(x, gate_up);
    }
    glu(out, gate_up[0].out, gate_up[1].out, act);
  }
  // The sublayer output added to the residual stream: x += y · wᵀ (+ bias). scratch [rows, out_features].
  virtual void matmul_residual(Tensor x, const Tensor& y, const Tensor& w, const Tensor& bias, Tensor scratch) {
    matmul(scratch, y, w, bias);
    add_inplace(x, scratch);
  }
  // x += y, then out = rmsnorm(x) (the residual add fused with the next sublayer's norm). out may alias y, not x.
  // x, y, out [rows, d], w [d]
  virtual void add_rmsnorm(Tensor x, const Tensor& y, Tensor out, const Tensor& w, float eps, bool one_plus) {
    add_inplace(x, y);
    rmsnorm(out, x, w, eps, one_plus);
  }
  // rope(q), rope(k) in place, then kv_write(layer, k, v, slots): k stays rotated in its buffer. Where the cache
  // keeps Hadamard-rotated vectors (kv_rotated(kv_dtype(), head_dim): fp8, kv/kv_rotation.h) q also leaves
  // multiplied by H, the query attention over such a cache takes (the CPU and CUDA backends override this).
  // q [n, n_heads, head_dim], k, v [n, n_kv_heads, head_dim], positions, slots [n]
  virtual void rope_kv_write(Tensor q, Tensor k, const Tensor& v, std::span<const int32_t> positions,
                             const RopeConfig& rope_config, int32_t layer, std::span<const int64_t> slots) {
    // This default leaves q unrotated: a backend whose cache rotates must override it (or attention would score
    // plain queries against rotated keys).
    LCLLM_ASSERT(!kv_rotated(kv_dtype(), int32_t(q.dim(2))), "rope_kv_write: this backend's cache rotates (fp8) but "
                                                             "the default leaves q unrotated");
    rope(q, positions, rope_config);
    rope(k, positions, rope_config);
    kv_write(layer, k, v, slots);
  }

  // ---- step boundaries ----
  // forward_step calls step_begin before a step's first op and step_end after its last op, before to_host.
  // decode_only: one query row per sequence, the steps a backend may record once and replay
  // (the CUDA backend's graphs); the CPU ignores both.
  virtual void step_begin(bool decode_only) { (void)decode_only; }
  virtual void step_end() {}
  // Where replayed decode steps spend their time (bench's "GPU busy" column): the host's time from step_begin to
  // the step's launch, and the device's time running it. Backends without recorded steps report zero steps.
  struct StepTiming {
    int64_t steps = 0;     // replayed steps whose device time is known
    double host_ms = 0;    // sum over them: step_begin to the launch (recording every op, signature, lookup)
    double device_ms = 0;  // sum over them: the step's graph on the device (events around the launch)
  };
  virtual StepTiming step_timing() { return {}; }

  // ---- sparse attention over key sets (docs/POLICIES.md; ARCHITECTURE.md §3, §4) ----
  // Engine::load refuses a plan whose policies the backend lacks, so a sparse plan never silently runs as FULL.
  virtual bool supports_key_sets() const { return false; }  // SELECT, SPARSE, STREAM
  virtual bool supports_hip() const { return false; }       // HIP (attention_hip_blocks + selection_write)
  // Copies a step's plain data (key sets, per-item k) to where the kernels run; the result stays valid until the
  // step ends. The CPU returns data.data() (the caller keeps the vector alive for the step).
  virtual const int32_t* step_upload(std::span<const int32_t> data) { return data.data(); }
  // The step's selection slots: n_slots slots of n_items lists of up to `stride` positions each (device buffers the
  // step owns; fixed sizes so that decode steps replay as graphs). Lists start empty.
  virtual void selection_reserve(int32_t n_slots, int32_t n_items, int32_t stride) {
    (void)n_slots, (void)n_items, (void)stride;
    throw_unsupported("selection_reserve");
  }
  // Attention of every (row, query head) over exactly the key set of (row, its KV head); softmax scale and softcap
  // as in attention(); params.sliding_window is ignored (the sets are final). An empty set gives a zero output row.
  // Then the layer's top-k selection, if keys.select_k is set.  q, out [n_rows, n_heads, head_dim]
  virtual void attention_key_sets(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                  const AttentionParams& params, const LayerKeySets& keys) {
    (void)out, (void)q, (void)layer, (void)batch, (void)params, (void)keys;
    throw_unsupported("attention_key_sets");
  }
  // Host lists into a slot (HiP's masks on the CPU): item i's list = positions[indptr[i] .. indptr[i + 1]), ascending.
  virtual void selection_write(int32_t slot, std::span<const int64_t> indptr, std::span<const int32_t> positions) {
    (void)slot, (void)indptr, (void)positions;
    throw_unsupported("selection_write");
  }
  // HiP lists expanded where the kernels run: item i with sets[i].list == slot and a mask gets mask mask_of[i]'s
  // block keys and the keys from its all_from on, within [sets[i].lo, sets[i].hi), ascending and distinct
  // (hip_expand_lists, attention/hip_policy.h, is the rule); other items get empty lists. sets: the layer's key sets
  // as step_upload returned them. False: not implemented here; the caller expands on the host and calls
  // selection_write.
  virtual bool selection_write_hip(int32_t slot, const HipMaskLists& masks, const KeySet* sets) {
    (void)slot, (void)masks, (void)sets;
    return false;
  }
  // A slot's lists on the host, CSR [n_items + 1] (tests, calibration; synchronises the GPU).
  virtual void selection_read(int32_t slot, std::vector<int64_t>& indptr, std::vector<int32_t>& positions) {
    (void)slot, (void)indptr, (void)positions;
    throw_unsupported("selection_read");
  }
  // HiP block selection: for every request, hip_select_blocks_staged over its keys (from its start pieces, storing
  // its stage: HipBlockRequest) with score(j) = the largest scaled logit q·k_j over the request's rows that may see j
  // (query_pos >= j) and the query heads of its KV head.
  // q [n, n_heads, head_dim]
  virtual void attention_hip_blocks(const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                    const AttentionParams& params, std::span<const HipBlockRequest> requests,
                                    HipBlocks& blocks) {
    (void)q, (void)layer, (void)batch, (void)params, (void)requests, (void)blocks;
    throw_unsupported("attention_hip_blocks");
  }
  // The same search with the blocks kept where they were computed, for this layer's selection_write_hip (masks
  // whose on_device entry names the request): nothing comes back to the host inside the step (ARCHITECTURE.md §3).
  // False: not implemented (the caller uses attention_hip_blocks).
  virtual bool attention_hip_blocks_device(const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                           const AttentionParams& params, std::span<const HipBlockRequest> requests) {
    (void)q, (void)layer, (void)batch, (void)params, (void)requests;
    return false;
  }

  // HiP decode masks that outlive a step, kept where the kernels run (ARCHITECTURE.md §3: per-sequence state as
  // device tensors): a step that searches for a mask later steps reuse copies the search's blocks into the
  // sequence's rows, and the steps that reuse it name the row (HipMaskLists::cache_row); nothing comes back to the
  // host, so those steps can be recorded too. A keep with stage set also keeps the request's coarse stage as the
  // row's stage, which a later search names as its start (HipBlockRequest::start_row); a row's stage stays until
  // another keep of it with stage set. False: the caller keeps host lists (attention_hip_blocks).
  virtual bool supports_hip_cache() const { return false; }
  // rows[i] = the row now holding keeps[i]'s blocks; a sequence's rows stay its own until hip_cache_release.
  virtual void hip_cache_keep(std::span<const HipCacheKeep> keeps, std::vector<int32_t>& rows) {
    (void)keeps, (void)rows;
    throw_unsupported("hip_cache_keep");
  }
  virtual void hip_cache_release(int32_t seq) { (void)seq; }

  // ---- windowed KV heads (retrieval / streaming heads; src/kv/kv_window.h) ----
  virtual bool supports_kv_window() const { return false; }
  // Called before kv_reserve: the layout's windowed heads then live in per-sequence rings and the page pool keeps
  // only the other heads.
  virtual void kv_window_configure(const KvWindowLayout& layout) {
    (void)layout;
    throw_unsupported("kv_window_configure");
  }
  virtual bool kv_window_active() const { return false; }
  // Writes the windowed heads' k, v of this step's tokens (token i = query row i of batch; batch.seq_ids set).
  virtual void kv_write_window(int32_t layer, const Tensor& k, const Tensor& v, const AttentionBatch& batch) {
    (void)layer, (void)k, (void)v, (void)batch;
    throw_unsupported("kv_write_window");
  }
  virtual void kv_window_fork(int32_t src_seq, int32_t dst_seq) { (void)src_seq, (void)dst_seq; }
  virtual void kv_window_release(int32_t seq) { (void)seq; }
  virtual size_t kv_window_bytes() const { return 0; }  // bytes the rings of live sequences hold now

 protected:
  [[noreturn]] void throw_unsupported(const char* op) const {
    throw Error(ErrorKind::ERROR_KIND_UNSUPPORTED, std::string(op) + " is not implemented on the " + name() +
                                                       " backend; use --device cpu or --policy full");
  }
};

std::unique_ptr<Backend> backend_create_cpu(int32_t n_threads);

inline void Backend::embed_chained(Tensor out, const Tensor& table, std::span<const int32_t> ids,
                                   std::span<const int32_t> from_argmax, const Tensor& argmax, float scale) {
  LCLLM_ASSERT(from_argmax.size() == ids.size(), "embed_chained: one from_argmax entry per id");
  int32_t rows = 0;
  for (int32_t f : from_argmax) rows = std::max(rows, f + 1);
  std::vector<float> previous(static_cast<size_t>(rows));  // [rows] the step before's argmax values
  if (rows > 0) to_host(argmax, previous.data(), rows);
  std::vector<int32_t> resolved(ids.begin(), ids.end());  // [n]
  for (size_t i = 0; i < ids.size(); ++i) {
    // -1 (the previous row's logits held a NaN) embeds id 0: the host ends that sequence when it reads the -1.
    if (from_argmax[i] >= 0) resolved[i] = std::max(0, int32_t(previous[size_t(from_argmax[i])]));
  }
  embed(out, table, resolved, scale);
}

}  // namespace lcllm
