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

namespace lcllm {

// What one attention call needs to find the keys of each sequence in the batch (plain data, no globals).
struct AttentionBatch {
  std::span<const int32_t> query_start;    // [n_seq + 1] rows of q belonging to each sequence
  std::span<const int32_t> query_pos;      // [n_tokens] absolute position of each query row
  std::span<const int32_t> kv_len;         // [n_seq] keys visible to the sequence after this step's writes
  const CsrPages* pages = nullptr;         // block tables of the n_seq sequences (CSR)
};

struct AttentionParams {
  float scale = 1.0f;        // softmax scale applied to q·k
  float softcap = 0.0f;      // 0: off; else s = cap·tanh(s/cap) after scaling
  int32_t sliding_window = 0;  // 0: full causal; W: keys j with pos - W < j <= pos
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
};

std::unique_ptr<Backend> backend_create_cpu(int32_t n_threads);

}  // namespace lcllm
