// Standalone check of warp_rotate (kernels/kv_rotation.cuh), the Hadamard rotation the fp8 rope + KV write runs in
// one warp (lane l holding elements l + 32 j), against the host reference kv_rotate_vector (src/kv/kv_rotation.h)
// that the CPU backend's fp8 emulation uses: both run the butterflies len = 1, 2, ..., n/2 on the same operands in
// the same order, so every element must agree bit for bit — a layout or ordering slip shows as a mismatch.
//
// Build and run from the repository root (one H100/H200, sm_90a):
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -I. -Isrc -Iinclude \
//     tools/bench/dev/warp_rotate_check.cu -o /tmp/warp_rotate_check && /tmp/warp_rotate_check
// Exit code 0 when the n = 64, 128 and 256 rotations of 1,000 random vectors each (magnitudes 2^-12 to 2^12) match.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cuda_check.h"
#include "kernels/kv_rotation.cuh"

using namespace lcllm;

namespace {

// One warp per vector of 32 E floats: [vectors][32 E] in place.
template <int E>
__global__ void rotate_vectors(float* x) {
  float* v = x + int64_t(blockIdx.x) * 32 * E;
  float r[E];
#pragma unroll
  for (int j = 0; j < E; ++j) r[j] = v[threadIdx.x + 32 * j];
  warp_rotate(r);
#pragma unroll
  for (int j = 0; j < E; ++j) v[threadIdx.x + 32 * j] = r[j];
}

template <int E>
bool check(std::mt19937& g) {
  constexpr int n = 32 * E, vectors = 1000;
  std::normal_distribution<float> nd;
  std::uniform_int_distribution<int> ex(-12, 12);
  std::vector<float> host(size_t(n) * vectors);
  for (float& f : host) f = std::ldexp(nd(g), ex(g));
  float* dev = nullptr;
  CUDA_CHECK(cudaMalloc(&dev, host.size() * sizeof(float)));
  CUDA_CHECK(cudaMemcpy(dev, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
  rotate_vectors<E><<<vectors, 32>>>(dev);
  CUDA_CHECK_LAUNCH();
  std::vector<float> got(host.size());
  CUDA_CHECK(cudaMemcpy(got.data(), dev, got.size() * sizeof(float), cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaFree(dev));
  for (int v = 0; v < vectors; ++v) kv_rotate_vector(host.data() + size_t(v) * n, n);
  const bool same = std::memcmp(got.data(), host.data(), host.size() * sizeof(float)) == 0;
  std::printf("n = %3d: %s\n", n, same ? "bit-identical to kv_rotate_vector" : "MISMATCH");
  return same;
}

}  // namespace

int main() {
  std::mt19937 g(std::random_device{}());
  const bool ok = check<2>(g) & check<4>(g) & check<8>(g);
  return ok ? 0 : 1;
}
