// HiP on the GPU (E9 item 3, arXiv 2406.09827 §3.1): the masks are estimated by kernels/attention_hip.cu and come
// back to the host as block lists, where hip_policy.cpp caches decode masks per sequence and the step plan expands
// them into the step's selection slot (selection_write). The attention itself then runs the key-set kernels.
#include <algorithm>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "kernels/attention_hip.h"
#include "kernels/cuda_check.h"
#include "lcllm/error.h"

namespace lcllm {

void CudaBackend::attention_hip_blocks(const Tensor& q, int32_t layer, const AttentionBatch& batch,
                                       const AttentionParams& params, std::span<const HipBlockRequest> requests,
                                       HipBlocks& blocks) {
  blocks.indptr.assign(requests.size() + 1, 0);
  blocks.blocks.clear();
  if (requests.empty()) return;
  LCLLM_ASSERT(!recording_, "HiP mask estimation inside a recorded step (its masks come back to the host)");
  std::vector<int32_t> packed;  // [n_requests, kHipRequestInts]
  packed.reserve(requests.size() * kHipRequestInts);
  int32_t max_keep = 1;
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
    const int32_t f[kHipRequestInts] = {r.row_begin, r.row_end, r.kv_head, r.lo, r.hi, r.k, r.block_size_k};
    packed.insert(packed.end(), f, f + kHipRequestInts);
  }
  const CudaAttentionRows rows = attention_rows(q, q, layer, batch, params, false, false);
  stage_reserve({packed.size() * sizeof(int32_t), batch.query_pos.size() * sizeof(int32_t)});
  auto p = zeroed<HipMaskParams>();
  p.a = rows.a;
  p.requests = stage(std::span<const int32_t>(packed));
  p.query_pos = stage(batch.query_pos);
  const size_t n_req = requests.size();
  p.out_blocks = static_cast<int32_t*>(scratch(n_req * size_t(max_keep) * sizeof(int32_t), kScratchHipBlocks));
  p.out_count = static_cast<int32_t*>(scratch(n_req * sizeof(int32_t), kScratchHipCount));
  p.n_requests = int32_t(n_req);
  p.max_keep = max_keep;
  enqueue(launch_attention_hip_mask, p);

  std::vector<int32_t> counts(n_req), all(n_req * size_t(max_keep));  // [n_requests], [n_requests, max_keep]
  CUDA_CHECK(cudaMemcpyAsync(counts.data(), p.out_count, counts.size() * sizeof(int32_t), cudaMemcpyDeviceToHost,
                             stream_));
  CUDA_CHECK(cudaMemcpyAsync(all.data(), p.out_blocks, all.size() * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  for (size_t i = 0; i < n_req; ++i) {
    const int32_t n = std::clamp(counts[i], 0, max_keep);
    blocks.blocks.insert(blocks.blocks.end(), all.begin() + std::ptrdiff_t(i * size_t(max_keep)),
                         all.begin() + std::ptrdiff_t(i * size_t(max_keep) + size_t(n)));
    blocks.indptr[i + 1] = int64_t(blocks.blocks.size());
  }
}

}  // namespace lcllm
