// Recording decode steps and replaying them as CUDA graphs (the cache is described in cuda_step_graphs.h).
//
// Why: a Llama-3.1-8B decode step is ~450 small launches (per layer: norms, 7 GEMMs, rope + KV write, attention
// split + merge, activation); launched one by one the GPU idles between them and the host must keep ahead of it.
// A graph launch puts the whole step on the GPU at once.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <spdlog/spdlog.h>

#include "backend/cuda/cuda_backend.h"
#include "kernels/cuda_check.h"

namespace lcllm {

// ---- StepGraphCache ----------------------------------------------------------------------------------------------

cudaGraphExec_t StepGraphCache::find(std::span<const uint8_t> signature) {
  for (Entry& e : entries_) {
    if (e.signature.size() == signature.size() &&
        std::memcmp(e.signature.data(), signature.data(), signature.size()) == 0) {
      e.last_used = ++clock_;
      return e.exec;
    }
  }
  return nullptr;
}

void StepGraphCache::insert(std::vector<uint8_t> signature, cudaGraphExec_t exec) {
  if (entries_.size() >= capacity_) {
    auto lru = std::min_element(entries_.begin(), entries_.end(),
                                [](const Entry& a, const Entry& b) { return a.last_used < b.last_used; });
    cudaGraphExecDestroy(lru->exec);
    entries_.erase(lru);
  }
  entries_.push_back(Entry{std::move(signature), exec, ++clock_});
}

void StepGraphCache::clear() {
  for (Entry& e : entries_) cudaGraphExecDestroy(e.exec);
  entries_.clear();
}

StepTimer::~StepTimer() {
  for (Pair& p : pairs_) {
    if (p.start != nullptr) cudaEventDestroy(p.start);
    if (p.end != nullptr) cudaEventDestroy(p.end);
  }
}

void StepTimer::begin_host() { host_begin_ = std::chrono::steady_clock::now(); }

void StepTimer::collect() {
  for (Pair& p : pairs_) {
    if (!p.pending) continue;
    if (cudaEventQuery(p.end) == cudaErrorNotReady) {
      // Not done yet: read at a later call. The runtime may keep "not ready" as its last error, which the next
      // launch check (cudaGetLastError) would take for a failed launch (seen in PyTorch: pytorch#18584).
      if (cudaPeekAtLastError() == cudaErrorNotReady) (void)cudaGetLastError();
      continue;
    }
    float ms = 0;
    if (cudaEventElapsedTime(&ms, p.start, p.end) == cudaSuccess) {
      ++totals_.steps;
      totals_.host_ms += p.host_ms;
      totals_.device_ms += ms;
    }
    p.pending = false;
  }
}

void StepTimer::launch(cudaStream_t stream, cudaGraphExec_t exec) {
  collect();
  Pair& p = pairs_[next_];
  next_ = (next_ + 1) % 4;
  p.pending = false;  // still unfinished four launches later: dropped from the totals
  if (p.start == nullptr) {
    CUDA_CHECK(cudaEventCreate(&p.start));
    CUDA_CHECK(cudaEventCreate(&p.end));
  }
  p.host_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - host_begin_).count();
  CUDA_CHECK(cudaEventRecord(p.start, stream));
  CUDA_CHECK(cudaGraphLaunch(exec, stream));
  CUDA_CHECK(cudaEventRecord(p.end, stream));
  p.pending = true;
}

StepTimer::Totals StepTimer::totals() {
  collect();
  return totals_;
}

// ---- recording in CudaBackend ----------------------------------------------------------------------------------

bool cuda_graphs_env_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("LCLLM_CUDA_GRAPHS");
    return e == nullptr || e[0] != '0';
  }();
  return on;
}

void CudaBackend::step_begin(bool decode_only) {
  flush_recorded();  // a step that never reached step_end (an exception) must not leak into this one
  chain_staging();   // a step's outputs still in flight: this one stages into the ring's other half
  if (!decode_only || !graphs_enabled_ || !cuda_graphs_env_enabled()) return;
  recording_ = true;
  step_timer_.begin_host();
  step_stage_begin_ = staging_used_;
  recorded_.clear();
  signature_.clear();
}

void CudaBackend::upload_staged(size_t begin, size_t end) {
  if (end <= begin) return;
  CUDA_CHECK(cudaMemcpyAsync(staging_dev_ + begin, staging_host_ + begin, end - begin, cudaMemcpyHostToDevice,
                             stream_));
}

void CudaBackend::flush_recorded() {
  if (!recording_) return;
  recording_ = false;
  upload_staged(step_stage_begin_, staging_used_);
  for (auto& op : recorded_) op();
  recorded_.clear();
  signature_.clear();
  ++graphs_.stats().eager;
}

void CudaBackend::step_end() {
  if (!recording_) return;
  recording_ = false;
  // The uploaded range is part of what a replay does, so it is part of the signature.
  const uint64_t range[2] = {step_stage_begin_, staging_used_};
  sign(range, sizeof range);

  cudaGraphExec_t exec = graphs_.find(signature_);
  if (exec != nullptr) {
    ++graphs_.stats().replays;
    step_timer_.launch(stream_, exec);  // only replays are timed: a capture's step also pays for instantiation
    recorded_.clear();
    return;
  }
  // Relaxed mode: the launchers' one-time cudaFuncSetAttribute / occupancy queries are legal during capture.
  cudaGraph_t graph = nullptr;
  CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
  upload_staged(step_stage_begin_, staging_used_);
  for (auto& op : recorded_) op();
  CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
  const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    spdlog::warn("CUDA graph instantiation failed ({}); decode runs without graphs from now on",
                 cudaGetErrorString(err));
    graphs_enabled_ = false;
    upload_staged(step_stage_begin_, staging_used_);
    for (auto& op : recorded_) op();
    ++graphs_.stats().eager;
    recorded_.clear();
    return;
  }
  graphs_.insert(signature_, exec);
  ++graphs_.stats().captures;
  CUDA_CHECK(cudaGraphLaunch(exec, stream_));
  recorded_.clear();
}

Backend::StepTiming CudaBackend::step_timing() {
  const StepTimer::Totals t = step_timer_.totals();
  return StepTiming{t.steps, t.host_ms, t.device_ms};
}

}  // namespace lcllm
