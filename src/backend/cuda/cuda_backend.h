// The CUDA backend, first correct version (E3): the same ops as the CPU reference on one GPU.
//
// Storage: weights of 2+ dims are uploaded as bf16 (converted from F32/F16/BF16 on the device); 1-D weights
// (norms, biases) stay fp32 since they are tiny and feed fp32 math. Activations are fp32. GEMMs run through
// cublasGemmEx with bf16 operands (the activation is rounded to bf16 first) and fp32 accumulation and output.
// The KV pool is bf16 [n_pages, page_size, pool heads of the layer, head_dim] per layer, K and V (windowed heads
// live in rings, cuda_kv_window.cpp).
// Every op is enqueued on one stream; host index arrays (ids, positions, slots, CSR, ranges) go through a pinned
// staging ring that is only reused after the stream has passed the copies reading it.
#pragma once
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <cuda_runtime_api.h>

#include "backend/backend.h"
#include "backend/cuda/cuda_step_graphs.h"
#include "kernels/activation.h"
#include "kernels/attention.h"

struct cublasContext;  // cublas_v2.h's handle type, kept out of this header
struct cublasLtContext;  // cublasLt.h's handle type

namespace lcllm {

// A launch-parameter struct with every byte zero, padding included: enqueue() compares parameter structs byte by
// byte, so fields are assigned one by one onto this instead of brace-initialised (which leaves padding undefined).
template <class P>
P zeroed() {
  P p;
  std::memset(static_cast<void*>(&p), 0, sizeof p);
  return p;
}

// A device-to-device copy as an enqueued op (recorded into a step's graph like a kernel): moves staged bytes into a
// buffer that outlives the staging ring's next wrap (step_upload, the HiP search's requests).
struct DeviceCopyParams {
  void* dst;
  const void* src;
  size_t bytes;
};
void launch_device_copy(const DeviceCopyParams& p, cudaStream_t stream);

// device: CUDA device ordinal. gpu_memory_fraction (0, 1]: share of the card's total memory the process may hold
// once the KV pool is reserved (kv_reserve throws ERROR_KIND_OUT_OF_MEMORY beyond it). Throws lcllm::Error
// (ERROR_KIND_INVALID_ARGUMENT) when there is no such device or the fraction is out of range.
// cuda_graphs: record decode steps and replay them as CUDA graphs (off: vLLM's --enforce-eager).
std::unique_ptr<Backend> backend_create_cuda(int32_t device, float gpu_memory_fraction, bool cuda_graphs = true);
// False when LCLLM_CUDA_GRAPHS=0 is set: decode steps then run eagerly whatever the backend's setting.
bool cuda_graphs_env_enabled();
// True when the CUDA runtime sees at least one usable device (no driver, no device: false; never throws).
bool cuda_device_available();

// One attention call's rows, staged (cuda_attention.cpp): the kernels' common parameters plus what the caller needs.
// A HiP search's output on the device (kernels/attention_hip.h HipMaskParams::out_blocks / out_count).
struct HipDeviceMasks {
  const int32_t* blocks = nullptr;  // [n_requests, stride] ascending block indices
  const int32_t* count = nullptr;   // [n_requests] blocks kept
  const int32_t* stage = nullptr;        // [n_requests, 2 * stride] coarse stages (begin, end), or null: none asked
  const int32_t* stage_count = nullptr;  // [n_requests] pieces of each
  int32_t stride = 0;
  int32_t n_requests = 0;
};

struct CudaAttentionRows {
  AttentionCommon a;                   // pointers into the staged pack (device)
  int32_t max_span = 0;
  const int32_t* tile_row0 = nullptr;  // prefill tiles (when asked for)
  const int32_t* tile_rows = nullptr;
  int32_t n_tiles = 0;
  // With set_tile_align > 0: tiles of the key rows of multi-row sequences (key-set prefill tiles), and the other
  // key rows (one-row sequences), which the split-KV kernels take.
  const int32_t* set_tile_row0 = nullptr;
  const int32_t* set_tile_rows = nullptr;
  int32_t n_set_tiles = 0;
  const int32_t* single_key_rows = nullptr;
  int32_t n_single_key_rows = 0;
  const int32_t* span = nullptr;          // [n_rows] visible keys per row (when asked for)
  const int64_t* score_offset = nullptr;  // [n_rows] start of each row's [n_heads, span] scores
  int64_t score_elems = 0;                // sum over rows of n_heads * span
};

// Which attention kernel attention() runs. AUTO: decode kernel when every sequence has one query row this step,
// else the prefill kernel. Tests force each kernel on every shape.
enum class CudaAttentionKernel { CUDA_ATTENTION_AUTO, CUDA_ATTENTION_PREFILL, CUDA_ATTENTION_DECODE };

class CudaBackend final : public Backend {
 public:
  CudaBackend(int32_t device, float gpu_memory_fraction);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;
  std::string name() const override { return "cuda"; }

  Tensor weight(const TensorView& view) override;
  bool weights_alias_views() const override { return false; }  // weight() copies to the device
  Tensor alloc(std::initializer_list<int64_t> shape) override;
  void kv_reserve(int32_t n_layers, int32_t n_pages, int32_t page_size, int32_t n_kv_heads, int32_t head_dim) override;
  void kv_copy_pages(std::span<const PageCopy> copies) override;
  void to_host(const Tensor& t, float* dst, int64_t n) override;
  void synchronize() override;

  void embed(Tensor out, const Tensor& table, std::span<const int32_t> ids, float scale) override;
  void rmsnorm(Tensor out, const Tensor& x, const Tensor& w, float eps, bool one_plus) override;
  void add_inplace(Tensor x, const Tensor& y) override;
  void matmul(Tensor out, const Tensor& x, const Tensor& w, const Tensor& bias) override;
  // 1-4 rows: one GEMV launch for all targets (kernels/gemv.h); more rows: cuBLASLt per target.
  void matmul_group(const Tensor& x, std::span<const MatmulTarget> targets) override;
  // 1-4 rows: the GEMV with its RMSNorm prologue / residual epilogue (no norm or add kernel); else the defaults.
  void norm_matmul_group(const Tensor& x, const Tensor& norm_w, float eps, bool one_plus, Tensor normed,
                         std::span<const MatmulTarget> targets) override;
  void matmul_residual(Tensor x, const Tensor& y, const Tensor& w, const Tensor& bias, Tensor scratch) override;
  void rope(Tensor x, std::span<const int32_t> positions, const RopeConfig& rope) override;
  void kv_write(int32_t layer, const Tensor& k, const Tensor& v, std::span<const int64_t> slots) override;
  void attention(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                 const AttentionParams& params) override;
  void glu(Tensor out, const Tensor& gate, const Tensor& up, Activation act) override;
  // The kernels' name for a model's GLU activation.
  static GluActivation glu_activation(Activation act);
  // Whether gated_mlp_hidden keeps gate, up and the hidden activation in bf16 for `rows` rows: GEMM rows (more than
  // the decode GEMV's), two projections of one size divisible by 8, no biases. The bf16 emulation of the tests asks
  // the same question.
  static bool gated_mlp_in_bf16(int64_t rows, std::span<const MatmulTarget> gate_up);
  // Prefill rows: gate / up GEMMs with bf16 outputs and a bf16 GLU (cuda_matmul.cpp); decode rows: the defaults.
  void gated_mlp_hidden(const Tensor& x, const Tensor* norm_w, float eps, bool one_plus, Tensor normed,
                        std::span<const MatmulTarget> gate_up, Tensor out, Activation act) override;
  void softcap(Tensor x, float cap) override;
  void gather_rows(Tensor out, const Tensor& x, std::span<const int32_t> rows) override;
  void argmax_rows(Tensor out, const Tensor& x) override;
  void add_rmsnorm(Tensor x, const Tensor& y, Tensor out, const Tensor& w, float eps, bool one_plus) override;
  void rope_kv_write(Tensor q, Tensor k, const Tensor& v, std::span<const int32_t> positions,
                     const RopeConfig& rope_config, int32_t layer, std::span<const int64_t> slots) override;

  // Sparse attention over the step plan's key sets (cuda_sparse_attention.cpp): the decode kernels walk each
  // (row, kv head)'s set; SELECT stores scores, the merge the log2-sum-exp, and kernels/attention_select.cu keeps
  // the top-k in the step's slot buffers. HIP: kernels/attention_hip.cu estimates the masks on the GPU; they stay
  // there (attention_hip_blocks_device) unless a later step reuses them (attention_hip_blocks: host lists).
  bool supports_key_sets() const override { return true; }
  bool supports_hip() const override { return true; }
  const int32_t* step_upload(std::span<const int32_t> data) override;
  void selection_reserve(int32_t n_slots, int32_t n_items, int32_t stride) override;
  void attention_key_sets(Tensor out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                          const AttentionParams& params, const LayerKeySets& keys) override;
  void selection_read(int32_t slot, std::vector<int64_t>& indptr, std::vector<int32_t>& positions) override;
  // Host lists into a slot (synchronous): tests, and HiP's masks.
  void selection_write(int32_t slot, std::span<const int64_t> indptr, std::span<const int32_t> positions) override;
  void attention_hip_blocks(const Tensor& q, int32_t layer, const AttentionBatch& batch, const AttentionParams& params,
                            std::span<const HipBlockRequest> requests, HipBlocks& blocks) override;
  bool attention_hip_blocks_device(const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                   const AttentionParams& params, std::span<const HipBlockRequest> requests) override;
  bool selection_write_hip(int32_t slot, const HipMaskLists& masks, const KeySet* sets) override;
  bool supports_hip_cache() const override { return hip_cache_enabled_; }
  // Off: HiP keeps reused decode masks on the host, as before the cache (tests compare the two paths).
  void set_hip_cache_enabled(bool on) { hip_cache_enabled_ = on; }
  void hip_cache_keep(std::span<const HipCacheKeep> keeps, std::vector<int32_t>& rows) override;
  void hip_cache_release(int32_t seq) override;

  // Decode steps as CUDA graphs (cuda_step_graphs.cpp). Between step_begin(true) and step_end() no op launches:
  // each records its launch (closure) and its launch parameters (the step's signature); step_end replays the cached
  // graph of an equal signature, or captures one. LCLLM_CUDA_GRAPHS=0 in the environment turns graphs off.
  void step_begin(bool decode_only) override;
  void step_end() override;
  StepTiming step_timing() override;
  // Pipelined decode: a step recorded while the previous one is in flight stages into the other half of the ring
  // (so each half keeps one graph signature), and its argmax lands in a pinned slot of its own.
  void embed_chained(Tensor out, const Tensor& table, std::span<const int32_t> ids,
                     std::span<const int32_t> from_argmax, const Tensor& argmax, float scale) override;
  HostCopy to_host_begin(const Tensor& t, int64_t n) override;
  void to_host_end(HostCopy& copy) override;
  void set_graphs_enabled(bool on) { graphs_enabled_ = on; }
  const StepGraphStats& graph_stats() const { return graphs_.stats(); }

  // ---- for tests and tools ----
  // Copies n fp32 values from the host into an fp32 tensor (synchronous).
  void from_host(Tensor t, const float* src, int64_t n);
  // The whole K or V pool of a layer as fp32, [n_pages * page_size, pool heads of the layer, head_dim].
  std::vector<float> kv_read(int32_t layer, bool value);
  void set_attention_kernel(CudaAttentionKernel k) { attention_kernel_ = k; }
  // Bytes the KV pool may still take under gpu_memory_fraction, given what is allocated now.
  size_t kv_budget_bytes() const override;
  // Windowed KV heads (src/kv/kv_window.h; cuda_kv_window.cpp): the pool of each layer stores only its other heads;
  // windowed heads live in a slab of per-sequence rings, one ring per live sequence, at most
  // KvWindowLayout::max_sequences at once.
  bool supports_kv_window() const override { return true; }
  void kv_window_configure(const KvWindowLayout& layout) override;
  bool kv_window_active() const override { return !window_.empty(); }
  void kv_write_window(int32_t layer, const Tensor& k, const Tensor& v, const AttentionBatch& batch) override;
  void kv_window_fork(int32_t src_seq, int32_t dst_seq) override;
  void kv_window_release(int32_t seq) override;
  size_t kv_window_bytes() const override;
  // bf16, or fp8 e4m3 with one scale pair per (slot, KV head) (kv/kv_quant.h; E11 item 3). Before kv_reserve.
  bool kv_dtype_supported(KvDtype dtype) const override {
    return dtype == KvDtype::KV_DTYPE_BF16 || dtype == KvDtype::KV_DTYPE_FP8_E4M3;
  }
  void kv_set_dtype(KvDtype dtype) override;
  KvDtype kv_dtype() const override { return kv_dtype_; }
  KvDtype kv_storage_dtype() const override { return kv_dtype_; }
  cudaStream_t stream() const { return stream_; }

 private:
  // Copies host bytes to the device through the staging ring; the pointer is valid for work enqueued next.
  // An op that stages several arrays calls stage_reserve with all their sizes first, so no later stage() of the
  // same op wraps the ring (or regrows it) under an array already staged.
  const void* stage(const void* src, size_t bytes);
  void stage_reserve(std::initializer_list<size_t> bytes);
  template <class T>
  const T* stage(std::span<const T> s) {
    return static_cast<const T*>(stage(s.data(), s.size_bytes()));
  }
  // matmul() keeps the bf16 copy of its last fp32 input: q/k/v (and gate/up) read the same normed rows, so the
  // conversion runs once for them. Every other op may write any buffer, so it forgets the copy first.
  void forget_converted() { converted_src_ = nullptr; }
  // Launches now, or, inside a recorded step, appends the launch to the step (and its parameter bytes to the
  // step's signature). P must be built from zeroed<P>() so its padding bytes compare equal.
  template <class P>
  void enqueue(void (*launch)(const P&, cudaStream_t), const P& params) {
    if (!recording_) {
      launch(params, stream_);
      return;
    }
    sign(&launch, sizeof launch);
    sign(&params, sizeof params);
    recorded_.push_back([this, launch, params] { launch(params, stream_); });
  }
  void sign(const void* bytes, size_t n) {
    const auto* b = static_cast<const uint8_t*>(bytes);
    signature_.insert(signature_.end(), b, b + n);
  }
  // Inside a recorded step: uploads the staged bytes and launches what was recorded, then runs the rest of the
  // step eagerly (needed before anything that syncs, frees or re-uses device memory). No-op otherwise.
  void flush_recorded();
  void upload_staged(size_t begin, size_t end);  // one H2D copy of the ring's bytes [begin, end)
  // cuBLASLt matmul of cuda_matmul.cpp (bias fused as the epilogue when cuBLASLt has an algorithm for it).
  void matmul_init();  // cuBLASLt handle, GEMM workspace, plan cache
  // The GEMV launch behind matmul_group / norm_matmul_group / matmul_residual / gated_mlp_hidden; false when the
  // shape is not a GEMV shape (then nothing was enqueued). glu: targets are (gate, up) and only act(gate) * up is
  // written, to glu->out [rows, n_out] (GemvParams::glu).
  struct GemvGlu {
    Tensor out;
    Activation act;
  };
  bool gemv(const Tensor& x, std::span<const MatmulTarget> targets, const Tensor* norm_w, float eps, bool one_plus,
            bool accumulate, const GemvGlu* glu = nullptr);
  // out = x · wᵀ (+ bias) through cuBLAS (a GEMV where that applies and not accumulating); accumulate: out += x · wᵀ
  // in the GEMM's epilogue (no bias). Converts x to bf16 unless its copy is already in scratch slot 0. out_bf16: the
  // product is written there as bf16 instead of into out (no bias, no accumulate; out only gives the shape).
  void gemm(Tensor out, const Tensor& x, const Tensor& w, const Tensor& bias, bool accumulate,
            uint16_t* out_bf16 = nullptr);
  // rmsnorm(); bf16_copy also leaves out's bf16 copy in scratch slot 0 for the GEMMs that read out next.
  void rmsnorm_into(Tensor out, const Tensor& x, const Tensor& w, float eps, bool one_plus, bool bf16_copy);
  // Stages an attention call's rows and block tables (prefill tiles, row spans and score offsets on request).
  // key_rows (ascending; empty: every row) splits the rows: prefill tiles cover the other sequences' rows only, and
  // only key rows get score spans. set_tile_align > 0 also tiles the key rows of multi-row sequences in runs that
  // stay inside aligned blocks of that many rows (LayerKeySets::prefill_tile_align).
  CudaAttentionRows attention_rows(const Tensor& out, const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                   const AttentionParams& params, bool prefill_tiles, bool row_spans,
                                   std::span<const int32_t> key_rows = {}, int32_t set_tile_align = 0);
  // Prefill kernel parameters over the staged rows' tiles.
  static PrefillParams prefill_params(const CudaAttentionRows& rows);
  // Split-KV decode parameters for n_rows rows (the launch's), keys up to max_keys per (row, kv head) and work_keys
  // per row and kv head on average (the busiest row), partial buffers from scratch.
  // stores_scores: a SELECT layer's launch (it runs the CUDA-core kernel, which stores the scores top-k reads).
  DecodeParams decode_params(const AttentionCommon& a, int32_t n_rows, int32_t max_keys, int32_t work_keys,
                             bool stores_scores = false);
  void* device_alloc(size_t bytes, const char* what);  // tracked, freed in the destructor; throws on OOM
  // Grow-only scratch buffer `slot` (see kScratch* in cuda_backend.cpp); growing waits for the stream first.
  void* scratch(size_t bytes, int slot);
  const float* rope_table(const RopeConfig& rope, int32_t head_dim);
  // One store of a layer: n units (pages of the pool, or sequences' rings) laid out K | V | scales
  // (KvLayout::page_bytes, page_scale_bytes): k, v [n * page_size, heads, head_dim] of the dtype; scale
  // [n * page_size, heads] uint16 K exponent | V exponent << 8 for fp8, else null.
  struct KvStore {
    void* k;
    void* v;
    uint16_t* scale;
    KvLayout layout;
  };
  static KvStore kv_store(uint8_t* base, const KvLayout& layout, int64_t n_units);
  // Copies unit src to unit dst (a page, or one sequence's ring) in each region of the store.
  void kv_copy_unit(const KvStore& store, int64_t src, int64_t dst);
  KvStore pool_store(int32_t layer) const;  // the layer's page pool
  // The page pool's layout of a layer: its non-windowed heads only.
  KvLayout kv_layout(int32_t layer) const;
  // True when some KV head of the layer keeps a ring (only the decode kernels read those layers).
  bool has_ring_heads(int32_t layer) const { return !window_.empty() && window_.windowed_heads(layer) > 0; }
  // Where each KV head of a layer lives (AttentionCommon::kv_index / ring_heads).
  void kv_head_map(int32_t layer, int8_t (&kv_index)[64], uint64_t& ring_heads) const;
  // Rings (cuda_kv_window.cpp): the layer's ring slab, its layout (page_size = ring_len), a sequence's ring.
  KvStore ring_store(int32_t layer) const;  // the layer's slab of ring_capacity_ rings
  KvLayout ring_layout(int32_t layer) const;
  int32_t ring_of(int32_t seq);  // assigns a free ring on first use; throws ERROR_KIND_OUT_OF_MEMORY when none is
  size_t ring_slab_bytes() const;

  // Scratch slots: 0 bf16 copy of a matmul input, 1-2 decode partials (o; max, sum), 3 temporaries of small ops,
  // 4-5 the step's selection slots (positions; counts), 6-8 top-k input (scores; group mass; log2-sum-exp),
  // 9 the step's uploaded plan data (step_upload), 10-12 HiP masks (blocks; counts; requests and query positions),
  // 13 HiP's masks uploaded for list expansion, 14 its overflow flag, 15 HiP coarse stages (pieces; counts), 16 the
  // MLP's bf16 gate and up projections (gated_mlp_hidden).
  static constexpr int kScratchDecodeO = 1, kScratchDecodeMl = 2;
  static constexpr int kScratchSelPositions = 4, kScratchSelCount = 5, kScratchScores = 6, kScratchMass = 7,
                       kScratchLse = 8, kScratchStepData = 9, kScratchHipBlocks = 10, kScratchHipCount = 11, kScratchHipInputs = 12,
                       kScratchHipLists = 13, kScratchHipOverflow = 14, kScratchHipStage = 15, kScratchGateUp = 16;
  static constexpr int kScratchSlots = 17;
  int32_t sel_slots_ = 0, sel_items_ = 0, sel_stride_ = 0;  // shape of the step's selection slots
  // Throws when a HiP list written since the last check was cut at the slot's stride (call after a synchronise).
  void check_hip_overflow();
  // Enqueues the HiP search of `requests`; its blocks stay in scratch until the next search.
  HipDeviceMasks hip_search(const Tensor& q, int32_t layer, const AttentionBatch& batch, const AttentionParams& params,
                            std::span<const HipBlockRequest> requests);
  HipDeviceMasks hip_device_;  // the last search's output, for selection_write_hip's on_device masks
  // HiP decode masks sequences keep for later steps (hip_cache_keep): n_layers x n_kv_heads rows per sequence, each
  // of hip_cache_stride_ blocks; both grow (rows copied, graphs dropped) when a sequence or a larger mask needs it.
  bool hip_cache_enabled_ = true;
  int32_t* hip_cache_blocks_ = nullptr;  // [hip_cache_rows_, hip_cache_stride_]
  int32_t* hip_cache_count_ = nullptr;   // [hip_cache_rows_]
  int32_t* hip_cache_stage_ = nullptr;        // [hip_cache_rows_, 2 * hip_cache_stride_] coarse stages (begin, end)
  int32_t* hip_cache_stage_count_ = nullptr;  // [hip_cache_rows_] pieces of each (0: none)
  int32_t hip_cache_rows_ = 0, hip_cache_stride_ = 0;
  int32_t hip_cache_next_ = 0;                   // rows handed out so far (the next new sequence's first row)
  std::map<int32_t, int32_t> hip_cache_base_;    // sequence id -> its first row
  std::vector<int32_t> hip_cache_free_;          // first rows of released sequences
  void hip_cache_resize(int32_t rows, int32_t stride);  // keeps every row's blocks and count
  bool hip_overflow_armed_ = false;  // the flag in scratch slot 14 is initialised
  const void* converted_src_ = nullptr;  // fp32 input whose bf16 copy sits in scratch slot 0
  int64_t converted_n_ = 0;
  int32_t device_ = 0;
  float memory_fraction_ = 0.9f;
  cudaStream_t stream_ = nullptr;
  cublasContext* cublas_ = nullptr;
  cublasLtContext* cublas_lt_ = nullptr;
  void* gemm_workspace_ = nullptr;  // cuBLAS(Lt) workspace: fixed, so GEMMs can be captured into graphs
  std::unique_ptr<struct MatmulPlans> matmul_plans_;  // cuBLASLt descriptors per GEMM shape (cuda_matmul.cpp)

  // Recorded step (see step_begin).
  bool graphs_enabled_ = true;
  bool recording_ = false;
  size_t step_stage_begin_ = 0;  // ring offset of the step's first staged byte
  std::vector<std::function<void()>> recorded_;
  std::vector<uint8_t> signature_;
  StepGraphCache graphs_;
  StepTimer step_timer_;
  std::vector<void*> allocations_;

  // Staging ring: pinned host bytes and their device mirror, used front to back; wrapping waits for the stream.
  uint8_t* staging_host_ = nullptr;
  uint8_t* staging_dev_ = nullptr;
  size_t staging_cap_ = 0, staging_used_ = 0;
  size_t staging_limit_ = 0;  // stage_reserve wraps beyond this: staging_cap_, or the half a chained step owns
  size_t staging_region_ = 0;  // ring bytes from here to staging_used_ may be read by work still in flight
  void chain_staging();        // step_begin while a step's outputs are in flight (see there)
  void embed_rows(Tensor out, const Tensor& table, std::span<const int32_t> ids, std::span<const int32_t> from_argmax,
                  const float* argmax, float scale);

  // to_host_begin's copies in flight (at most two: the step the host waits for and the one launched after it).
  struct HostCopySlot {
    float* pinned = nullptr;  // [cap] page-locked, what the copy lands in
    int64_t cap = 0;
    cudaEvent_t done = nullptr;  // recorded after the copy
    bool busy = false;
  };
  HostCopySlot host_copies_[2];
  int32_t next_host_copy_ = 0;  // tickets count up; a ticket's slot is ticket % 2

  // Arrays staged since the ring was last reset, with their bytes, for stage() to reuse (see there).
  struct StagedArray {
    std::vector<uint8_t> bytes;
    size_t offset = 0;  // in the ring
  };
  static constexpr size_t kStagedMemoEntries = 8, kStagedMemoMaxBytes = size_t(1) << 20;
  std::vector<StagedArray> staged_recent_;

  void* scratch_[kScratchSlots] = {};
  size_t scratch_bytes_[kScratchSlots] = {};

  // RoPE inverse-frequency tables, one per (config, head_dim).
  std::map<std::tuple<int, double, double, double, double, int64_t, int32_t>, float*> rope_tables_;

  // KV pool: one allocation, per layer K then V, each [n_pages * page_size, pool_heads_[layer], head_dim] of
  // kv_dtype_, then (fp8) the scale pairs [n_pages * page_size, pool_heads_[layer]] uint16.
  KvDtype kv_dtype_ = KvDtype::KV_DTYPE_BF16;
  uint8_t* kv_pool_ = nullptr;
  int32_t n_layers_ = 0, n_pages_ = 0, page_size_ = 0, n_kv_heads_ = 0, head_dim_ = 0;
  std::vector<int32_t> pool_heads_;   // [n_layers] heads each layer keeps in the pool
  std::vector<size_t> pool_offset_;   // [n_layers] byte offset of the layer's K in kv_pool_ (V, then scales follow)
  std::vector<int8_t> head_index_;    // [n_layers * n_kv_heads] index of each head in its store (pool or ring)
  // Windowed heads: the layout, and one allocation of rings, per layer K then V, each
  // [ring_capacity_ * ring_len, windowed heads of the layer, head_dim] of kv_dtype_, then (fp8) their scale pairs.
  KvWindowLayout window_;
  uint8_t* kv_ring_ = nullptr;
  int32_t ring_capacity_ = 0;
  std::vector<size_t> ring_offset_;   // [n_layers] byte offset of the layer's ring K in kv_ring_ (V, scales follow)
  std::unordered_map<int32_t, int32_t> ring_of_seq_;  // KvCache sequence -> its ring
  std::vector<int32_t> free_rings_;
  CudaAttentionKernel attention_kernel_ = CudaAttentionKernel::CUDA_ATTENTION_AUTO;
};

}  // namespace lcllm
