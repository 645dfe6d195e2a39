// The cache of captured decode-step graphs of the CUDA backend (E3: "decode steps run as CUDA graphs").
//
// A step's signature is the byte string of every launch it records: the launcher's address and its whole parameter
// struct (device pointers, sizes, split counts, scalars), plus the staging-ring range the step uploads. Two steps
// with equal signatures launch exactly the same kernels on the same buffers; only the staged bytes differ (token ids,
// positions, KV slots, block tables, key ranges), and the graph's first node copies those from the pinned ring at
// replay time. So a graph is reused only when replaying it is exactly the eager step; anything else (another batch
// size, a new decode split plan, a grown block table bucket) is a miss and gets its own graph — the same idea as
// vLLM/SGLang's per-batch-size capture, keyed here by the full launch list instead of by batch size alone.
#pragma once
#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include <cuda_runtime_api.h>

namespace lcllm {

struct StepGraphStats {
  int64_t replays = 0;   // steps launched from a cached graph
  int64_t captures = 0;  // graphs captured (each also runs its step once)
  int64_t eager = 0;     // recorded steps that ran eagerly (flushed mid-step, or graphs off)
};

// Times replayed steps: host time from step_begin to the launch, device time between two events around it. A
// step's device time is read once its end event has completed (at a later launch or when asked), so timing never
// waits on the GPU; four event pairs cover the (at most two) steps a pipelined decode keeps in flight.
class StepTimer {
 public:
  StepTimer() = default;
  ~StepTimer();
  StepTimer(const StepTimer&) = delete;
  StepTimer& operator=(const StepTimer&) = delete;
  struct Totals {
    int64_t steps = 0;
    double host_ms = 0, device_ms = 0;
  };
  void begin_host();                                       // at step_begin
  void launch(cudaStream_t stream, cudaGraphExec_t exec);  // cudaGraphLaunch between the two events
  Totals totals();  // every timed step whose end event has completed

 private:
  struct Pair {
    cudaEvent_t start = nullptr, end = nullptr;
    bool pending = false;  // recorded, elapsed time not yet read
    double host_ms = 0;
  };
  void collect();
  Pair pairs_[4];
  int32_t next_ = 0;
  std::chrono::steady_clock::time_point host_begin_{};
  Totals totals_;
};

class StepGraphCache {
 public:
  explicit StepGraphCache(size_t capacity = 16) : capacity_(capacity) {}
  ~StepGraphCache() { clear(); }
  StepGraphCache(const StepGraphCache&) = delete;
  StepGraphCache& operator=(const StepGraphCache&) = delete;

  // The graph captured for exactly this signature, or null.
  cudaGraphExec_t find(std::span<const uint8_t> signature);
  // Takes ownership of exec; evicts the least recently used graph beyond capacity.
  void insert(std::vector<uint8_t> signature, cudaGraphExec_t exec);
  // Destroys every graph: called whenever a buffer a graph may point to is freed or moved.
  void clear();
  size_t size() const { return entries_.size(); }
  StepGraphStats& stats() { return stats_; }
  const StepGraphStats& stats() const { return stats_; }

 private:
  struct Entry {
    std::vector<uint8_t> signature;
    cudaGraphExec_t exec = nullptr;
    uint64_t last_used = 0;
  };
  size_t capacity_;
  uint64_t clock_ = 0;
  std::vector<Entry> entries_;
  StepGraphStats stats_;
};

}  // namespace lcllm
