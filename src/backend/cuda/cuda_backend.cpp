// Memory management and the elementwise ops of the CUDA backend (matmul and attention have their own files).
#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <cstring>

#include <cublasLt.h>
#include <cublas_v2.h>

#include "backend/cuda/cuda_matmul_plans.h"

#include "backend/rope_freq.h"
#include "kernels/activation.h"
#include "kernels/argmax.h"
#include "kernels/attention.h"
#include "kernels/convert.h"
#include "kernels/cuda_check.h"
#include "kernels/embed.h"
#include "kernels/gemv.h"
#include "kernels/kv_write.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/rope_kv_write.h"
#include "lcllm/error.h"

namespace lcllm {

namespace {

constexpr size_t kStagingInitialBytes = size_t(4) << 20;
constexpr size_t kStagingAlign = 256;

ElemType elem_type(DType t) {
  switch (t) {
    case DType::DTYPE_F32: return ElemType::ELEM_F32;
    case DType::DTYPE_F16: return ElemType::ELEM_F16;
    case DType::DTYPE_BF16: return ElemType::ELEM_BF16;
  }
  LCLLM_ASSERT(false, "unknown dtype");
  return ElemType::ELEM_F32;
}

void expect_f32(const Tensor& t, const char* what) {
  LCLLM_ASSERT(t.dtype == DType::DTYPE_F32, what);
}

int64_t last_dim(const Tensor& t) { return t.shape[size_t(t.ndim - 1)]; }

}  // namespace

bool cuda_device_available() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) (void)cudaGetLastError();
  return err == cudaSuccess && count > 0;
}

std::unique_ptr<Backend> backend_create_cuda(int32_t device, float gpu_memory_fraction, bool cuda_graphs) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    (void)cudaGetLastError();
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                std::string("device 'cuda' requested but no CUDA device is usable (") +
                    (err != cudaSuccess ? cudaGetErrorString(err) : "0 devices") + "); use --device cpu");
  }
  if (device < 0 || device >= count) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "CUDA device " + std::to_string(device) +
                                                            " does not exist (this machine has " +
                                                            std::to_string(count) + ")");
  }
  if (!(gpu_memory_fraction > 0.f && gpu_memory_fraction <= 1.f)) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "--gpu-memory-fraction must be in (0, 1], got " + std::to_string(gpu_memory_fraction));
  }
  auto backend = std::make_unique<CudaBackend>(device, gpu_memory_fraction);
  backend->set_graphs_enabled(cuda_graphs);
  return backend;
}

CudaBackend::CudaBackend(int32_t device, float gpu_memory_fraction)
    : device_(device), memory_fraction_(gpu_memory_fraction) {
  CUDA_CHECK(cudaSetDevice(device_));
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  LCLLM_ASSERT(cublasCreate(&cublas_) == CUBLAS_STATUS_SUCCESS, "cublasCreate failed");
  LCLLM_ASSERT(cublasSetStream(cublas_, stream_) == CUBLAS_STATUS_SUCCESS, "cublasSetStream failed");
  staging_cap_ = staging_limit_ = kStagingInitialBytes;
  CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&staging_host_), staging_cap_));
  CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&staging_dev_), staging_cap_));
  matmul_init();
}

CudaBackend::~CudaBackend() {
  cudaSetDevice(device_);
  cudaStreamSynchronize(stream_);
  graphs_.clear();
  for (HostCopySlot& c : host_copies_) {
    if (c.pinned != nullptr) cudaFreeHost(c.pinned);
    if (c.done != nullptr) cudaEventDestroy(c.done);
  }
  matmul_plans_.reset();
  if (cublas_lt_) cublasLtDestroy(cublas_lt_);
  cudaFree(gemm_workspace_);
  for (void* p : allocations_) cudaFree(p);
  for (void* p : scratch_) cudaFree(p);
  for (auto& [key, p] : rope_tables_) cudaFree(p);
  cudaFree(kv_pool_);
  cudaFree(kv_ring_);
  cudaFree(hip_cache_blocks_);
  cudaFree(hip_cache_count_);
  cudaFree(hip_cache_stage_);
  cudaFree(hip_cache_stage_count_);
  cudaFree(staging_dev_);
  cudaFreeHost(staging_host_);
  cublasDestroy(cublas_);
  cudaStreamDestroy(stream_);
}

// ---- memory ----------------------------------------------------------------------------------------------------

void* CudaBackend::device_alloc(size_t bytes, const char* what) {
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, std::max<size_t>(bytes, 1));
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    throw Error(ErrorKind::ERROR_KIND_OUT_OF_MEMORY,
                std::string("GPU out of memory allocating ") + what + " (" + std::to_string(bytes >> 20) +
                    " MiB, " + std::to_string(free_b >> 20) + " MiB free of " + std::to_string(total_b >> 20) + ")");
  }
  allocations_.push_back(p);
  return p;
}

void* CudaBackend::scratch(size_t bytes, int slot) {
  LCLLM_ASSERT(slot >= 0 && slot < kScratchSlots, "bad scratch slot");
  if (bytes > scratch_bytes_[slot]) {
    flush_recorded();  // recorded launches hold the old pointer
    graphs_.clear();   // so do captured graphs
    CUDA_CHECK(cudaStreamSynchronize(stream_));  // earlier work may still read the old buffer
    CUDA_CHECK(cudaFree(scratch_[slot]));
    const size_t grown = std::max(bytes, scratch_bytes_[slot] * 2);
    CUDA_CHECK(cudaMalloc(&scratch_[slot], grown));
    scratch_bytes_[slot] = grown;
  }
  return scratch_[slot];
}

namespace {
size_t staged_size(size_t bytes) { return (bytes + kStagingAlign - 1) / kStagingAlign * kStagingAlign; }
}  // namespace

void CudaBackend::stage_reserve(std::initializer_list<size_t> bytes) {
  size_t need = 0;
  for (size_t b : bytes) need += staged_size(b);
  if (staging_used_ + need <= staging_limit_) return;
  flush_recorded();  // the recorded launches read the ring's current bytes
  // Every earlier copy out of the ring (and every kernel reading its device side) must be done before reuse.
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  staging_used_ = staging_region_ = 0;
  staging_limit_ = staging_cap_;
  staged_recent_.clear();
  if (need > staging_cap_) {
    graphs_.clear();  // graphs copy from and read the old ring
    CUDA_CHECK(cudaFreeHost(staging_host_));
    CUDA_CHECK(cudaFree(staging_dev_));
    staging_cap_ = staging_limit_ = std::max(need, staging_cap_ * 2);
    CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&staging_host_), staging_cap_));
    CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&staging_dev_), staging_cap_));
  }
}

const void* CudaBackend::stage(const void* src, size_t bytes) {
  if (bytes == 0) return staging_dev_;
  // Every layer of a step stages the same positions, slots and block tables: reuse an upload of equal bytes made
  // earlier in this ring generation (it precedes, in stream order, whatever reads it next) instead of another H2D
  // copy. 32 layers x 3-4 arrays per decode step become one copy each.
  if (bytes <= kStagedMemoMaxBytes) {
    for (const StagedArray& a : staged_recent_) {
      if (a.bytes.size() == bytes && std::memcmp(a.bytes.data(), src, bytes) == 0) return staging_dev_ + a.offset;
    }
  }
  stage_reserve({bytes});
  std::memcpy(staging_host_ + staging_used_, src, bytes);
  uint8_t* dst = staging_dev_ + staging_used_;
  // A recorded step uploads all its staged bytes in one copy when it runs (step_end).
  if (!recording_) upload_staged(staging_used_, staging_used_ + bytes);
  if (bytes <= kStagedMemoMaxBytes) {
    if (staged_recent_.size() == kStagedMemoEntries) staged_recent_.erase(staged_recent_.begin());
    const auto* p = static_cast<const uint8_t*>(src);
    staged_recent_.push_back({std::vector<uint8_t>(p, p + bytes), staging_used_});
  }
  staging_used_ += staged_size(bytes);
  return dst;
}

Tensor CudaBackend::weight(const TensorView& view) {
  flush_recorded();
  // Matrices (and the embedding table) in bf16; 1-D norm weights and biases in fp32.
  Tensor t = tensor_of_shape(view.shape.size() >= 2 ? DType::DTYPE_BF16 : DType::DTYPE_F32, view.shape);
  const int64_t n = t.numel();
  t.data = device_alloc(size_t(n) * dtype_size(t.dtype), view.name.c_str());
  if (view.dtype == t.dtype) {
    CUDA_CHECK(cudaMemcpyAsync(t.data, view.data, view.nbytes, cudaMemcpyHostToDevice, stream_));
  } else {
    void* raw = nullptr;
    CUDA_CHECK(cudaMalloc(&raw, view.nbytes));
    CUDA_CHECK(cudaMemcpyAsync(raw, view.data, view.nbytes, cudaMemcpyHostToDevice, stream_));
    launch_convert({t.data, raw, n, elem_type(t.dtype), elem_type(view.dtype)}, stream_);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    CUDA_CHECK(cudaFree(raw));
  }
  CUDA_CHECK(cudaStreamSynchronize(stream_));  // the source may be an mmap the caller unmaps later
  return t;
}

Tensor CudaBackend::alloc(std::initializer_list<int64_t> shape) {
  flush_recorded();
  Tensor t = tensor_of_shape(DType::DTYPE_F32, std::span<const int64_t>(shape.begin(), shape.size()));
  const size_t bytes = size_t(t.numel()) * sizeof(float);
  t.data = device_alloc(bytes, "activation buffer");
  CUDA_CHECK(cudaMemsetAsync(t.data, 0, bytes, stream_));
  return t;
}

size_t CudaBackend::kv_budget_bytes() const {
  size_t free_b = 0, total_b = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  const double allowed = double(memory_fraction_) * double(total_b);
  const double used = double(total_b - free_b);
  // The rings of windowed heads come out of the same budget, before the pool is sized from what is left.
  const double rings = kv_ring_ ? 0.0 : double(ring_slab_bytes());
  return allowed > used + rings ? size_t(allowed - used - rings) : 0;
}

void CudaBackend::kv_reserve(int32_t n_layers, int32_t n_pages, int32_t page_size, int32_t n_kv_heads,
                             int32_t head_dim) {
  LCLLM_ASSERT(head_dim % 2 == 0 && head_dim <= kAttentionMaxHeadDim, "head_dim must be even and <= 256");
  LCLLM_ASSERT(n_kv_heads <= kAttentionMaxKvHeads, "more KV heads per layer than the kernels' head map holds");
  LCLLM_ASSERT(window_.empty() || (window_.n_layers == n_layers && window_.n_kv_heads == n_kv_heads &&
                                    window_.head_dim == head_dim),
               "the window layout does not match the KV pool");
  flush_recorded();
  graphs_.clear();  // graphs point into the pool
  if (kv_pool_ || kv_ring_) {
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    if (kv_pool_) CUDA_CHECK(cudaFree(kv_pool_));
    if (kv_ring_) CUDA_CHECK(cudaFree(kv_ring_));
    kv_pool_ = kv_ring_ = nullptr;
  }
  n_layers_ = n_layers;
  n_pages_ = n_pages;
  page_size_ = page_size;
  n_kv_heads_ = n_kv_heads;
  head_dim_ = head_dim;
  // Per layer: pool heads first-come in head order, windowed heads likewise in the ring (the CPU's numbering).
  pool_heads_.assign(size_t(n_layers), 0);
  head_index_.assign(size_t(n_layers) * size_t(n_kv_heads), 0);
  pool_offset_.assign(size_t(n_layers), 0);
  ring_offset_.assign(size_t(n_layers), 0);
  // Per layer K, V (kv_vector_bytes per (slot, head) each, fp8 scales counted there) laid out as K | V | scales,
  // each layer's share rounded up to 256 bytes: the next layer's pools stay aligned for 16-byte copies, and the
  // decode kernel's 4-byte read of the word holding the last scale pair stays inside the allocation.
  const size_t vector_bytes = size_t(kv_vector_bytes(kv_dtype_, head_dim));
  auto aligned = [](size_t n) { return (n + 255) / 256 * 256; };
  size_t bytes = 0, ring_bytes = 0;
  for (int32_t l = 0; l < n_layers; ++l) {
    int32_t in_pool = 0, in_ring = 0;
    for (int32_t h = 0; h < n_kv_heads; ++h) {
      head_index_[size_t(l) * size_t(n_kv_heads) + size_t(h)] = int8_t(window_.is_windowed(l, h) ? in_ring++ : in_pool++);
    }
    pool_heads_[size_t(l)] = in_pool;
    pool_offset_[size_t(l)] = bytes;
    bytes += aligned(2 * size_t(n_pages) * size_t(page_size) * size_t(in_pool) * vector_bytes);
    ring_offset_[size_t(l)] = ring_bytes;
    if (in_ring > 0) {
      ring_bytes += aligned(2 * size_t(ring_capacity_) * size_t(ring_layout(l).page_size) * size_t(in_ring) * vector_bytes);
    }
  }
  const size_t budget = kv_budget_bytes();  // already net of the rings
  if (bytes > budget) {
    throw Error(ErrorKind::ERROR_KIND_OUT_OF_MEMORY,
                "the KV cache needs " + std::to_string(bytes >> 20) + " MiB (plus " + std::to_string(ring_bytes >> 20) +
                    " MiB of windowed-head rings) but only " + std::to_string(budget >> 20) +
                    " MiB fit under --gpu-memory-fraction " + std::to_string(memory_fraction_) +
                    "; lower --ctx-size or raise the fraction");
  }
  for (auto [dst, n] : {std::pair<uint8_t**, size_t>{&kv_pool_, bytes}, {&kv_ring_, ring_bytes}}) {
    if (n == 0 && dst == &kv_ring_) continue;
    void* p = nullptr;
    if (cudaMalloc(&p, std::max<size_t>(n, 1)) != cudaSuccess) {
      (void)cudaGetLastError();
      throw Error(ErrorKind::ERROR_KIND_OUT_OF_MEMORY,
                  "GPU out of memory reserving the KV cache (" + std::to_string(n >> 20) + " MiB)");
    }
    *dst = static_cast<uint8_t*>(p);
    CUDA_CHECK(cudaMemsetAsync(p, 0, n, stream_));
  }
  ring_of_seq_.clear();
  free_rings_.clear();
  for (int32_t i = ring_capacity_ - 1; i >= 0; --i) free_rings_.push_back(i);
}

KvLayout CudaBackend::kv_layout(int32_t layer) const {
  const int32_t heads = pool_heads_.empty() ? n_kv_heads_ : pool_heads_[size_t(layer)];
  return KvLayout{page_size_, heads, head_dim_, kv_dtype_};
}

void CudaBackend::kv_set_dtype(KvDtype dtype) {
  Backend::kv_set_dtype(dtype);  // refuses what the kernels cannot store
  LCLLM_ASSERT(!kv_pool_, "kv_set_dtype after kv_reserve");
  kv_dtype_ = dtype;
}

void CudaBackend::kv_head_map(int32_t layer, int8_t (&kv_index)[64], uint64_t& ring_heads) const {
  ring_heads = 0;
  for (int32_t h = 0; h < 64; ++h) {
    kv_index[h] = h < n_kv_heads_ ? head_index_[size_t(layer) * size_t(n_kv_heads_) + size_t(h)] : int8_t(0);
    if (h < n_kv_heads_ && window_.is_windowed(layer, h)) ring_heads |= uint64_t(1) << h;
  }
}

CudaBackend::KvStore CudaBackend::kv_store(uint8_t* base, const KvLayout& layout, int64_t n_units) {
  uint8_t* v = base + size_t(n_units) * size_t(layout.page_bytes());
  uint8_t* scale = v + size_t(n_units) * size_t(layout.page_bytes());
  return KvStore{base, v, layout.page_scale_bytes() > 0 ? reinterpret_cast<uint16_t*>(scale) : nullptr, layout};
}

void CudaBackend::kv_copy_unit(const KvStore& store, int64_t src, int64_t dst) {
  const size_t page = size_t(store.layout.page_bytes()), scales = size_t(store.layout.page_scale_bytes());
  for (const auto& [base, bytes] : {std::pair{static_cast<uint8_t*>(store.k), page},
                                    std::pair{static_cast<uint8_t*>(store.v), page},
                                    std::pair{reinterpret_cast<uint8_t*>(store.scale), scales}}) {
    if (bytes == 0) continue;
    CUDA_CHECK(cudaMemcpyAsync(base + size_t(dst) * bytes, base + size_t(src) * bytes, bytes,
                               cudaMemcpyDeviceToDevice, stream_));
  }
}

CudaBackend::KvStore CudaBackend::pool_store(int32_t layer) const {
  LCLLM_ASSERT(kv_pool_ && layer >= 0 && layer < n_layers_, "kv layer out of range (kv_reserve first)");
  return kv_store(kv_pool_ + pool_offset_[size_t(layer)], kv_layout(layer), n_pages_);
}

void CudaBackend::kv_copy_pages(std::span<const PageCopy> copies) {
  flush_recorded();
  forget_converted();
  if (copies.empty()) return;
  for (int32_t l = 0; l < n_layers_; ++l) {
    if (kv_layout(l).page_bytes() == 0) continue;  // every head of the layer is windowed
    const KvStore store = pool_store(l);
    for (const auto& c : copies) kv_copy_unit(store, c.src_page, c.dst_page);
  }
}

void CudaBackend::to_host(const Tensor& t, float* dst, int64_t n) {
  LCLLM_ASSERT(n >= 0 && n <= t.numel(), "to_host reads past the tensor");
  flush_recorded();
  const float* src = static_cast<const float*>(t.data);
  if (t.dtype != DType::DTYPE_F32) {
    float* tmp = static_cast<float*>(scratch(size_t(n) * sizeof(float), 3));
    launch_convert({tmp, t.data, n, ElemType::ELEM_F32, elem_type(t.dtype)}, stream_);
    src = tmp;
  }
  CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(n) * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  synchronize();
  check_hip_overflow();  // HiP lists of the steps whose masks stayed on the device (no other sync checked them)
}

void CudaBackend::synchronize() {
  flush_recorded();
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  staging_used_ = staging_region_ = 0;  // nothing in flight reads the ring any more
  staging_limit_ = staging_cap_;
  staged_recent_.clear();
}

Backend::HostCopy CudaBackend::to_host_begin(const Tensor& t, int64_t n) {
  LCLLM_ASSERT(n >= 0 && n <= t.numel(), "to_host_begin reads past the tensor");
  expect_f32(t, "to_host_begin copies fp32");
  flush_recorded();
  HostCopy copy;
  copy.ticket = next_host_copy_++;
  HostCopySlot& slot = host_copies_[copy.ticket % 2];
  LCLLM_ASSERT(!slot.busy, "to_host_begin: two copies already in flight (end the older one first)");
  if (slot.cap < n) {
    if (slot.pinned != nullptr) CUDA_CHECK(cudaFreeHost(slot.pinned));
    slot.cap = std::max<int64_t>(n, 256);
    CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&slot.pinned), size_t(slot.cap) * sizeof(float)));
  }
  if (slot.done == nullptr) CUDA_CHECK(cudaEventCreateWithFlags(&slot.done, cudaEventDisableTiming));
  CUDA_CHECK(cudaMemcpyAsync(slot.pinned, t.data, size_t(n) * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaEventRecord(slot.done, stream_));
  slot.busy = true;
  copy.values.resize(size_t(n));
  return copy;
}

// A step begins while an earlier one's outputs are in flight (Engine::step_launch): the in-flight work reads the
// ring's [staging_region_, staging_used_). The new step stages into the half of the ring that range leaves free, so
// neither overwrites the other and each half keeps one graph signature (the staged range is part of it); the two
// halves alternate step by step. The step before the in-flight one must be done before its half is reused.
void CudaBackend::chain_staging() {
  HostCopySlot* busy[2] = {};
  int32_t n_busy = 0;
  for (int32_t t = next_host_copy_ - 2; t < next_host_copy_; ++t) {  // oldest first
    if (t >= 0 && host_copies_[t % 2].busy) busy[n_busy++] = &host_copies_[t % 2];
  }
  if (n_busy == 0) return;
  if (n_busy == 2) CUDA_CHECK(cudaEventSynchronize(busy[0]->done));
  const size_t half = staging_cap_ / 2;
  if (staging_used_ <= half) {
    staging_used_ = half;
    staging_limit_ = staging_cap_;
  } else if (staging_region_ >= half) {
    staging_used_ = 0;
    staging_limit_ = half;
  } else {  // the in-flight step spans both halves: wait for it
    CUDA_CHECK(cudaEventSynchronize(busy[n_busy - 1]->done));
    staging_used_ = 0;
    staging_limit_ = staging_cap_;
  }
  staging_region_ = staging_used_;
  staged_recent_.clear();  // uploads of the other half: valid, but they would make this half's signature vary
}

void CudaBackend::to_host_end(HostCopy& copy) {
  if (copy.ticket < 0) return;
  HostCopySlot& slot = host_copies_[copy.ticket % 2];
  LCLLM_ASSERT(slot.busy, "to_host_end: no copy in flight for this ticket");
  CUDA_CHECK(cudaEventSynchronize(slot.done));
  std::memcpy(copy.values.data(), slot.pinned, copy.values.size() * sizeof(float));
  slot.busy = false;
  copy.ticket = -1;
  check_hip_overflow();  // may throw: the copy is ended first
}

void CudaBackend::from_host(Tensor t, const float* src, int64_t n) {
  flush_recorded();
  forget_converted();
  expect_f32(t, "from_host writes fp32 tensors");
  LCLLM_ASSERT(n >= 0 && n <= t.numel(), "from_host writes past the tensor");
  CUDA_CHECK(cudaMemcpyAsync(t.data, src, size_t(n) * sizeof(float), cudaMemcpyHostToDevice, stream_));
  synchronize();
}

std::vector<float> CudaBackend::kv_read(int32_t layer, bool value) {
  flush_recorded();
  const KvLayout kv = kv_layout(layer);
  const int64_t n = int64_t(n_pages_) * kv.page_elems();
  std::vector<float> out(static_cast<size_t>(n));
  const KvStore store = pool_store(layer);
  if (kv.dtype == KvDtype::KV_DTYPE_FP8_E4M3) {  // decoded on the host with the CPU's own functions (exact)
    std::vector<uint8_t> codes(static_cast<size_t>(n));
    std::vector<uint16_t> scales(size_t(n_pages_) * size_t(page_size_) * size_t(kv.n_heads));
    CUDA_CHECK(cudaMemcpyAsync(codes.data(), value ? store.v : store.k, codes.size(), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaMemcpyAsync(scales.data(), store.scale, scales.size() * sizeof(uint16_t),
                               cudaMemcpyDeviceToHost, stream_));
    synchronize();
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t pair = scales[size_t(i / kv.head_dim)];  // one pair per (slot, head) vector
      out[size_t(i)] = fp8_e4m3_decode(codes[size_t(i)]) * fp8_scale_value(uint8_t(value ? pair >> 8 : pair & 0xff));
    }
    return out;
  }
  float* tmp = static_cast<float*>(scratch(size_t(n) * sizeof(float), 3));
  launch_convert({tmp, value ? store.v : store.k, n, ElemType::ELEM_F32, ElemType::ELEM_BF16}, stream_);
  CUDA_CHECK(cudaMemcpyAsync(out.data(), tmp, size_t(n) * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  synchronize();
  return out;
}

const float* CudaBackend::rope_table(const RopeConfig& rope, int32_t head_dim) {
  const auto key = std::make_tuple(int(rope.type), rope.theta, rope.factor, rope.low_freq_factor,
                                   rope.high_freq_factor, rope.original_max_position_embeddings, head_dim);
  auto it = rope_tables_.find(key);
  if (it != rope_tables_.end()) return it->second;
  const std::vector<float> inv = rope_inv_freq(rope, head_dim);
  float* d = nullptr;
  CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&d), inv.size() * sizeof(float)));
  CUDA_CHECK(cudaMemcpy(d, inv.data(), inv.size() * sizeof(float), cudaMemcpyHostToDevice));
  rope_tables_.emplace(key, d);
  return d;
}

// ---- ops ----------------------------------------------------------------------------------------------------
// Each op fills a zeroed parameter struct field by field and hands it to enqueue(): launched now, or recorded into
// the step when a decode step is being recorded (cuda_step_graphs.cpp).

void CudaBackend::embed(Tensor out, const Tensor& table, std::span<const int32_t> ids, float scale) {
  embed_rows(out, table, ids, {}, nullptr, scale);
}

void CudaBackend::embed_chained(Tensor out, const Tensor& table, std::span<const int32_t> ids,
                                std::span<const int32_t> from_argmax, const Tensor& argmax, float scale) {
  expect_f32(argmax, "argmax_rows stores fp32 ids");
  LCLLM_ASSERT(from_argmax.size() == ids.size(), "embed_chained: one from_argmax entry per id");
  for (int32_t f : from_argmax) LCLLM_ASSERT(f < argmax.numel(), "embed_chained: argmax row out of range");
  embed_rows(out, table, ids, from_argmax, static_cast<const float*>(argmax.data), scale);
}

// embed and embed_chained: one kernel; from_argmax empty (and argmax null) takes every id from the host's list.
void CudaBackend::embed_rows(Tensor out, const Tensor& table, std::span<const int32_t> ids,
                             std::span<const int32_t> from_argmax, const float* argmax, float scale) {
  forget_converted();
  expect_f32(out, "embed writes fp32");
  LCLLM_ASSERT(table.dtype == DType::DTYPE_BF16, "embedding table is bf16 on the device");
  stage_reserve({ids.size_bytes(), from_argmax.size_bytes()});
  auto p = zeroed<EmbedParams>();
  p.out = static_cast<float*>(out.data);
  p.table = static_cast<const uint16_t*>(table.data);
  p.ids = stage(ids);
  if (!from_argmax.empty()) p.from_argmax = stage(from_argmax);
  p.argmax = argmax;
  p.n = int32_t(ids.size());
  p.d = table.dim(1);
  p.scale = scale;
  enqueue(launch_embed, p);
}

void CudaBackend::rmsnorm(Tensor out, const Tensor& x, const Tensor& w, float eps, bool one_plus) {
  rmsnorm_into(out, x, w, eps, one_plus, false);
}

void CudaBackend::rmsnorm_into(Tensor out, const Tensor& x, const Tensor& w, float eps, bool one_plus, bool bf16_copy) {
  forget_converted();
  expect_f32(x, "rmsnorm reads fp32");
  expect_f32(w, "norm weights are fp32 on the device");
  const int64_t d = last_dim(x);
  LCLLM_ASSERT(w.numel() == d, "norm weight does not match the row size");
  auto p = zeroed<RmsnormParams>();
  p.out = static_cast<float*>(out.data);
  p.x = static_cast<const float*>(x.data);
  p.w = static_cast<const float*>(w.data);
  p.rows = x.numel() / d;
  p.d = int32_t(d);
  p.eps = eps;
  p.one_plus = one_plus;
  if (bf16_copy) p.out_bf16 = static_cast<uint16_t*>(scratch(size_t(x.numel()) * sizeof(uint16_t), 0));
  enqueue(launch_rmsnorm, p);
  if (bf16_copy) {
    converted_src_ = out.data;
    converted_n_ = x.numel();
  }
}

void CudaBackend::add_rmsnorm(Tensor x, const Tensor& y, Tensor out, const Tensor& w, float eps, bool one_plus) {
  forget_converted();
  expect_f32(x, "add_rmsnorm reads fp32");
  expect_f32(w, "norm weights are fp32 on the device");
  const int64_t d = last_dim(x);
  LCLLM_ASSERT(w.numel() == d && y.numel() == x.numel() && out.numel() == x.numel(),
               "add_rmsnorm shapes do not match");
  LCLLM_ASSERT(out.data != x.data, "add_rmsnorm: out must not alias the residual x");
  const int64_t n = x.numel();
  auto p = zeroed<AddRmsnormParams>();
  p.x = static_cast<float*>(x.data);
  p.y = static_cast<const float*>(y.data);
  p.out = static_cast<float*>(out.data);
  // The bf16 copy of out goes where matmul() keeps its converted input: the projections reading out next skip
  // their conversion kernel.
  p.out_bf16 = static_cast<uint16_t*>(scratch(size_t(n) * sizeof(uint16_t), 0));
  p.w = static_cast<const float*>(w.data);
  p.rows = n / d;
  p.d = int32_t(d);
  p.eps = eps;
  p.one_plus = one_plus ? 1 : 0;
  enqueue(launch_add_rmsnorm, p);
  converted_src_ = out.data;
  converted_n_ = n;
}

void CudaBackend::add_inplace(Tensor x, const Tensor& y) {
  forget_converted();
  auto p = zeroed<AddParams>();
  p.x = static_cast<float*>(x.data);
  p.y = static_cast<const float*>(y.data);
  p.n = x.numel();
  enqueue(launch_add, p);
}

void CudaBackend::rope(Tensor x, std::span<const int32_t> positions, const RopeConfig& rope) {
  forget_converted();
  const int32_t hd = int32_t(x.dim(2));
  auto p = zeroed<RopeParams>();
  p.x = static_cast<float*>(x.data);
  p.positions = stage(positions);
  p.inv_freq = rope_table(rope, hd);
  p.n = int32_t(x.dim(0));
  p.heads = int32_t(x.dim(1));
  p.head_dim = hd;
  enqueue(launch_rope, p);
}

void CudaBackend::kv_write(int32_t layer, const Tensor& k, const Tensor& v, std::span<const int64_t> slots) {
  forget_converted();
  auto p = zeroed<KvWriteParams>();
  const KvStore store = pool_store(layer);
  p.k_store = store.k;
  p.v_store = store.v;
  p.scale_store = store.scale;
  p.k = static_cast<const float*>(k.data);
  p.v = static_cast<const float*>(v.data);
  p.slots = stage(slots);
  p.n = int32_t(slots.size());
  p.n_kv_heads = n_kv_heads_;
  p.head_dim = head_dim_;
  p.kv = kv_layout(layer);
  uint64_t ring_heads = 0;
  kv_head_map(layer, p.kv_index, ring_heads);
  p.heads = ~ring_heads & (n_kv_heads_ == 64 ? ~uint64_t(0) : (uint64_t(1) << n_kv_heads_) - 1);  // windowed: kv_write_window
  enqueue(launch_kv_write, p);
}

void CudaBackend::rope_kv_write(Tensor q, Tensor k, const Tensor& v, std::span<const int32_t> positions,
                                const RopeConfig& rope_config, int32_t layer, std::span<const int64_t> slots) {
  forget_converted();
  const int32_t hd = int32_t(q.dim(2));
  LCLLM_ASSERT(hd == head_dim_ && k.dim(1) == n_kv_heads_ && k.dim(2) == hd && v.numel() == k.numel() &&
                   q.dim(0) == k.dim(0) && positions.size() == size_t(q.dim(0)) && slots.size() == positions.size(),
               "rope_kv_write shapes do not match the KV pool");
  stage_reserve({positions.size_bytes(), slots.size_bytes()});
  auto p = zeroed<RopeKvWriteParams>();
  p.q = static_cast<float*>(q.data);
  p.k = static_cast<float*>(k.data);
  p.v = static_cast<const float*>(v.data);
  const KvStore store = pool_store(layer);
  p.k_pool = store.k;
  p.v_pool = store.v;
  p.scale_pool = store.scale;
  p.positions = stage(positions);
  p.slots = stage(slots);
  p.inv_freq = rope_table(rope_config, hd);
  p.n = int32_t(q.dim(0));
  p.n_heads = int32_t(q.dim(1));
  p.n_kv_heads = n_kv_heads_;
  p.head_dim = hd;
  p.kv = kv_layout(layer);
  kv_head_map(layer, p.kv_index, p.ring_heads);
  enqueue(launch_rope_kv_write, p);
}

GluActivation CudaBackend::glu_activation(Activation act) {
  switch (act) {
    case Activation::ACTIVATION_SILU: return GluActivation::GLU_SILU;
    case Activation::ACTIVATION_GELU_TANH: return GluActivation::GLU_GELU_TANH;
    case Activation::ACTIVATION_GELU: return GluActivation::GLU_GELU;
  }
  ::lcllm::assert_fail("act", __FILE__, __LINE__, "unknown GLU activation");
}

void CudaBackend::glu(Tensor out, const Tensor& gate, const Tensor& up, Activation act) {
  forget_converted();
  auto p = zeroed<GluParams>();
  p.act = glu_activation(act);
  p.out = static_cast<float*>(out.data);
  p.gate = static_cast<const float*>(gate.data);
  p.up = static_cast<const float*>(up.data);
  p.n = out.numel();
  // More rows than a GEMV takes: the down projection that reads out next is a GEMM, so out's bf16 copy goes where
  // matmul() keeps its converted input and that GEMM skips its conversion kernel.
  const bool bf16_copy = out.ndim == 2 && out.dim(0) > kGemvMaxRows;
  if (bf16_copy) p.out_bf16 = static_cast<uint16_t*>(scratch(size_t(p.n) * sizeof(uint16_t), 0));
  enqueue(launch_glu, p);
  if (bf16_copy) {
    converted_src_ = out.data;
    converted_n_ = p.n;
  }
}

void CudaBackend::softcap(Tensor x, float cap) {
  forget_converted();
  auto p = zeroed<SoftcapParams>();
  p.x = static_cast<float*>(x.data);
  p.n = x.numel();
  p.cap = cap;
  enqueue(launch_softcap, p);
}

void CudaBackend::argmax_rows(Tensor out, const Tensor& x) {
  expect_f32(out, "argmax_rows writes fp32 indices");
  expect_f32(x, "argmax_rows reads fp32 logits");
  const int64_t rows = x.dim(0), d = x.numel() / rows;
  LCLLM_ASSERT(out.numel() >= rows && d < (int64_t(1) << 24), "argmax_rows: out too short or rows too long");
  auto p = zeroed<ArgmaxRowsParams>();
  p.out = static_cast<float*>(out.data);
  p.x = static_cast<const float*>(x.data);
  p.rows = int32_t(rows);
  p.n = int32_t(d);
  enqueue(launch_argmax_rows, p);
}

void CudaBackend::gather_rows(Tensor out, const Tensor& x, std::span<const int32_t> rows) {
  forget_converted();
  auto p = zeroed<GatherRowsParams>();
  p.out = static_cast<float*>(out.data);
  p.x = static_cast<const float*>(x.data);
  p.rows = stage(rows);
  p.n_rows = int32_t(rows.size());
  p.d = x.numel() / x.dim(0);
  enqueue(launch_gather_rows, p);
}

}  // namespace lcllm
