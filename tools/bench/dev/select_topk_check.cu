// Standalone check of kernels/attention_select.cu (TidalDecode top-k selection) against a CPU reference with the
// semantics of CpuBackend::attention_select_topk: mass[i] = sum over the group's heads of softmax probabilities,
// keep the min(k, span) largest, ties to the lower position, ascending positions.
//
// Build and run from the repository root (one H100/H200, sm_90a):
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -I. tools/bench/dev/select_topk_check.cu \
//     -o /tmp/select_topk_check && /tmp/select_topk_check
// Exit code 0 when every case passes. Per item (row, kv head) with 0 < k < span it checks:
//   1. GPU masses (the kernel's scratch) against double-precision masses, relative error <= 1e-5;
//   2. GPU positions == an exact host top-k over the GPU's own fp32 masses (tests the radix select and the ordered
//      pass bit for bit, ties included);
//   3. GPU positions against the top-k of the double masses: identical, except (random-score cases only) swaps of
//      keys whose double masses lie within 1e-5 relative of the threshold (fp32 rounding decides those).
// Items with k >= span must list every visible position; items with k == 0 must leave their outputs untouched.
// Then it times launch_attention_select_topk (mass + top-k kernels) for batch 1, 8 KV heads, group 4, k 2048.
#include "../../../kernels/attention_select.cu"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace lcllm;

namespace {

enum class ScoreKind {
  kRandom,     // normal logits plus a few heavy hitters: well-separated masses (fp32 ties possible at 1M keys)
  kQuantised,  // every key takes one of 4 levels per head, the same level index in all heads: many exact mass ties
  kMasked,     // random, but 2 keys in 3 are -inf in every head: mass exactly 0, ties at T = 0
};

struct Case {
  std::string name;
  int32_t n_kv_heads, group;
  std::vector<int32_t> spans;  // [n_rows]
  std::vector<int32_t> k;      // [n_rows * n_kv_heads]
  ScoreKind kind;
  bool exact;                  // the positions must equal the double-precision reference's exactly
  bool timed = false;
};

struct Host {
  std::vector<float> scores;        // row blocks [n_heads][span_r] at offset[r]
  std::vector<int64_t> offset;      // [n_rows]
  std::vector<float> lse2;          // [n_rows, n_heads]
  std::vector<int32_t> lo, span, k; // [n_rows], [n_rows], [n_rows * n_kv_heads]
  int64_t total = 0;                // elements of scores (and of the mass scratch)
  int32_t stride = 1;
};

constexpr float kLog2e = 1.4426950408889634f;
constexpr int32_t kUntouched = -7;

Host build_inputs(const Case& c, uint32_t seed) {
  Host h;
  const int32_t n_rows = int32_t(c.spans.size()), n_heads = c.n_kv_heads * c.group;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 2.f);
  std::uniform_real_distribution<float> uni(-6.f, 6.f);
  h.span = c.spans;
  h.k = c.k;
  for (int32_t r = 0; r < n_rows; ++r) {
    h.offset.push_back(h.total + 3);  // odd padding: row blocks are not 16-byte aligned
    h.total += 3 + int64_t(n_heads) * c.spans[size_t(r)];
    h.lo.push_back(17 * r + 5);
  }
  h.scores.assign(size_t(h.total), 0.f);
  h.lse2.assign(size_t(n_rows) * n_heads, 0.f);
  for (int32_t r = 0; r < n_rows; ++r) {
    const int32_t span = c.spans[size_t(r)];
    float* block = h.scores.data() + h.offset[size_t(r)];
    std::vector<int32_t> bucket(static_cast<size_t>(span));
    for (auto& b : bucket) b = int32_t(rng() % 4);
    std::vector<float> level(size_t(n_heads) * 4);
    for (auto& l : level) l = uni(rng) * kLog2e;
    for (int32_t g = 0; g < n_heads; ++g) {
      float* s = block + int64_t(g) * span;
      for (int32_t i = 0; i < span; ++i) {
        switch (c.kind) {
          case ScoreKind::kQuantised: s[i] = level[size_t(g) * 4 + size_t(bucket[size_t(i)])]; break;
          case ScoreKind::kMasked:
            s[i] = i % 3 == 0 ? normal(rng) * kLog2e : -std::numeric_limits<float>::infinity();
            break;
          case ScoreKind::kRandom: s[i] = (normal(rng) + (rng() % 100 == 0 ? 6.f : 0.f)) * kLog2e; break;
        }
      }
      // lse2 in double from the fp32 scores, rounded once: what the merge kernel hands over.
      double mx = -std::numeric_limits<double>::infinity();
      for (int32_t i = 0; i < span; ++i) mx = std::max(mx, double(s[i]));
      double sum = 0;
      if (mx > -std::numeric_limits<double>::infinity())
        for (int32_t i = 0; i < span; ++i) sum += std::exp2(double(s[i]) - mx);
      h.lse2[size_t(r) * n_heads + size_t(g)] = sum > 0 ? float(mx + std::log2(sum)) : -INFINITY;
    }
    for (int32_t kvh = 0; kvh < c.n_kv_heads; ++kvh)
      h.stride = std::max(h.stride, std::min(c.k[size_t(r) * c.n_kv_heads + size_t(kvh)], span));
  }
  return h;
}

// Top-k of `mass` (largest first, ties to the lower index), returned as ascending indices.
template <typename T>
std::vector<int32_t> host_topk(const std::vector<T>& mass, int32_t k) {
  const int32_t n = int32_t(mass.size());
  std::vector<int32_t> order(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) order[size_t(i)] = i;
  const size_t keep = size_t(std::min(k, n));
  auto better = [&](int32_t a, int32_t b) {
    return mass[size_t(a)] > mass[size_t(b)] || (mass[size_t(a)] == mass[size_t(b)] && a < b);
  };
  std::nth_element(order.begin(), order.begin() + std::ptrdiff_t(keep), order.end(), better);
  order.resize(keep);
  std::sort(order.begin(), order.end());
  return order;
}

struct Device {
  float *scores = nullptr, *lse2 = nullptr, *mass = nullptr;
  int64_t* offset = nullptr;
  int32_t *lo = nullptr, *span = nullptr, *k = nullptr, *pos = nullptr, *count = nullptr;
  ~Device() {
    for (void* p : {(void*)scores, (void*)lse2, (void*)mass, (void*)offset, (void*)lo, (void*)span, (void*)k,
                    (void*)pos, (void*)count})
      if (p) cudaFree(p);
  }
};

template <typename T>
T* upload(const std::vector<T>& v) {
  T* d = nullptr;
  CUDA_CHECK(cudaMalloc(&d, std::max<size_t>(1, v.size()) * sizeof(T)));
  if (!v.empty()) CUDA_CHECK(cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

bool run_case(const Case& c, uint32_t seed) {
  if (c.k.size() != c.spans.size() * size_t(c.n_kv_heads)) {
    std::printf("FAIL %-44s malformed case: k needs n_rows * n_kv_heads entries\n", c.name.c_str());
    return false;
  }
  const Host h = build_inputs(c, seed);
  const int32_t n_rows = int32_t(c.spans.size()), n_heads = c.n_kv_heads * c.group;
  const int64_t n_items = int64_t(n_rows) * c.n_kv_heads;

  Device d;
  d.scores = upload(h.scores);
  d.lse2 = upload(h.lse2);
  d.offset = upload(h.offset);
  d.lo = upload(h.lo);
  d.span = upload(h.span);
  d.k = upload(h.k);
  d.pos = upload(std::vector<int32_t>(size_t(n_items * h.stride), kUntouched));
  d.count = upload(std::vector<int32_t>(size_t(n_items), kUntouched));
  CUDA_CHECK(cudaMalloc(&d.mass, size_t(std::max<int64_t>(1, h.total)) * sizeof(float)));
  CUDA_CHECK(cudaMemset(d.mass, 0xff, size_t(std::max<int64_t>(1, h.total)) * sizeof(float)));  // NaN garbage

  SelectTopkParams p{};
  p.scores = d.scores;
  p.score_offset = d.offset;
  p.lse2 = d.lse2;
  p.row_lo = d.lo;
  p.row_span = d.span;
  p.k = d.k;
  p.mass = d.mass;
  p.out_positions = d.pos;
  p.out_count = d.count;
  p.n_rows = n_rows;
  p.n_heads = n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.stride = h.stride;
  launch_attention_select_topk(p, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());

  std::vector<int32_t> pos(size_t(n_items * h.stride)), count(static_cast<size_t>(n_items));
  std::vector<float> mass_gpu(size_t(h.total));
  CUDA_CHECK(cudaMemcpy(pos.data(), d.pos, pos.size() * sizeof(int32_t), cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(count.data(), d.count, count.size() * sizeof(int32_t), cudaMemcpyDeviceToHost));
  if (h.total > 0)
    CUDA_CHECK(cudaMemcpy(mass_gpu.data(), d.mass, mass_gpu.size() * sizeof(float), cudaMemcpyDeviceToHost));

  bool ok = true;
  double worst_rel = 0;
  int64_t near_tie_swaps = 0;
  std::string why;
  auto fail = [&](const std::string& msg) {
    if (ok) why = msg;
    ok = false;
  };
  for (int64_t item = 0; item < n_items && ok; ++item) {
    const int32_t r = int32_t(item / c.n_kv_heads), kvh = int32_t(item % c.n_kv_heads);
    const int32_t k = h.k[size_t(item)], span = h.span[size_t(r)], lo = h.lo[size_t(r)];
    const int32_t* got = pos.data() + item * h.stride;
    const std::string tag = "item " + std::to_string(item) + " (span " + std::to_string(span) + ", k " +
                            std::to_string(k) + "): ";
    if (k <= 0) {
      if (count[size_t(item)] != kUntouched) fail(tag + "count written for an unselected item");
      for (int32_t j = 0; j < h.stride; ++j)
        if (got[j] != kUntouched) fail(tag + "positions written for an unselected item");
      continue;
    }
    const int32_t keep = std::min(k, span);
    if (count[size_t(item)] != keep) {
      fail(tag + "count " + std::to_string(count[size_t(item)]) + " != " + std::to_string(keep));
      continue;
    }
    for (int32_t j = keep; j < h.stride; ++j)
      if (got[j] != kUntouched) fail(tag + "wrote past the kept count");
    if (k >= span) {
      for (int32_t j = 0; j < span; ++j)
        if (got[j] != lo + j) fail(tag + "k >= span must list every position");
      continue;
    }
    // Reference masses in double from the same fp32 inputs.
    const float* block = h.scores.data() + h.offset[size_t(r)];
    std::vector<double> ref(size_t(span), 0.0);
    for (int32_t g = kvh * c.group; g < (kvh + 1) * c.group; ++g) {
      const double l = h.lse2[size_t(r) * n_heads + size_t(g)];
      if (std::isinf(l)) continue;
      const float* s = block + int64_t(g) * span;
      for (int32_t i = 0; i < span; ++i) ref[size_t(i)] += std::exp2(double(s[i]) - l);
    }
    const float* mg = mass_gpu.data() + h.offset[size_t(r)] + int64_t(kvh) * span;
    std::vector<float> gpu_mass(mg, mg + span);
    for (int32_t i = 0; i < span; ++i) {
      const double e = std::fabs(double(gpu_mass[size_t(i)]) - ref[size_t(i)]);
      if (!(e <= 1e-5 * ref[size_t(i)] + 1e-35)) {
        fail(tag + "mass[" + std::to_string(i) + "] gpu " + std::to_string(gpu_mass[size_t(i)]) + " ref " +
             std::to_string(ref[size_t(i)]));
        break;
      }
      if (ref[size_t(i)] > 1e-30) worst_rel = std::max(worst_rel, e / ref[size_t(i)]);
    }
    // 2. exact against a host top-k over the GPU's fp32 masses.
    const std::vector<int32_t> want_gpu = host_topk(gpu_mass, k);
    for (int32_t j = 0; j < keep && ok; ++j)
      if (got[j] != lo + want_gpu[size_t(j)])
        fail(tag + "slot " + std::to_string(j) + " got " + std::to_string(got[j]) + " want " +
             std::to_string(lo + want_gpu[size_t(j)]) + " (top-k over the GPU masses)");
    // 3. against the double-precision reference.
    const std::vector<int32_t> want_ref = host_topk(ref, k);
    double threshold = std::numeric_limits<double>::infinity();
    for (int32_t i : want_ref) threshold = std::min(threshold, ref[size_t(i)]);
    std::vector<int32_t> got_idx(got, got + keep), diff;
    for (auto& g : got_idx) g -= lo;
    std::set_symmetric_difference(got_idx.begin(), got_idx.end(), want_ref.begin(), want_ref.end(),
                                  std::back_inserter(diff));
    for (int32_t i : diff) {
      const bool near = std::fabs(ref[size_t(i)] - threshold) <= 1e-5 * threshold;
      if (c.exact || !near) {
        fail(tag + "position " + std::to_string(lo + i) + " differs from the double reference (mass " +
             std::to_string(ref[size_t(i)]) + ", threshold " + std::to_string(threshold) + ")");
        break;
      }
    }
    near_tie_swaps += int64_t(diff.size()) / 2;
  }
  std::printf("%-4s %-44s max mass rel err %.2e, near-tie swaps vs double %lld%s%s\n", ok ? "PASS" : "FAIL",
              c.name.c_str(), worst_rel, (long long)near_tie_swaps, ok ? "" : "\n     ", why.c_str());

  if (ok && c.timed) {
    cudaEvent_t a, b;
    CUDA_CHECK(cudaEventCreate(&a));
    CUDA_CHECK(cudaEventCreate(&b));
    for (int w = 0; w < 3; ++w) launch_attention_select_topk(p, nullptr);
    std::vector<float> ms;
    for (int it = 0; it < 20; ++it) {
      CUDA_CHECK(cudaEventRecord(a, nullptr));
      launch_attention_select_topk(p, nullptr);
      CUDA_CHECK(cudaEventRecord(b, nullptr));
      CUDA_CHECK(cudaEventSynchronize(b));
      float t = 0;
      CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
      ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    const double med = 0.5 * (ms[9] + ms[10]) * 1e3;  // µs
    int64_t span_sum = 0;
    for (int32_t s : c.spans) span_sum += s;
    const double bytes = double(span_sum) * n_heads * 4 + double(span_sum) * c.n_kv_heads * 4 * 5;  // scores + mass
    std::printf("     time: median of 20 %.1f us (min %.1f); %.0f GB/s effective (scores read once, mass written "
                "once and read 4 times)\n",
                med, ms[0] * 1e3, bytes / (med * 1e-6) / 1e9);
    CUDA_CHECK(cudaEventDestroy(a));
    CUDA_CHECK(cudaEventDestroy(b));
  }
  return ok;
}

std::vector<int32_t> repeat(std::vector<int32_t> per_head, int32_t rows) {
  std::vector<int32_t> v;
  for (int32_t r = 0; r < rows; ++r) v.insert(v.end(), per_head.begin(), per_head.end());
  return v;
}

}  // namespace

int main() {
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);

  const int32_t big = 1 << 30;  // k > any span: keep everything
  std::vector<Case> cases = {
      {"span 1, group 1, k 1/5/0", 3, 1, {1}, {1, 5, 0}, ScoreKind::kRandom, true},
      {"span 7, group 4, k 1/3/6/7/100", 5, 4, {7}, {1, 3, 6, 7, 100}, ScoreKind::kRandom, false},
      {"span 1000, group 8, k 1/100/999/1000/2048", 5, 8, {1000}, {1, 100, 999, 1000, 2048}, ScoreKind::kRandom,
       false},
      {"span 4097, group 4, k 1/100/2048/4096/5000", 5, 4, {4097}, {1, 100, 2048, 4096, 5000}, ScoreKind::kRandom,
       false},
      {"span 5000, group 16, k 100/4999", 2, 16, {5000}, {100, 4999}, ScoreKind::kRandom, false},
      {"span 131072, group 4, k 1/100/2048/big", 4, 4, {131072}, {1, 100, 2048, big}, ScoreKind::kRandom, false},
      {"span 1048576, group 1, k 1/100/2048/65536", 4, 1, {1048576}, {1, 100, 2048, 65536}, ScoreKind::kRandom,
       false},
      {"span 1048576, group 8, k 2048/524288", 2, 8, {1048576}, {2048, 524288}, ScoreKind::kRandom, false},
      {"6 rows spans 0..4097, group 4, mixed k (0s)", 2, 4, {0, 1, 7, 1000, 4097, 33},
       {3, 0, 1, 1, 0, 2, 100, 999, 2048, 0, 5, 40}, ScoreKind::kRandom, false},
      {"ties: span 4097, 4 levels, group 4", 3, 4, {4097}, {1, 100, 2048}, ScoreKind::kQuantised, true},
      {"ties: span 131072, 4 levels, group 8", 3, 8, {131072}, {1, 2048, 100000}, ScoreKind::kQuantised, true},
      {"ties: span 1048576, 4 levels, group 4", 2, 4, {1048576}, {777, 300000}, ScoreKind::kQuantised, true},
      {"ties at 0: span 1000, 2/3 keys -inf, group 4", 2, 4, {1000}, {400, 999}, ScoreKind::kMasked, true},
      {"ties at 0: span 131072, 2/3 keys -inf, group 1", 2, 1, {131072}, {50000, 131071}, ScoreKind::kMasked, true},
      {"many rows: 64 x span 3000, group 4, k 256", 8, 4, std::vector<int32_t>(64, 3000),
       std::vector<int32_t>(64 * 8, 256), ScoreKind::kRandom, false},
      {"timing: batch 1, span 131072, 8 kv x group 4, k 2048", 8, 4, {131072}, repeat({2048}, 8),
       ScoreKind::kRandom, false, true},
      {"timing: batch 1, span 1048576, 8 kv x group 4, k 2048", 8, 4, {1048576}, repeat({2048}, 8),
       ScoreKind::kRandom, false, true},
  };
  int failures = 0;
  uint32_t seed = 1234;
  for (const Case& c : cases) failures += run_case(c, seed++) ? 0 : 1;
  std::printf("%s: %d of %zu cases failed\n", failures ? "FAIL" : "PASS", failures, cases.size());
  return failures ? 1 : 0;
}
