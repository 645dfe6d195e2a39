// A small seeded RNG for task generation: splitmix64, with our own bounded draws, so the same seed builds the same
// haystacks on every platform and standard library (std::uniform_int_distribution is implementation-defined).
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

namespace lcllm {

class EvalRng {
 public:
  explicit EvalRng(uint64_t seed) : state_(seed) {}
  // A seed derived from a base seed and cell coordinates (length, depth, sample...), so every cell has its own
  // stream and adding cells never changes the others.
  static uint64_t derive(uint64_t seed, std::initializer_list<uint64_t> parts) {
    uint64_t s = seed ^ 0x9E3779B97F4A7C15ULL;
    for (uint64_t p : parts) {
      EvalRng r(s ^ (p * 0xBF58476D1CE4E5B9ULL));
      s = r.next();
    }
    return s;
  }
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n), n > 0 (rejection sampling: no modulo bias).
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do v = next();
    while (v >= limit);
    return v % n;
  }
  // k distinct indices from [0, n) in draw order (partial Fisher-Yates).
  std::vector<std::size_t> sample(std::size_t n, std::size_t k) {
    std::vector<std::size_t> idx(n);
    for (std::size_t i = 0; i < n; ++i) idx[i] = i;
    for (std::size_t i = 0; i < k && i < n; ++i) std::swap(idx[i], idx[i + below(n - i)]);
    idx.resize(k < n ? k : n);
    return idx;
  }
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  uint64_t state_;
};

}  // namespace lcllm
