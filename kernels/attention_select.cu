// TidalDecode top-k key selection (see attention_select.h for the semantics and the input layout).
//   kernel_attention_select_mass: mass[h][i] = sum over the group's heads g of exp2(score2[g][i] - lse2[g]), one
//      coalesced pass over the scores; only items that need a selection (0 < k < span) are computed.
//   kernel_attention_select_topk: one thread-block cluster per (row, kv head) item, each CTA owning a contiguous
//      slice of the keys. An exact radix select on the fp32 bit patterns finds T = the k-th largest mass (three
//      digits of 11, 11 and 10 bits; per-CTA histograms in shared memory, summed through distributed shared memory),
//      then an ordered pass with block-wide prefix scans keeps every key with mass > T and the first
//      (k - count(mass > T)) keys with mass == T, i.e. ties go to the lower position, and writes them ascending.
#include "kernels/attention_select.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include "kernels/cuda_check.h"
#include "kernels/device_info.h"

namespace cg = cooperative_groups;

namespace lcllm {

// ---- kernels ------------------------------------------------------------------------------------------------

namespace {

constexpr int kMassThreads = 256;
constexpr int kTopkThreads = 1024;                  // the block scans below assume exactly 32 warps
constexpr int kTopkWarps = kTopkThreads / 32;
constexpr int kRadixBins = 2 * kTopkThreads;        // 2^11 bins: the widest digit, two bins per thread in the scan
constexpr int kRadixPasses = 3;                     // digits: bits [31:21], [20:10], [9:0]
constexpr int kLoadUnroll = 4;                      // independent loads in flight per thread in the histogram passes
constexpr int kFinalItems = 4;                      // consecutive keys per thread per chunk of the ordered pass
constexpr int kClusterSizes = 5;                    // cluster sizes 1, 2, 4, 8, 16 (16 is non-portable)

static_assert(kTopkWarps == 32, "block_inclusive_scan scans the warp totals with one warp");
static_assert(kFinalItems * kTopkThreads < 65536, "ordered-pass counts are packed in 16-bit halves");

// Lowest bit of the digit of radix pass `pass` (the digits are taken from the most significant end).
__device__ __forceinline__ int radix_shift(int pass) { return pass == 0 ? 21 : pass == 1 ? 10 : 0; }

// Inclusive prefix sum of one value per thread over the block (blockDim.x == kTopkThreads); *total gets the block's
// sum. warp_sums: [kTopkWarps] shared. Ends with a barrier, so back-to-back calls may reuse warp_sums.
template <typename T>
__device__ __forceinline__ T block_inclusive_scan(T v, T* warp_sums, T* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const T y = __shfl_up_sync(0xffffffffu, v, off);
    if (lane >= off) v += y;
  }
  if (lane == 31) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T w = warp_sums[lane];
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      const T y = __shfl_up_sync(0xffffffffu, w, off);
      if (lane >= off) w += y;
    }
    warp_sums[lane] = w;
  }
  __syncthreads();
  const T before = warp > 0 ? warp_sums[warp - 1] : T(0);
  *total = warp_sums[kTopkWarps - 1];
  __syncthreads();
  return v + before;
}

}  // namespace

// Block b works on row b / chunks_per_row; its threads stride over the row's keys (chunk c starts at key
// c * kMassThreads, stride chunks_per_row * kMassThreads), for every kv head of the row that needs masses.
// Dynamic shared memory: n_heads floats.
__global__ void __launch_bounds__(kMassThreads) kernel_attention_select_mass(SelectTopkParams p,
                                                                              int32_t chunks_per_row) {
  extern __shared__ float s_lse2[];  // [n_heads] of this row
  const int32_t r = int32_t(blockIdx.x / unsigned(chunks_per_row));
  const int32_t chunk = int32_t(blockIdx.x % unsigned(chunks_per_row));
  const int32_t span = p.row_span[r];
  if (int64_t(chunk) * kMassThreads >= span) return;  // no key for this block (also span == 0)
  const int32_t* k_row = p.k + int64_t(r) * p.n_kv_heads;
  // k >= span keeps every key without looking at masses, k <= 0 selects nothing: such items need no mass, and a row
  // without any other item (e.g. a row that does not select: its score_offset is not valid) is skipped whole.
  bool any = false;
  for (int32_t h = 0; h < p.n_kv_heads; ++h) any |= k_row[h] > 0 && k_row[h] < span;
  if (!any) return;

  for (int32_t g = threadIdx.x; g < p.n_heads; g += kMassThreads) {
    const float l = p.lse2[int64_t(r) * p.n_heads + g];
    // lse2 = -inf only when all of the head's scores are -inf: then exp2(-inf - 0) = 0 instead of NaN.
    s_lse2[g] = l == -INFINITY ? 0.f : l;
  }
  __syncthreads();

  const int32_t group = p.n_heads / p.n_kv_heads;
  const int64_t base = p.score_offset[r];
  const int64_t step = int64_t(chunks_per_row) * kMassThreads;
  for (int32_t h = 0; h < p.n_kv_heads; ++h) {
    const int32_t k = k_row[h];
    if (k <= 0 || k >= span) continue;
    const float* s = p.scores + base + int64_t(h) * group * span;  // [group][span] this kv head's query heads
    const float* lse = s_lse2 + h * group;                          // [group]
    float* m = p.mass + base + int64_t(h) * span;                   // [span]
    for (int64_t i = int64_t(chunk) * kMassThreads + threadIdx.x; i < span; i += step) {
      float acc = 0.f;
      for (int32_t g = 0; g < group; ++g) acc += exp2f(__ldg(s + int64_t(g) * span + i) - lse[g]);
      m[i] = acc;
    }
  }
}

// One cluster of n_ctas CTAs per item (r, h): item = blockIdx.x / n_ctas, CTA rank c owns the key indices
// [span * c / n_ctas, span * (c + 1) / n_ctas). Every early return below depends on the item only, so either the
// whole cluster returns or the whole cluster reaches every cluster barrier.
__global__ void __launch_bounds__(kTopkThreads) kernel_attention_select_topk(SelectTopkParams p) {
  // This CTA's histogram of the current digit over its slice. Double-buffered by pass: other CTAs read pass p's
  // buffer after pass p's cluster barrier, and finish before they arrive at pass p+1's barrier, which this CTA passes
  // before it clears the same buffer again in pass p+2; so one cluster barrier per pass suffices.
  __shared__ uint32_t s_hist[2][kRadixBins];
  __shared__ uint32_t s_merged[kRadixBins];                // [bins] the item's histogram (sum over the cluster)
  __shared__ unsigned long long s_scan64[kTopkWarps];      // block-scan scratch
  __shared__ uint32_t s_scan32[kTopkWarps];                // block-scan scratch
  __shared__ uint32_t s_sel[4];                            // chosen digit, k left, CTA count above, CTA count in bin
  __shared__ int32_t s_counts[2];                          // this CTA's (count > T, count == T), read by the cluster
  __shared__ int32_t s_base[2];                            // the same counts summed over the lower-ranked CTAs

  const cg::cluster_group cluster = cg::this_cluster();
  const int32_t n_ctas = int32_t(cluster.num_blocks());
  const int32_t rank = int32_t(cluster.block_rank());
  const int64_t item = blockIdx.x / unsigned(n_ctas);
  const int32_t tid = threadIdx.x;
  const int32_t k = p.k[item];
  if (k <= 0) return;  // not selected: outputs untouched
  const int32_t r = int32_t(item / p.n_kv_heads), h = int32_t(item % p.n_kv_heads);
  const int32_t span = p.row_span[r], lo = p.row_lo[r];
  int32_t* out = p.out_positions + item * p.stride;  // [stride]
  const int64_t s0 = int64_t(span) * rank / n_ctas, s1 = int64_t(span) * (rank + 1) / n_ctas;

  if (k >= span) {  // every visible key (none when span == 0), no masses needed
    for (int64_t i = s0 + tid; i < s1; i += kTopkThreads) out[i] = lo + int32_t(i);
    if (rank == 0 && tid == 0) p.out_count[item] = span;
    return;
  }

  // mass >= 0 and never -0 (a sum of exp2f values starting at +0), so the unsigned order of the bit patterns is the
  // order of the values.
  const uint32_t* bits =
      reinterpret_cast<const uint32_t*>(p.mass + p.score_offset[r] + int64_t(h) * span);  // [span]

  // Radix select, most significant digit first. Invariant: T's bits above the current digit equal `prefix`, and T is
  // the k_left-th largest (1-based) among the "candidates", the keys whose bits above the digit equal prefix.
  uint32_t prefix = 0, k_left = uint32_t(k);
  uint32_t cta_above = 0, cta_equal = 0;  // this CTA's keys with mass > T (summed over passes) and == T (last pass)
  for (int pass = 0; pass < kRadixPasses; ++pass) {
    const int shift = radix_shift(pass);
    const int width = (pass == 0 ? 32 : radix_shift(pass - 1)) - shift;
    const uint32_t digit_mask = (1u << width) - 1;
    const uint32_t high_mask = pass == 0 ? 0u : ~0u << radix_shift(pass - 1);  // bits already decided
    uint32_t* hist = s_hist[pass & 1];

    for (int b = tid; b < kRadixBins; b += kTopkThreads) hist[b] = 0;
    __syncthreads();
    for (int64_t i0 = s0 + tid; i0 < s1; i0 += int64_t(kLoadUnroll) * kTopkThreads) {
      uint32_t u[kLoadUnroll];
#pragma unroll
      for (int j = 0; j < kLoadUnroll; ++j) {
        const int64_t i = i0 + int64_t(j) * kTopkThreads;
        u[j] = i < s1 ? __ldg(bits + i) : 0u;
      }
#pragma unroll
      for (int j = 0; j < kLoadUnroll; ++j) {
        const int64_t i = i0 + int64_t(j) * kTopkThreads;
        if (i < s1 && (u[j] & high_mask) == prefix) atomicAdd(&hist[(u[j] >> shift) & digit_mask], 1u);
      }
    }
    cluster.sync();  // every CTA's histogram of this pass is complete and visible to the whole cluster

    for (int b = tid; b < kRadixBins; b += kTopkThreads) {
      uint32_t sum = 0;
      for (int c = 0; c < n_ctas; ++c) sum += cluster.map_shared_rank(hist, c)[b];
      s_merged[b] = sum;
    }
    __syncthreads();

    // T's digit: walking the bins from the top, the first bin where the running count reaches k_left. Thread t
    // holds bins 2047 - 2t and 2046 - 2t (descending order = thread order). Each value packs the item's count (high
    // half) and this CTA's count (low half); both totals are < 2^31, so the halves never carry into each other.
    const int b0 = kRadixBins - 1 - 2 * tid, b1 = b0 - 1;
    const unsigned long long v0 = (static_cast<unsigned long long>(s_merged[b0]) << 32) | hist[b0];
    const unsigned long long v1 = (static_cast<unsigned long long>(s_merged[b1]) << 32) | hist[b1];
    unsigned long long total;
    const unsigned long long before0 = block_inclusive_scan(v0 + v1, s_scan64, &total) - v0 - v1;  // bins above b0
    const unsigned long long before1 = before0 + v0;                                               // bins above b1
    // Exactly one bin satisfies above < k_left <= above + count (the candidates number >= k_left).
    auto pick = [&](int b, unsigned long long before, unsigned long long v) {
      const uint32_t above = uint32_t(before >> 32), here = uint32_t(v >> 32);
      if (above < k_left && k_left - above <= here) {
        s_sel[0] = uint32_t(b);
        s_sel[1] = k_left - above;
        s_sel[2] = uint32_t(before);  // this CTA's candidates in bins above: > T
        s_sel[3] = uint32_t(v);       // this CTA's candidates in the bin: == T after the last pass
      }
    };
    pick(b0, before0, v0);
    pick(b1, before1, v1);
    __syncthreads();
    prefix |= s_sel[0] << shift;
    k_left = s_sel[1];
    cta_above += s_sel[2];
    cta_equal = s_sel[3];
    // s_sel and s_merged are rewritten only after the next pass's barriers, which every thread passes after these
    // reads.
  }
  const uint32_t T = prefix;  // bits of the k-th largest mass
  const int32_t take_equal = int32_t(k_left);  // keys with mass == T to keep, the lowest positions first

  // Offsets of this CTA's slice in the output: counts of the lower-ranked CTAs (their slices come first).
  if (tid == 0) {
    s_counts[0] = int32_t(cta_above);
    s_counts[1] = int32_t(cta_equal);
  }
  cluster.sync();  // counts visible; also every CTA is done reading the last pass's histograms
  if (tid == 0) {
    int32_t above = 0, equal = 0;
    for (int c = 0; c < rank; ++c) {
      const int32_t* remote = cluster.map_shared_rank(s_counts, c);
      above += remote[0];
      equal += remote[1];
    }
    s_base[0] = above;
    s_base[1] = equal;
  }
  // A CTA must not exit while others may still read its shared memory: arrive now, wait before returning.
  cluster.barrier_arrive();
  __syncthreads();

  // Ordered pass: chunks of kFinalItems * kTopkThreads keys, thread t owning kFinalItems consecutive keys, so the
  // block's prefix sum over threads is the count over all earlier keys of the chunk. A key is kept if mass > T, or
  // mass == T and fewer than take_equal equal keys precede it in the item; its output slot is the number of kept
  // keys before it: (keys > T before it) + min(keys == T before it, take_equal).
  int32_t above_run = s_base[0], equal_run = s_base[1];  // counts over all keys of the item before the chunk
  for (int64_t c0 = s0; c0 < s1; c0 += int64_t(kFinalItems) * kTopkThreads) {
    if (above_run + min(equal_run, take_equal) >= k) break;  // all k slots filled by earlier keys (block-uniform)
    const int64_t i0 = c0 + int64_t(tid) * kFinalItems;
    uint32_t u[kFinalItems];
    uint32_t packed = 0;  // this thread's (count > T) | (count == T) << 16
#pragma unroll
    for (int j = 0; j < kFinalItems; ++j) {
      const bool in = i0 + j < s1;
      u[j] = in ? __ldg(bits + i0 + j) : 0u;
      packed += (in && u[j] > T ? 1u : 0u) + (in && u[j] == T ? 1u << 16 : 0u);
    }
    uint32_t chunk_total;
    const uint32_t excl = block_inclusive_scan(packed, s_scan32, &chunk_total) - packed;
    int32_t above = above_run + int32_t(excl & 0xffffu), equal = equal_run + int32_t(excl >> 16);
#pragma unroll
    for (int j = 0; j < kFinalItems; ++j) {
      if (i0 + j >= s1) break;
      if (u[j] > T) {
        out[above + min(equal, take_equal)] = lo + int32_t(i0 + j);
        ++above;
      } else if (u[j] == T) {
        if (equal < take_equal) out[above + equal] = lo + int32_t(i0 + j);
        ++equal;
      }
    }
    above_run += int32_t(chunk_total & 0xffffu);
    equal_run += int32_t(chunk_total >> 16);
  }
  if (rank == 0 && tid == 0) p.out_count[item] = k;
  cluster.barrier_wait();
}

// ---- launchers ----------------------------------------------------------------------------------------------

namespace {

// Resident clusters of the top-k kernel per cluster size 1, 2, 4, 8, 16 on the current device
// (0: that size cannot run; 16 is non-portable and needs the whole cluster inside one GPC). Cached per device: the
// occupancy queries cost microseconds.
// Launch configuration of the top-k kernel: `blocks` CTAs of kTopkThreads in clusters of `cluster`. attr is the
// caller's storage for the cluster attribute the configuration points to.
cudaLaunchConfig_t topk_launch_config(int64_t blocks, int cluster, cudaStream_t stream, cudaLaunchAttribute& attr) {
  attr = {};
  attr.id = cudaLaunchAttributeClusterDimension;
  attr.val.clusterDim.x = unsigned(cluster);
  attr.val.clusterDim.y = 1;
  attr.val.clusterDim.z = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(unsigned(blocks));
  cfg.blockDim = dim3(kTopkThreads);
  cfg.dynamicSmemBytes = 0;
  cfg.stream = stream;
  cfg.attrs = &attr;
  cfg.numAttrs = 1;
  return cfg;
}

struct SelectClusterFit {
  int active[kClusterSizes];
};

const SelectClusterFit& select_cluster_fit() {
  static SelectClusterFit cache[64] = {};
  static std::atomic<bool> ready[64] = {};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  SelectClusterFit& fit = cache[device & 63];
  if (ready[device & 63].load()) return fit;
  CUDA_CHECK(cudaFuncSetAttribute(kernel_attention_select_topk, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  for (int e = 0; e < kClusterSizes; ++e) {
    const int size = 1 << e;
    cudaLaunchAttribute attr = {};
    const cudaLaunchConfig_t cfg = topk_launch_config(size, size, nullptr, attr);
    int clusters = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, kernel_attention_select_topk, &cfg) != cudaSuccess) {
      (void)cudaGetLastError();  // a size the device cannot run is an answer, not an error
      clusters = 0;
    }
    fit.active[e] = clusters;
  }
  ready[device & 63].store(true);
  return fit;
}

// The cluster size with the shortest estimated run: waves(C) = ceil(n_items / resident clusters) rounds, each of
// 1/C of an item's keys per CTA, so cost ~ waves(C) / C; ties to the smaller cluster (fewer barriers, less merging).
// Batch 1 (n_kv_heads items of up to millions of keys) gets 8 or 16 CTAs per item; a large batch one CTA per item.
int select_cluster_size(int64_t n_items) {
  const SelectClusterFit& fit = select_cluster_fit();
  int best = 1;
  int64_t best_waves = -1;
  for (int e = 0; e < kClusterSizes; ++e) {
    if (fit.active[e] <= 0) continue;
    const int size = 1 << e;
    const int64_t waves = (n_items + fit.active[e] - 1) / fit.active[e];
    // waves / size < best_waves / best, in integers
    if (best_waves < 0 || waves * best < best_waves * size) {
      best = size;
      best_waves = waves;
    }
  }
  return best;
}

}  // namespace

void launch_attention_select_topk(const SelectTopkParams& p, cudaStream_t stream) {
  if (p.n_rows <= 0 || p.n_kv_heads <= 0) return;
  const int sms = cuda_sm_count();

  // Masses: about 4 blocks per SM over all rows (spans are on the device; blocks past a row's span leave at once).
  const int32_t chunks_per_row = std::max<int32_t>(1, (4 * sms + p.n_rows - 1) / p.n_rows);
  const int64_t mass_blocks = int64_t(p.n_rows) * chunks_per_row;
  kernel_attention_select_mass<<<unsigned(mass_blocks), kMassThreads, size_t(p.n_heads) * sizeof(float), stream>>>(
      p, chunks_per_row);
  CUDA_CHECK_LAUNCH();

  // Top-k: one cluster per item.
  const int64_t n_items = int64_t(p.n_rows) * p.n_kv_heads;
  const int cluster = select_cluster_size(n_items);

  cudaLaunchAttribute attr = {};
  const cudaLaunchConfig_t cfg = topk_launch_config(n_items * cluster, cluster, stream, attr);
  CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel_attention_select_topk, p));
}

}  // namespace lcllm
