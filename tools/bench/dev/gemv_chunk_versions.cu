// The decode GEMV's two load widths as numbered versions (E9 item 4: experiments out of production code), checked
// against a double-precision CPU reference on fresh random inputs and timed with CUDA events:
//   version 1: CHUNK 8 (16-byte loads per lane per round) x MIN_BLOCKS 4 — retired 2026-12-05 (it was
//              LCLLM_GEMV_CHUNK=8; the same speed: 8.03 vs 8.05 ms decode at 32k on the H100);
//   version 2: CHUNK 16 x MIN_BLOCKS 2 — production (kernels/gemv.cu).
// Both are instances of the production kernel template, which this program compiles in its own translation unit.
//
// Build and run from the repository root (one H100/H200, sm_90a):
//   nvcc -std=c++20 -O3 -gencode=arch=compute_90a,code=sm_90a -I. -Isrc -Iinclude \
//     tools/bench/dev/gemv_chunk_versions.cu -o /tmp/gemv_versions && /tmp/gemv_versions
// Exit code 0 when every version matches the reference (relative error <= 1e-4 against fp64 over bf16-rounded x).
#include "../../../kernels/gemv.cu"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

using namespace lcllm;

namespace {

struct Shape {
  const char* name;
  int32_t n_out, n_in;
};

uint16_t to_bf16(float f) {  // round to nearest even (no NaN inputs here)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
float from_bf16(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

template <int CHUNK, int MIN_BLOCKS>
void launch_version(const GemvParams& p, int64_t total, cudaStream_t s) {
  launch_rows<1, CHUNK, MIN_BLOCKS, false, false>(p, total, s);
}

}  // namespace

int main() {
  // Llama-3.1-8B decode projections: q/k/v as one (6144 x 4096), gate+up (28672 x 4096), down (4096 x 14336).
  const Shape shapes[] = {{"qkv", 6144, 4096}, {"gate_up", 28672, 4096}, {"down", 4096, 14336}};
  std::mt19937 g(std::random_device{}());
  std::normal_distribution<float> nd(0.f, 1.f);
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreate(&stream));
  bool ok = true;
  for (const Shape& sh : shapes) {
    const size_t nw = size_t(sh.n_out) * size_t(sh.n_in);
    std::vector<uint16_t> w(nw);
    for (auto& v : w) v = to_bf16(nd(g) * 0.02f);
    std::vector<float> x(size_t(sh.n_in));
    for (auto& v : x) v = nd(g);
    std::vector<double> ref(size_t(sh.n_out));  // Σ bf16(x) · w in fp64
    for (int32_t o = 0; o < sh.n_out; ++o) {
      double acc = 0;
      for (int32_t i = 0; i < sh.n_in; ++i) acc += double(from_bf16(to_bf16(x[size_t(i)]))) * from_bf16(w[size_t(o) * sh.n_in + i]);
      ref[size_t(o)] = acc;
    }
    uint16_t* dw = nullptr;
    float *dx = nullptr, *dout = nullptr;
    CUDA_CHECK(cudaMalloc(&dw, nw * 2));
    CUDA_CHECK(cudaMalloc(&dx, x.size() * 4));
    CUDA_CHECK(cudaMalloc(&dout, ref.size() * 4));
    CUDA_CHECK(cudaMemcpy(dw, w.data(), nw * 2, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
    GemvParams p{};
    p.x = dx;
    p.seg[0] = GemvSegment{dw, dout, nullptr, sh.n_out};
    p.n_segments = 1;
    p.n_rows = 1;
    p.n_in = sh.n_in;
    using Launch = void (*)(const GemvParams&, int64_t, cudaStream_t);
    const std::pair<const char*, Launch> versions[] = {{"v1 chunk 8 x 4 blocks", launch_version<8, 4>},
                                                       {"v2 chunk 16 x 2 blocks (production)", launch_version<16, 2>}};
    for (const auto& [name, launch] : versions) {
      CUDA_CHECK(cudaMemset(dout, 0xff, ref.size() * 4));  // NaN: an unwritten output fails the check
      launch(p, sh.n_out, stream);
      CUDA_CHECK(cudaStreamSynchronize(stream));
      std::vector<float> got(ref.size());
      CUDA_CHECK(cudaMemcpy(got.data(), dout, got.size() * 4, cudaMemcpyDeviceToHost));
      double diff = 0, norm = 0;
      for (size_t o = 0; o < ref.size(); ++o) {
        diff += (double(got[o]) - ref[o]) * (double(got[o]) - ref[o]);
        norm += ref[o] * ref[o];
      }
      const double rel = std::sqrt(diff / norm);
      const bool pass = std::isfinite(rel) && rel <= 1e-4;  // fp32 sums of up to 14336 terms
      ok = ok && pass;
      cudaEvent_t a, b;
      CUDA_CHECK(cudaEventCreate(&a));
      CUDA_CHECK(cudaEventCreate(&b));
      for (int w_ = 0; w_ < 5; ++w_) launch(p, sh.n_out, stream);
      constexpr int kReps = 50;
      CUDA_CHECK(cudaEventRecord(a, stream));
      for (int r = 0; r < kReps; ++r) launch(p, sh.n_out, stream);
      CUDA_CHECK(cudaEventRecord(b, stream));
      CUDA_CHECK(cudaEventSynchronize(b));
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
      const double us = 1e3 * ms / kReps;
      std::printf("{\"shape\": \"%s\", \"version\": \"%s\", \"rel_error\": %.2e, \"pass\": %s, \"us\": %.2f, "
                  "\"weight_gbps\": %.1f}\n",
                  sh.name, name, rel, pass ? "true" : "false", us, double(nw) * 2 / (us * 1e-6) / 1e9);
      CUDA_CHECK(cudaEventDestroy(a));
      CUDA_CHECK(cudaEventDestroy(b));
    }
    CUDA_CHECK(cudaFree(dw));
    CUDA_CHECK(cudaFree(dx));
    CUDA_CHECK(cudaFree(dout));
  }
  CUDA_CHECK(cudaStreamDestroy(stream));
  return ok ? 0 : 1;
}
