// Programmatic dependent launch (PDL, Hopper; CUDA programming guide "Programmatic Dependent Launch and
// Synchronization"): a kernel launched with `launch_dependent` may be scheduled while the kernel before it in the
// stream still runs, so its launch latency and block setup overlap that kernel's tail instead of following it.
// Why: a decode step is ~8 kernels per layer, each a few to ~100 µs; between two ordinary launches the SMs idle
// for the launch and the first blocks' setup (docs/KERNEL_NOTES.md "Decode step fixed costs").
//
// The contract that keeps it exact: every kernel launched with `launch_dependent` calls `pdl_wait_then_release()`
// before its first global-memory access. griddepcontrol.wait returns only once the previous grid has completed and
// its writes are visible, so no work overlaps — only the launch does — and the ordering stays transitive down the
// stream (the next grid is released only after this one's wait returned). Without the attribute (a plain <<<>>>
// launch, or a predecessor that is not a kernel) griddepcontrol.wait returns at once.
#pragma once
#include <utility>

#include <cuda_runtime_api.h>

#include "kernels/cuda_check.h"

namespace lcllm {

// First statement of a kernel launched with launch_dependent: wait for the previous grid, then let the next grid
// be scheduled (its blocks take only the SM resources this grid leaves free, and wait themselves).
__device__ __forceinline__ void pdl_wait_then_release() {
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
}

// kernel<<<grid, block, smem, stream>>>(args...) as a programmatic dependent of the stream's previous kernel.
template <class... Params, class... Args>
void launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                      Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
  CUDA_CHECK_LAUNCH();
}

}  // namespace lcllm
