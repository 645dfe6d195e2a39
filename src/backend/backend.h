// The ops the forward pass calls. `cpu` (src/backend/cpu) and `cuda` (src/backend/cuda) implement the same
// signatures; src/runtime/forward.cpp is written once against this interface.
//
// Conventions: activations are row-major [n_tokens, features]; weights follow Hugging Face layout
// [out_features, in_features]; every op may be asynchronous until to_host().
#pragma once
#include <cstdint>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/tensor.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "kv/kv_cache.h"
#include "kv/kv_window.h"
#include "lcllm/error.h"

namespace lcllm {

// What one attention call needs to find the keys of each sequence in the batch (plain data, no globals).
struct AttentionBatch {
  std::span<const int32_t> query_start;    // [n_seq + 1] rows of q belonging to each sequence
  std::span<const int32_t> query_pos;      // [n_tokens] absolute position of each query row
  std::span<const int32_t> kv_len;         // [n_seq] keys visible to the sequence after this step's writes
  const CsrPages* pages = nullptr;         // block tables of the n_seq sequences (CSR)
  // [n_seq] KvCache ids of the sequences: needed only by windowed KV heads (their rings are per sequence).
  std::span<const int32_t> seq_ids = {};
};

struct AttentionParams {
  float scale = 1.0f;        // softmax scale applied to q·k
  float softcap = 0.0f;      // 0: off; else s = cap·tanh(s/cap) after scaling
  int32_t sliding_window = 0;  // 0: full causal; W: keys j with pos - W < j <= pos
};

// One projection of matmul_group: out = x · wᵀ (+ bias).
struct MatmulTarget {
  Tensor out;   // [n, out_features]
  Tensor w;     // [out_features, in_features]
  Tensor bias;  // [out_features] or empty
};

// Key positions per (query row, KV head) for attention_indexed, in CSR form (host memory): the keys of row r and
// KV head h are positions[indptr[r * n_kv_heads + h] .. indptr[r * n_kv_heads + h + 1]), ascending, each within
// what FULL attention would let the row see. The op does not know which policy chose them (ARCHITECTURE.md §4.2).
struct KeyIndexLists {
  std::span<const int64_t> indptr;     // [n_rows * n_kv_heads + 1]
  std::span<const int32_t> positions;  // [nnz] absolute key positions in the row's sequence
};

// Output of attention_select_topk, same CSR layout as KeyIndexLists (host memory).
struct SelectedKeys {
  std::vector<int64_t> indptr;     // [n_rows * n_kv_heads + 1]
  std::vector<int32_t> positions;  // [nnz] ascending per (row, KV head)
};

// One HiP mask estimate (arXiv 2406.09827 §3.1; src/attention/hip_mask.h): query rows [row_begin, row_end) of one
// sequence, KV head kv_head, candidate keys [lo, hi), budget k keys in blocks of block_size_k.
struct HipBlockRequest {
  int32_t row_begin = 0, row_end = 0;
  int32_t kv_head = 0;
  int32_t lo = 0, hi = 0;
  int32_t k = 0, block_size_k = 1;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // ---- memory ----
  // Makes a checkpoint tensor usable by the ops (CPU: a view into the mmap; CUDA: a bf16 copy on the device).
  virtual Tensor weight(const TensorView& view) = 0;
  // Activation buffer, fp32 on the CPU, owned by the backend until it is destroyed.
  virtual Tensor alloc(std::initializer_list<int64_t> shape) = 0;
  // The paged KV pool: per layer K and V, each [n_pages, page_size, n_kv_heads, head_dim].
  virtual void kv_reserve(int32_t n_layers, int32_t n_pages, int32_t page_size, int32_t n_kv_heads,
                          int32_t head_dim) = 0;
  virtual void kv_copy_pages(std::span<const PageCopy> copies) = 0;
  virtual size_t kv_element_bytes() const { return sizeof(float); }  // fp32 on the CPU, bf16 on the GPU
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
  // rope(q), rope(k) in place, then kv_write(layer, k, v, slots): k stays rotated in its buffer.
  // q [n, n_heads, head_dim], k, v [n, n_kv_heads, head_dim], positions, slots [n]
  virtual void rope_kv_write(Tensor q, Tensor k, const Tensor& v, std::span<const int32_t> positions,
                             const RopeConfig& rope_config, int32_t layer, std::span<const int64_t> slots) {
    rope(q, positions, rope_config);
    rope(k, positions, rope_config);
    kv_write(layer, k, v, slots);
  }

  // ---- step boundaries ----
  // forward_step calls step_begin before a step's first op and step_end after its last op, before to_host.
  // decode_only: one query row per sequence and full attention, the steps a backend may record once and replay
  // (the CUDA backend's graphs); the CPU ignores both.
  virtual void step_begin(bool decode_only) { (void)decode_only; }
  virtual void step_end() {}

  // ---- sparse attention (E4 policy engine; docs/POLICIES.md) ----
  // Backends that implement the three ops below return true; Engine::load refuses a non-FULL plan otherwise, so
  // a sparse plan never silently runs as full attention.
  virtual bool supports_indexed_attention() const { return false; }
  // Attention of every (row, query head) over exactly the keys listed for (row, its KV head); softmax scale and
  // softcap as in attention(); params.sliding_window is ignored (the lists are final). An empty list gives a zero
  // output row.  q, out [n, n_heads, head_dim]
  virtual void attention_indexed(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                 const AttentionParams& params, const KeyIndexLists& keys) {
    (void)out, (void)q, (void)layer, (void)batch, (void)params, (void)keys;
    throw_unsupported("attention_indexed");
  }
  // Top-k key selection (TidalDecode token selection, arXiv 2410.05076 §3.1, per KV-head group): for every row r
  // and KV head h with k = k_per_row_head[r * n_kv_heads + h] > 0, scores every key the row sees under FULL rules
  // (causal, params.sliding_window), takes the softmax of each query head of h's group, sums the probabilities over
  // the group, and returns the min(k, visible) positions with the largest sums, ties to the lower position, listed
  // ascending. Rows/heads with k = 0 get empty lists.  q [n, n_heads, head_dim]
  virtual void attention_select_topk(const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                     const AttentionParams& params, std::span<const int32_t> k_per_row_head,
                                     SelectedKeys& selected) {
    (void)q, (void)layer, (void)batch, (void)params, (void)k_per_row_head, (void)selected;
    throw_unsupported("attention_select_topk");
  }
  // HiP block selection: for every request, hip_select_blocks over its keys with score(j) = the largest scaled
  // logit q·k_j over the request's rows that may see j (query_pos >= j) and the query heads of its KV head.
  // blocks: CSR [requests.size() + 1] of ascending block indices.  q [n, n_heads, head_dim]
  virtual void attention_hip_blocks(const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                    const AttentionParams& params, std::span<const HipBlockRequest> requests,
                                    SelectedKeys& blocks) {
    (void)q, (void)layer, (void)batch, (void)params, (void)requests, (void)blocks;
    throw_unsupported("attention_hip_blocks");
  }

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

}  // namespace lcllm
