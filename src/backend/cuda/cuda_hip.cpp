// HiP on the GPU (E9 item 3, arXiv 2406.09827 §3.1): the masks are estimated by kernels/attention_hip.cu and stay on
// the device: selection_write_hip expands a step's masks into its selection slot there
// (kernels/attention_hip_lists.cu), and the decode masks a sequence reuses in later steps are copied into its rows of
// the HiP cache (hip_cache_keep), from which the reusing steps' lists are expanded (and dilated forward). The attention
// itself then runs the key-set kernels. Every upload goes through the staging ring and every launch through enqueue, so
// decode steps are recorded and replayed as CUDA graphs. attention_hip_blocks (the blocks on the host: tests, and
// batches that do not name their sequences) ends a recording, since the host waits for the copy.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "kernels/attention_hip.h"
#include "kernels/cuda_check.h"
#include "kernels/device_info.h"
#include "lcllm/error.h"

namespace lcllm {

HipDeviceMasks CudaBackend::hip_search(const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                       const AttentionParams& params, std::span<const HipBlockRequest> requests) {
  if (head_dim_ % 16 != 0) {  // the search's tensor-core scores take K in 16-dim MMA steps (kernels/attention_hip.cu)
    throw Error(ErrorKind::ERROR_KIND_UNSUPPORTED,
                "HiP on the cuda backend needs head_dim a multiple of 16; this model's is " +
                    std::to_string(head_dim_) + " (use --device cpu or another policy)");
  }
  std::vector<int32_t> packed;  // [n_requests, kHipRequestInts]
  packed.reserve(requests.size() * kHipRequestInts);
  int32_t max_keep = 1, max_rows = 1;
  bool any_stage = false;
  const int32_t n_rows = batch.query_start.empty() ? 0 : batch.query_start.back();
  for (const HipBlockRequest& r : requests) {
    LCLLM_ASSERT(r.row_begin >= 0 && r.row_begin < r.row_end && r.row_end <= n_rows && r.kv_head >= 0 &&
                     r.kv_head < n_kv_heads_ && r.block_size_k >= 1 && r.k >= r.block_size_k,
                 "malformed HiP request");
    const int32_t keep = r.k / r.block_size_k;
    if (keep > kHipMaxKeep) {
      throw Error(ErrorKind::ERROR_KIND_UNSUPPORTED,
                  "HiP keeps k / block_size_k = " + std::to_string(keep) + " blocks per mask; the cuda backend keeps at "
                  "most " + std::to_string(kHipMaxKeep) + " (raise block_size_k or lower k)");
    }
    max_keep = std::max(max_keep, keep);
    max_rows = std::max(max_rows, r.row_end - r.row_begin);
    // A start names a row of the cache. attention_hip_blocks (the host-kept path: tests, batches without sequence
    // ids) returns no stages, so the policy never has host start pieces for this backend: without the device cache
    // every refresh searches from step 1 (stage-wise refresh needs the cache rows).
    LCLLM_ASSERT(r.start_row < hip_cache_rows_, "a HiP request starts from a cache row that does not exist");
    LCLLM_ASSERT(r.start.empty(), "HiP start pieces on the host: the cuda backend resumes from cache rows only");
    any_stage |= r.stage_round >= 0;
    const int32_t f[kHipRequestInts] = {r.row_begin, r.row_end,   r.kv_head,       r.lo,         r.hi, r.k,
                                        r.block_size_k, r.descent ? 1 : 0, r.start_row, r.start_shift, r.stage_round};
    packed.insert(packed.end(), f, f + kHipRequestInts);
  }
  const size_t smem = hip_mask_smem_bytes(max_keep);
  if (smem + 64 > size_t(cuda_smem_optin_bytes())) {  // + the kernel's static shared memory
    throw Error(ErrorKind::ERROR_KIND_UNSUPPORTED,
                "HiP keeps " + std::to_string(max_keep) + " blocks per mask, which needs " + std::to_string(smem >> 10) +
                    " KiB of shared memory per block; this GPU allows " + std::to_string(cuda_smem_optin_bytes() >> 10) +
                    " KiB (raise block_size_k or lower k)");
  }
  // The requests and positions go through the staging ring into their own scratch (as step_upload's data): staged
  // before attention_rows, whose own staging may wrap the ring (after waiting for the stream, so the copy is done).
  const size_t n_req = requests.size();
  packed.insert(packed.end(), batch.query_pos.begin(), batch.query_pos.end());  // [requests | query_pos]
  auto* inputs = static_cast<int32_t*>(scratch(packed.size() * sizeof(int32_t), kScratchHipInputs));
  auto copy = zeroed<DeviceCopyParams>();
  copy.dst = inputs;
  copy.src = stage(std::span<const int32_t>(packed));
  copy.bytes = packed.size() * sizeof(int32_t);
  enqueue(launch_device_copy, copy);
  const CudaAttentionRows rows = attention_rows(q, q, layer, batch, params, false, false);
  auto p = zeroed<HipMaskParams>();
  p.a = rows.a;
  p.requests = inputs;
  p.query_pos = inputs + n_req * kHipRequestInts;
  p.out_blocks = static_cast<int32_t*>(scratch(n_req * size_t(max_keep) * sizeof(int32_t), kScratchHipBlocks));
  p.out_count = static_cast<int32_t*>(scratch(n_req * sizeof(int32_t), kScratchHipCount));
  if (hip_cache_rows_ > 0) {  // stages kept by earlier searches (hip_cache_keep)
    p.start_pieces = hip_cache_stage_;
    p.start_count = hip_cache_stage_count_;
    p.start_stride = hip_cache_stride_;
  }
  if (any_stage) {
    auto* stage = static_cast<int32_t*>(scratch(n_req * size_t(2 * max_keep + 1) * sizeof(int32_t), kScratchHipStage));
    p.stage_out = stage;                                    // [n_req, 2 * max_keep]
    p.stage_count = stage + n_req * size_t(2 * max_keep);  // [n_req]
  }
  p.n_requests = int32_t(n_req);
  p.max_keep = max_keep;
  p.max_rows = max_rows;
  prepare_attention_hip_mask(p);  // the launch's shape, chosen here: a graph capture makes no occupancy query
  enqueue(launch_attention_hip_mask, p);
  return {p.out_blocks, p.out_count, p.stage_out, p.stage_count, max_keep, int32_t(n_req)};
}

void CudaBackend::attention_hip_blocks(const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                       const AttentionParams& params, std::span<const HipBlockRequest> requests,
                                       HipBlocks& blocks) {
  blocks.indptr.assign(requests.size() + 1, 0);
  blocks.blocks.clear();
  hip_device_ = {};
  if (requests.empty()) return;
  const HipDeviceMasks d = hip_search(q, layer, batch, params, requests);
  flush_recorded();  // the host waits for the blocks: the rest of a recorded step runs eagerly
  const size_t n_req = requests.size();
  std::vector<int32_t> counts(n_req), all(n_req * size_t(d.stride));  // [n_requests], [n_requests, max_keep]
  CUDA_CHECK(cudaMemcpyAsync(counts.data(), d.count, counts.size() * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaMemcpyAsync(all.data(), d.blocks, all.size() * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  check_hip_overflow();  // the previous layer's lists
  for (size_t i = 0; i < n_req; ++i) {
    const int32_t n = std::clamp(counts[i], 0, d.stride);
    blocks.blocks.insert(blocks.blocks.end(), all.begin() + std::ptrdiff_t(i * size_t(d.stride)),
                         all.begin() + std::ptrdiff_t(i * size_t(d.stride) + size_t(n)));
    blocks.indptr[i + 1] = int64_t(blocks.blocks.size());
  }
}

bool CudaBackend::attention_hip_blocks_device(const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                              const AttentionParams& params, std::span<const HipBlockRequest> requests) {
  hip_device_ = {};
  if (!requests.empty()) hip_device_ = hip_search(q, layer, batch, params, requests);
  return true;
}

bool CudaBackend::selection_write_hip(int32_t slot, const HipMaskLists& masks, const KeySet* sets) {
  LCLLM_ASSERT(slot >= 0 && slot < sel_slots_, "selection slot not reserved");
  LCLLM_ASSERT(masks.mask_of.size() == size_t(sel_items_), "HiP masks do not match the slot");
  LCLLM_ASSERT(masks.indptr.size() == masks.block_size.size() + 1 && masks.all_from.size() == masks.block_size.size(),
               "malformed HiP masks");
  LCLLM_ASSERT(masks.shift.empty() || masks.shift.size() == masks.block_size.size(), "one shift per mask");
  // One staged upload of the masks, int32 words: [indptr (int64 as two words) | blocks | block_size | all_from |
  // mask_of | on_device | shift | cache_row]. Staged, so a recorded step copies it when its graph runs.
  const size_t n_masks = masks.block_size.size();
  std::vector<int32_t> pack;
  pack.reserve(2 * masks.indptr.size() + masks.blocks.size() + 4 * n_masks + masks.mask_of.size());
  auto put = [&pack](const void* src, size_t bytes) {
    const size_t at = pack.size();
    pack.resize(at + bytes / sizeof(int32_t));
    if (bytes > 0) std::memcpy(pack.data() + at, src, bytes);
    return at;
  };
  const size_t o_indptr = put(masks.indptr.data(), masks.indptr.size_bytes());
  const size_t o_blocks = put(masks.blocks.data(), masks.blocks.size_bytes());
  const size_t o_size = put(masks.block_size.data(), masks.block_size.size_bytes());
  const size_t o_from = put(masks.all_from.data(), masks.all_from.size_bytes());
  const size_t o_items = put(masks.mask_of.data(), masks.mask_of.size_bytes());
  const size_t o_device = put(masks.on_device.data(), masks.on_device.size_bytes());
  const size_t o_shift = put(masks.shift.data(), masks.shift.size_bytes());
  const size_t o_cache = put(masks.cache_row.data(), masks.cache_row.size_bytes());
  const int32_t* dev = stage(std::span<const int32_t>(pack));  // 256-byte aligned: the int64 indptr comes first
  auto p = zeroed<HipListParams>();
  p.indptr = reinterpret_cast<const int64_t*>(dev + o_indptr);
  p.blocks = dev + o_blocks;
  p.block_size = dev + o_size;
  p.all_from = dev + o_from;
  p.mask_of = dev + o_items;
  if (!masks.on_device.empty()) {  // masks left on the device by this layer's attention_hip_blocks_device
    LCLLM_ASSERT(masks.on_device.size() == n_masks, "one on_device entry per mask");
    for (int32_t r : masks.on_device) {
      LCLLM_ASSERT(r < hip_device_.n_requests, "a HiP mask names a search request this layer did not run");
    }
    p.on_device = dev + o_device;
    p.device_blocks = hip_device_.blocks;
    p.device_count = hip_device_.count;
    p.device_stride = hip_device_.stride;
  }
  if (!masks.shift.empty()) p.shift = dev + o_shift;
  if (!masks.cache_row.empty()) {  // masks a sequence keeps from an earlier step (hip_cache_keep)
    LCLLM_ASSERT(masks.cache_row.size() == n_masks, "one cache_row entry per mask");
    for (int32_t r : masks.cache_row) LCLLM_ASSERT(r < hip_cache_rows_, "a HiP mask names a cache row that does not exist");
    p.cache_row = dev + o_cache;
    p.cache_blocks = hip_cache_blocks_;
    p.cache_count = hip_cache_count_;
    p.cache_stride = hip_cache_stride_;
  }
  p.sets = reinterpret_cast<const int32_t*>(sets);
  const size_t items = size_t(sel_items_);
  p.out_positions = static_cast<int32_t*>(scratch(0, kScratchSelPositions)) + size_t(slot) * items * size_t(sel_stride_);
  p.out_count = static_cast<int32_t*>(scratch(0, kScratchSelCount)) + size_t(slot) * items;
  p.overflow = static_cast<int32_t*>(scratch(sizeof(int32_t), kScratchHipOverflow));
  if (!hip_overflow_armed_) {
    CUDA_CHECK(cudaMemsetAsync(p.overflow, 0, sizeof(int32_t), stream_));
    hip_overflow_armed_ = true;
  }
  p.n_items = sel_items_;
  p.stride = sel_stride_;
  p.slot = slot;
  enqueue(launch_attention_hip_lists, p);
  return true;
}

void CudaBackend::hip_cache_resize(int32_t rows, int32_t stride) {
  flush_recorded();  // recorded launches and captured graphs hold the old pointers
  graphs_.clear();
  // Out of memory is an error the server reports for the step's requests, not an abort.
  auto allocate = [](size_t bytes) {
    void* p = nullptr;
    if (cudaMalloc(&p, std::max<size_t>(bytes, 4)) != cudaSuccess) {
      (void)cudaGetLastError();
      throw Error(ErrorKind::ERROR_KIND_OUT_OF_MEMORY,
                  "GPU out of memory for HiP's cached decode masks (" + std::to_string(bytes >> 20) +
                      " MiB); lower --gpu-memory-fraction or the batch size");
    }
    return static_cast<int32_t*>(p);
  };
  // [rows, stride] blocks, [rows] counts, [rows, 2 * stride] stage pieces, [rows] stage counts
  const size_t sizes[4] = {size_t(rows) * size_t(stride), size_t(rows), size_t(rows) * size_t(2 * stride),
                           size_t(rows)};
  int32_t* fresh[4] = {};
  try {
    for (int i = 0; i < 4; ++i) fresh[i] = allocate(sizes[i] * sizeof(int32_t));
  } catch (...) {
    for (int32_t* f : fresh) cudaFree(f);
    throw;
  }
  CUDA_CHECK(cudaMemsetAsync(fresh[1], 0, size_t(rows) * sizeof(int32_t), stream_));
  CUDA_CHECK(cudaMemsetAsync(fresh[3], 0, size_t(rows) * sizeof(int32_t), stream_));
  if (hip_cache_rows_ > 0) {
    CUDA_CHECK(cudaMemcpy2DAsync(fresh[0], size_t(stride) * sizeof(int32_t), hip_cache_blocks_,
                                 size_t(hip_cache_stride_) * sizeof(int32_t), size_t(hip_cache_stride_) * sizeof(int32_t),
                                 size_t(hip_cache_rows_), cudaMemcpyDeviceToDevice, stream_));
    CUDA_CHECK(cudaMemcpyAsync(fresh[1], hip_cache_count_, size_t(hip_cache_rows_) * sizeof(int32_t),
                               cudaMemcpyDeviceToDevice, stream_));
    CUDA_CHECK(cudaMemcpy2DAsync(fresh[2], size_t(2 * stride) * sizeof(int32_t), hip_cache_stage_,
                                 size_t(2 * hip_cache_stride_) * sizeof(int32_t),
                                 size_t(2 * hip_cache_stride_) * sizeof(int32_t), size_t(hip_cache_rows_),
                                 cudaMemcpyDeviceToDevice, stream_));
    CUDA_CHECK(cudaMemcpyAsync(fresh[3], hip_cache_stage_count_, size_t(hip_cache_rows_) * sizeof(int32_t),
                               cudaMemcpyDeviceToDevice, stream_));
  }
  CUDA_CHECK(cudaStreamSynchronize(stream_));  // earlier work may still read the old rows
  cudaFree(hip_cache_blocks_);
  cudaFree(hip_cache_count_);
  cudaFree(hip_cache_stage_);
  cudaFree(hip_cache_stage_count_);
  hip_cache_blocks_ = fresh[0];
  hip_cache_count_ = fresh[1];
  hip_cache_stage_ = fresh[2];
  hip_cache_stage_count_ = fresh[3];
  hip_cache_rows_ = rows;
  hip_cache_stride_ = stride;
}

void CudaBackend::hip_cache_keep(std::span<const HipCacheKeep> keeps, std::vector<int32_t>& rows) {
  rows.clear();
  if (keeps.empty()) return;
  LCLLM_ASSERT(hip_device_.n_requests > 0, "hip_cache_keep without this layer's attention_hip_blocks_device");
  const int32_t per_seq = n_layers_ * n_kv_heads_;
  // Rows for every sequence first, then one resize at most (a resize waits for the stream and drops graphs).
  int32_t need_rows = hip_cache_next_;
  for (const HipCacheKeep& k : keeps) {
    LCLLM_ASSERT(k.layer >= 0 && k.layer < n_layers_ && k.kv_head >= 0 && k.kv_head < n_kv_heads_ && k.request >= 0 &&
                     k.request < hip_device_.n_requests,
                 "malformed HiP cache keep");
    if (hip_cache_base_.count(k.seq) != 0) continue;
    int32_t base = 0;
    if (!hip_cache_free_.empty()) {
      base = hip_cache_free_.back();
      hip_cache_free_.pop_back();
    } else {
      base = hip_cache_next_;
      hip_cache_next_ += per_seq;
      need_rows = hip_cache_next_;
    }
    hip_cache_base_[k.seq] = base;
  }
  const int32_t need_stride = std::max(hip_cache_stride_, hip_device_.stride);
  if (need_rows > hip_cache_rows_ || need_stride > hip_cache_stride_) {
    // Rows double when short (a server adds sequences one by one); the stride is the largest search's keep so far.
    // n_layers x n_kv_heads x keep x 12 bytes (blocks, and a coarse stage's (begin, end) pairs) per sequence:
    // 768 KiB for Llama-3.1-8B's hip preset.
    hip_cache_resize(need_rows > hip_cache_rows_ ? std::max(need_rows, 2 * hip_cache_rows_) : hip_cache_rows_,
                     need_stride);
  }
  std::vector<int32_t> pairs;  // [n, 3] (request, row, stage)
  for (const HipCacheKeep& k : keeps) {
    const int32_t row = hip_cache_base_.at(k.seq) + k.layer * n_kv_heads_ + k.kv_head;
    rows.push_back(row);
    pairs.push_back(k.request);
    pairs.push_back(row);
    pairs.push_back(k.stage ? 1 : 0);
  }
  auto p = zeroed<HipCacheCopyParams>();
  p.pairs = stage(std::span<const int32_t>(pairs));
  p.src_blocks = hip_device_.blocks;
  p.src_count = hip_device_.count;
  p.src_stride = hip_device_.stride;
  p.dst_blocks = hip_cache_blocks_;
  p.dst_count = hip_cache_count_;
  p.dst_stride = hip_cache_stride_;
  p.src_stage = hip_device_.stage;
  p.src_stage_count = hip_device_.stage_count;
  p.dst_stage = hip_cache_stage_;
  p.dst_stage_count = hip_cache_stage_count_;
  p.n_pairs = int32_t(keeps.size());
  enqueue(launch_attention_hip_cache_copy, p);
}

void CudaBackend::hip_cache_release(int32_t seq) {
  auto it = hip_cache_base_.find(seq);
  if (it == hip_cache_base_.end()) return;
  hip_cache_free_.push_back(it->second);
  hip_cache_base_.erase(it);
}

void CudaBackend::check_hip_overflow() {
  if (!hip_overflow_armed_) return;
  auto* flag = static_cast<int32_t*>(scratch(sizeof(int32_t), kScratchHipOverflow));
  int32_t set = 0;
  CUDA_CHECK(cudaMemcpy(&set, flag, sizeof set, cudaMemcpyDeviceToHost));
  if (set == 0) return;
  CUDA_CHECK(cudaMemset(flag, 0, sizeof(int32_t)));
  // A bug, not bad input; thrown rather than aborting so that a server fails the step's requests, not the process.
  throw Error(ErrorKind::ERROR_KIND_UNSUPPORTED,
              "internal error: a HiP list was longer than the step's selection slot (the step plan's stride bound is "
              "wrong); please report it");
}

}  // namespace lcllm
