// Probe: what does a decode step's gather of scattered K/V rows cost, and why (KERNEL_NOTES 6g "What is left:
// scattered keys")? A cached HiP step reads ~3k keys per KV head scattered over the context (blocks of 2 positions),
// and the key-set decode kernel takes 35 us per layer at 32k and 75 us at 512k for them (ncu, H100) while 3,072
// contiguous keys per head take 12.5 us per whole layer. This program times the gather alone (no attention math),
// over a pool laid out as the engine's ([layer][slot][kv head][D] bf16 for K, the same for V), and separates:
//   - the pattern: contiguous keys vs blocks of 2 (HiP's block_size_k) vs blocks of 16, at the same key count;
//   - the span: the same pattern over a 32k vs a 512k-token pool (a TLB effect grows with the span, a DRAM one not);
//   - the CTA shape: loads issued one dependent chain at a time (position -> row load -> use, as the production
//     kernel's per-tile pipeline) vs every row of the CTA issued before the first is used (gather-shaped).
// Each variant's checksum is compared with a CPU sum over the same rows (fresh random bf16 bits).
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a tools/bench/dev/gather_probe.cu -o /tmp/gp && /tmp/gp
// Prints one JSON line per (context, pattern, shape): us per layer (mean over the layers of back-to-back launches).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#define CK(x)                                                                               \
  do {                                                                                      \
    cudaError_t e_ = (x);                                                                   \
    if (e_ != cudaSuccess) {                                                                \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                         \
    }                                                                                       \
  } while (0)

namespace {

constexpr int kHeads = 8, kDim = 128;               // Llama-3.1-8B's KV heads and head_dim
constexpr int kRowBytes = kDim * 2;                 // one head's K (or V) row, bf16: 256 bytes = 16 pieces of 16 B
constexpr int kSlotBytes = kHeads * kRowBytes;      // one slot: every head's row
constexpr int kLayers = 32;
constexpr int kKeys = 3072;                         // keys per KV head per layer (an aged hip-refresh8 mask)
constexpr int kThreads = 128;

// Chained: per 16-key tile, each thread reads its key's position (a dependent load), then its row piece, then
// accumulates; tiles one after another, 2 in flight (as the production ring). Gather: every position of the CTA's
// keys loaded first (one per thread), then every row piece issued, then used.
template <bool kGather, int kKeysPerCta>
__global__ void __launch_bounds__(kThreads) gather(const uint4* __restrict__ k_pool, const uint4* __restrict__ v_pool,
                                                   const int32_t* __restrict__ positions, int32_t n_keys,
                                                   int64_t layer_slots, int32_t layer, uint32_t* out) {
  const int head = blockIdx.x % kHeads, chunk = blockIdx.x / kHeads;
  const int32_t* pos = positions + int64_t(head) * n_keys;  // [head][n_keys]
  const int64_t layer_base = int64_t(layer) * layer_slots;
  const int32_t first = chunk * kKeysPerCta;
  const int32_t last = min(n_keys, first + kKeysPerCta);
  uint32_t acc = 0;
  // Threads: 16 pieces of a row x 8 rows at a time.
  const int piece = threadIdx.x & 15, sub = threadIdx.x >> 4;
  if constexpr (kGather) {
    constexpr int kPer = kKeysPerCta / 8;  // rows per thread
    int32_t p[kPer];
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int32_t key = first + sub + 8 * i;
      p[i] = key < last ? __ldg(pos + key) : -1;
    }
    uint4 kv[kPer], vv[kPer];
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int64_t off = (layer_base + max(p[i], 0)) * (kSlotBytes / 16) + head * (kRowBytes / 16) + piece;
      kv[i] = p[i] >= 0 ? __ldg(k_pool + off) : make_uint4(0, 0, 0, 0);
      vv[i] = p[i] >= 0 ? __ldg(v_pool + off) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int i = 0; i < kPer; ++i) acc += kv[i].x + kv[i].y + kv[i].z + kv[i].w + vv[i].x + vv[i].y + vv[i].z + vv[i].w;
  } else {
    for (int32_t key = first + sub; key < last; key += 8) {
      const int32_t p = __ldg(pos + key);
      const int64_t off = (layer_base + p) * (kSlotBytes / 16) + head * (kRowBytes / 16) + piece;
      const uint4 a = __ldg(k_pool + off), b = __ldg(v_pool + off);
      acc += a.x + a.y + a.z + a.w + b.x + b.y + b.z + b.w;
    }
  }
  atomicAdd(out, acc);
}

// Positions [head][kKeys], ascending per head: contiguous = the last kKeys positions; blocks of `block` positions
// at distinct random block starts over the context (different per head, as HiP's per-head masks).
std::vector<int32_t> make_positions(int32_t context, int block, std::mt19937& g) {
  std::vector<int32_t> all(size_t(kHeads) * kKeys);
  for (int h = 0; h < kHeads; ++h) {
    std::vector<int32_t> ps;
    if (block == 0) {
      for (int i = 0; i < kKeys; ++i) ps.push_back(context - kKeys + i);
    } else {
      std::vector<int32_t> starts(size_t(context / block));
      for (size_t i = 0; i < starts.size(); ++i) starts[i] = int32_t(i) * block;
      std::shuffle(starts.begin(), starts.end(), g);
      starts.resize(size_t(kKeys / block));
      std::sort(starts.begin(), starts.end());
      for (int32_t s : starts)
        for (int j = 0; j < block; ++j) ps.push_back(s + j);
    }
    std::copy(ps.begin(), ps.end(), all.begin() + int64_t(h) * kKeys);
  }
  return all;
}

template <bool kGather, int kKeysPerCta>
double time_variant(const uint4* k, const uint4* v, const int32_t* d_pos, int64_t layer_slots, uint32_t* d_out,
                    uint32_t* checksum) {
  const int ctas = kHeads * ((kKeys + kKeysPerCta - 1) / kKeysPerCta);
  CK(cudaMemset(d_out, 0, 4));
  gather<kGather, kKeysPerCta><<<ctas, kThreads>>>(k, v, d_pos, kKeys, layer_slots, 0, d_out);
  CK(cudaGetLastError());
  CK(cudaMemcpy(checksum, d_out, 4, cudaMemcpyDeviceToHost));
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  for (int l = 0; l < kLayers; ++l) gather<kGather, kKeysPerCta><<<ctas, kThreads>>>(k, v, d_pos, kKeys, layer_slots, l, d_out);
  CK(cudaEventRecord(a));
  constexpr int kReps = 5;
  for (int r = 0; r < kReps; ++r)
    for (int l = 0; l < kLayers; ++l)
      gather<kGather, kKeysPerCta><<<ctas, kThreads>>>(k, v, d_pos, kKeys, layer_slots, l, d_out);
  CK(cudaEventRecord(b));
  CK(cudaEventSynchronize(b));
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, a, b));
  return 1e3 * ms / (kReps * kLayers);
}

}  // namespace

int main() {
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  std::mt19937 g(7);
  uint32_t* d_out;
  CK(cudaMalloc(&d_out, 4));
  int32_t* d_pos;
  CK(cudaMalloc(&d_pos, sizeof(int32_t) * kHeads * kKeys));
  for (int32_t context : {32768, 131072, 524288}) {
    const int64_t layer_slots = context;
    const size_t bytes = size_t(kLayers) * layer_slots * kSlotBytes;  // one of K or V
    uint4 *k, *v;
    CK(cudaMalloc(&k, bytes));
    CK(cudaMalloc(&v, bytes));
    // Layer 0's rows hold random bits (checked); the rest of the pool is whatever the allocator gave (timed only).
    std::vector<uint16_t> host(size_t(layer_slots) * kHeads * kDim);
    uint32_t state = 12345u;  // xorshift: a GB of random bits in a second (mt19937 would take several)
    auto next = [&] {
      state ^= state << 13;
      state ^= state >> 17;
      state ^= state << 5;
      return uint16_t(state);
    };
    for (auto& x : host) x = next();
    CK(cudaMemcpy(k, host.data(), host.size() * 2, cudaMemcpyHostToDevice));
    std::vector<uint16_t> hostv(host.size());
    for (auto& x : hostv) x = next();
    CK(cudaMemcpy(v, hostv.data(), hostv.size() * 2, cudaMemcpyHostToDevice));
    for (int block : {0, 2, 16}) {
      const std::vector<int32_t> pos = make_positions(context, block, g);
      CK(cudaMemcpy(d_pos, pos.data(), pos.size() * 4, cudaMemcpyHostToDevice));
      uint32_t want = 0;  // the sum of every 32-bit word of the gathered rows (layer 0), mod 2^32
      for (int h = 0; h < kHeads; ++h)
        for (int i = 0; i < kKeys; ++i) {
          const int64_t base = (int64_t(pos[size_t(h) * kKeys + i]) * kHeads + h) * kDim;
          for (int d = 0; d < kDim; d += 2) {
            want += uint32_t(host[size_t(base + d)]) | (uint32_t(host[size_t(base + d + 1)]) << 16);
            want += uint32_t(hostv[size_t(base + d)]) | (uint32_t(hostv[size_t(base + d + 1)]) << 16);
          }
        }
      struct Row { const char* shape; int keys_per_cta; double us; uint32_t sum; };
      std::vector<Row> rows;
      uint32_t s = 0;
      double t;
      t = time_variant<false, 64>(k, v, d_pos, layer_slots, d_out, &s); rows.push_back({"chained", 64, t, s});
      t = time_variant<true, 64>(k, v, d_pos, layer_slots, d_out, &s); rows.push_back({"gather", 64, t, s});
      t = time_variant<true, 128>(k, v, d_pos, layer_slots, d_out, &s); rows.push_back({"gather", 128, t, s});
      t = time_variant<true, 256>(k, v, d_pos, layer_slots, d_out, &s); rows.push_back({"gather", 256, t, s});
      const double mb = double(kHeads) * kKeys * 2 * kRowBytes / 1e6;
      for (const Row& r : rows)
        std::printf("{\"card\": \"%s\", \"context\": %d, \"pattern\": \"%s\", \"shape\": \"%s\", \"keys_per_cta\": %d, "
                    "\"us_per_layer\": %.2f, \"gbps\": %.0f, \"checksum_ok\": %s}\n",
                    prop.name, context, block == 0 ? "contiguous" : block == 2 ? "blocks_of_2" : "blocks_of_16",
                    r.shape, r.keys_per_cta, r.us, mb / r.us * 1e3, r.sum == want ? "true" : "false");
      std::fflush(stdout);
    }
    CK(cudaFree(k));
    CK(cudaFree(v));
  }
  return 0;
}
