// Programmatic dependent launch (PDL, Hopper; CUDA programming guide "Programmatic Dependent Launch and
// Synchronization"): a kernel launched with `launch_dependent` may start while the kernel before it in the stream
// still runs, once every block of that kernel has called `pdl_release()` (or exited). Before its `pdl_wait()` it
// may only read what was complete before that kernel started; griddepcontrol.wait returns once that kernel has
// completed and its writes are visible. Without the attribute, or after a predecessor that is not a kernel, the
// wait returns at once.
//
// Used only where the dependent has work that does not need its predecessor's output: decode attention copies older
// keys while rope + KV write runs (DecodeParams::old_keys_early), and the split merge is set up while the split
// kernel drains. Launching every decode kernel this way (each waiting at its top) made the 8B decode step 0.6 ms
// slower on the H100 (docs/KERNEL_NOTES.md, "Decode step fixed costs measured; programmatic dependent launch"), as
// the GEMV with an L2 prefetch before its wait had in session 3.
#pragma once
#include <utility>

#include <cuda_runtime_api.h>

#include "kernels/cuda_check.h"

namespace lcllm {

// Waits for the previous kernel in the stream to complete, its writes visible.
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }

// Lets the next kernel, if launched with launch_dependent, start once every block of this one has called it.
__device__ __forceinline__ void pdl_release() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }

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
