// Attention kernel timings of the CUDA backend: causal GQA prefill TFLOP/s and decode effective GB/s (K+V bytes
// read / time, fp8: with the scale pairs), shapes of ARCHITECTURE.md §6 (32 query heads, 8 KV heads, head_dim 128 or
// --head-dim, bf16 KV or with --fp8 an fp8 e4m3 KV cache, page size 16, shuffled pages). Prints one JSON object per
// line; the kernel name says which version ran (earlier versions are numbered programs in tools/bench/dev/).
// Peer: tools/bench/attention_sdpa.py in the same run.
//   bench_attention_cuda [--fp8] [--head-dim N] [prefill_len ...] -- [decode_len ...]
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "backend/cuda/cuda_backend.h"
#include "kernels/attention.h"
#include "kernels/attention_prefill_wgmma.h"
#include "kernels/cuda_check.h"

using namespace lcllm;

namespace {

constexpr int32_t kHeads = 32, kKvHeads = 8, kPageSize = 16;
int32_t g_head_dim = 128;  // --head-dim: 64 (Llama-3.2-1B), 128 (8B) or any head_dim the backend takes

struct Setup {
  CsrPages csr;
  std::vector<int32_t> query_start, query_pos, kv_len;
};

// One sequence of `len` keys in shuffled pages; queries are its last n_q positions.
Setup make_setup(int32_t len, int32_t n_q, std::mt19937& g) {
  Setup s;
  const int32_t pages = (len + kPageSize - 1) / kPageSize;
  s.csr.indptr = {0, pages};
  s.csr.indices.resize(size_t(pages));
  for (int32_t i = 0; i < pages; ++i) s.csr.indices[size_t(i)] = i;
  std::shuffle(s.csr.indices.begin(), s.csr.indices.end(), g);
  s.csr.last_page_len = {len - (pages - 1) * kPageSize};
  s.query_start = {0, n_q};
  for (int32_t i = 0; i < n_q; ++i) s.query_pos.push_back(len - n_q + i);
  s.kv_len = {len};
  return s;
}

// Median over `reps` single calls, each between two events on an idle GPU (host work of the call included, like
// the SDPA peer), and the mean of `reps` back-to-back calls (host work overlapped with the GPU: kernel time).
struct Timing {
  double ms, ms_b2b;
};

Timing time_attention(CudaBackend& be, Tensor out, const Tensor& q, const Setup& s, int reps) {
  AttentionBatch b;
  b.query_start = s.query_start;
  b.query_pos = s.query_pos;
  b.kv_len = s.kv_len;
  b.pages = &s.csr;
  AttentionParams p;
  p.scale = 1.0f / std::sqrt(float(g_head_dim));
  be.attention(out, q, 0, b, p);  // warm-up
  be.synchronize();
  cudaEvent_t e0, e1;
  CUDA_CHECK(cudaEventCreate(&e0));
  CUDA_CHECK(cudaEventCreate(&e1));
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    CUDA_CHECK(cudaEventRecord(e0, be.stream()));
    be.attention(out, q, 0, b, p);
    CUDA_CHECK(cudaEventRecord(e1, be.stream()));
    CUDA_CHECK(cudaEventSynchronize(e1));
    float t = 0;
    CUDA_CHECK(cudaEventElapsedTime(&t, e0, e1));
    ms.push_back(t);
    be.synchronize();
  }
  CUDA_CHECK(cudaEventRecord(e0, be.stream()));
  for (int i = 0; i < reps; ++i) be.attention(out, q, 0, b, p);
  CUDA_CHECK(cudaEventRecord(e1, be.stream()));
  CUDA_CHECK(cudaEventSynchronize(e1));
  float total = 0;
  CUDA_CHECK(cudaEventElapsedTime(&total, e0, e1));
  CUDA_CHECK(cudaEventDestroy(e0));
  CUDA_CHECK(cudaEventDestroy(e1));
  std::sort(ms.begin(), ms.end());
  return Timing{ms[ms.size() / 2], double(total) / reps};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int32_t> prefill = {4096, 8192}, decode = {32768, 131072};
  bool fp8 = false, lengths_given = false, dec = false;
  // A whole number in [lo, hi], or -1.
  auto parse_int = [](const char* text, long lo, long hi) -> int32_t {
    char* rest = nullptr;
    errno = 0;
    const long v = std::strtol(text, &rest, 10);
    return errno == 0 && rest != text && *rest == '\0' && v >= lo && v <= hi ? int32_t(v) : -1;
  };
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--fp8") == 0) {
      fp8 = true;
    } else if (std::strcmp(argv[i], "--head-dim") == 0) {
      g_head_dim = i + 1 < argc ? parse_int(argv[++i], 8, 256) : -1;
      if (g_head_dim < 0 || g_head_dim % 8 != 0) {
        std::fprintf(stderr, "error: --head-dim takes a multiple of 8 in [8, 256]\n");
        return 2;
      }
    } else if (std::strcmp(argv[i], "--") == 0) {
      dec = true;
    } else {
      if (!lengths_given) {
        prefill.clear();
        decode.clear();
      }
      lengths_given = true;
      const int32_t len = parse_int(argv[i], 1, 1 << 24);
      if (len < 0) {
        std::fprintf(stderr, "error: '%s' is not a length in [1, 16777216] (usage: bench_attention_cuda [--fp8] "
                             "[--head-dim N] [prefill_len ...] -- [decode_len ...])\n", argv[i]);
        return 2;
      }
      (dec ? decode : prefill).push_back(len);
    }
  }
  if (dec && !lengths_given) {
    prefill.clear();
    decode.clear();
  }
  const KvDtype dtype = fp8 ? KvDtype::KV_DTYPE_FP8_E4M3 : KvDtype::KV_DTYPE_BF16;
  int32_t max_len = 0;
  for (int32_t l : prefill) max_len = std::max(max_len, l);
  for (int32_t l : decode) max_len = std::max(max_len, l);
  std::mt19937 g(1234);
  CudaBackend be(0, 0.9f);
  be.kv_set_dtype(dtype);
  const int32_t n_pages = (max_len + kPageSize - 1) / kPageSize;
  be.kv_reserve(1, n_pages, kPageSize, kKvHeads, g_head_dim);
  {
    // Random keys/values in every slot (never time on zeros), written in chunks through kv_write.
    // (One random chunk each for K and V, written to every chunk of slots: the host RNG would dominate at 512k.)
    const int32_t chunk = 8192;
    Tensor k = be.alloc({chunk, kKvHeads, g_head_dim}), v = be.alloc({chunk, kKvHeads, g_head_dim});
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<float> host(size_t(chunk) * kKvHeads * g_head_dim);
    std::vector<int64_t> slots(static_cast<size_t>(chunk));
    for (auto& x : host) x = nd(g);
    be.from_host(k, host.data(), int64_t(host.size()));
    for (auto& x : host) x = nd(g);
    be.from_host(v, host.data(), int64_t(host.size()));
    for (int64_t base = 0; base < int64_t(n_pages) * kPageSize; base += chunk) {
      const int64_t n = std::min<int64_t>(chunk, int64_t(n_pages) * kPageSize - base);
      for (int64_t i = 0; i < n; ++i) slots[size_t(i)] = base + i;
      be.kv_write(0, k, v, std::span<const int64_t>(slots).first(size_t(n)));
    }
    be.synchronize();
  }
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  const bool v3 = attention_prefill_v3_applies(g_head_dim, dtype);
  const bool tc = attention_decode_tc_applies(kHeads, kKvHeads, g_head_dim, dtype, false);
  // Whole names (tools/bench/run_prefill_v3_check.sh finds "lcllm_decode_tc_fp8" in a build that knows --fp8).
  const std::string prefill_name = fp8 ? (v3 ? "lcllm_prefill_v3_fp8" : "lcllm_prefill_v2_fp8")
                                       : (v3 ? "lcllm_prefill_v3" : "lcllm_prefill_v2");
  const std::string decode_name = fp8 ? (tc ? "lcllm_decode_tc_fp8" : "lcllm_decode_v2_fp8")
                                      : (tc ? "lcllm_decode_tc" : "lcllm_decode_v2");
  // Bytes of one key's K and V for one KV head: bf16 2 x 2 x head_dim; fp8 2 x head_dim plus its 2-byte scale pair.
  const double kv_bytes_per_key_head = fp8 ? 2.0 * g_head_dim + 2.0 : 4.0 * g_head_dim;
  for (int32_t len : prefill) {
    const Setup s = make_setup(len, len, g);
    Tensor q = be.alloc({len, kHeads, g_head_dim}), out = be.alloc({len, kHeads, g_head_dim});
    std::vector<float> host(size_t(q.numel()));
    std::normal_distribution<float> nd(0.f, 1.f);
    const size_t pattern = std::min<size_t>(host.size(), size_t(1) << 20);  // random block, repeated
    for (size_t i = 0; i < pattern; ++i) host[i] = nd(g);
    for (size_t i = pattern; i < host.size(); ++i) host[i] = host[i % pattern] * (1.f - 0.5f * float((i / pattern) & 1));
    be.from_host(q, host.data(), q.numel());
    const Timing tm = time_attention(be, out, q, s, 7);
    const double ms = tm.ms;
    const double flops = 4.0 * kHeads * g_head_dim * (double(len) * (len + 1) / 2);
    std::printf(
        "{\"kernel\":\"%s\",\"card\":\"%s\",\"head_dim\":%d,\"tokens\":%d,\"ms\":%.3f,\"tflops\":%.2f,\"ms_b2b\":%.3f,"
        "\"tflops_b2b\":%.2f}\n",
        prefill_name.c_str(), prop.name, g_head_dim, len, ms, flops / ms / 1e9, tm.ms_b2b, flops / tm.ms_b2b / 1e9);
    std::fflush(stdout);
  }
  for (int32_t len : decode) {
    const Setup s = make_setup(len, 1, g);
    Tensor q = be.alloc({1, kHeads, g_head_dim}), out = be.alloc({1, kHeads, g_head_dim});
    std::vector<float> host(size_t(q.numel()), 0.5f);
    be.from_host(q, host.data(), q.numel());
    const Timing tm = time_attention(be, out, q, s, 20);
    const double ms = tm.ms;
    const double bytes = double(len) * kKvHeads * kv_bytes_per_key_head;
    std::printf(
        "{\"kernel\":\"%s\",\"card\":\"%s\",\"head_dim\":%d,\"context\":%d,\"ms\":%.4f,\"gbps\":%.1f,\"ms_b2b\":%.4f,"
        "\"gbps_b2b\":%.1f}\n",
        decode_name.c_str(), prop.name, g_head_dim, len, ms, bytes / ms / 1e6, tm.ms_b2b, bytes / tm.ms_b2b / 1e6);
    std::fflush(stdout);
  }
  return 0;
}
