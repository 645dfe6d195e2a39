// The CUDA attention kernels (prefill: tiled flash attention; decode: split-KV flash decoding) against the CPU
// reference over the paged CSR cache: page boundaries, odd page sizes, ragged batches, 1-token and 32k contexts,
// head_dim 64/80/128/256, GQA 1/2/4/7/8/16, sliding windows, softcaps. Each case runs both kernels (and AUTO).
#include <algorithm>
#include <numeric>

#include "tests/cuda/test_cuda_util.h"

using namespace lcllm;
using namespace lcllm::test;

namespace {

struct AttnCase {
  const char* name;
  int32_t n_kv_heads, group, head_dim, page_size;
  std::vector<int32_t> kv_len;  // [n_seq] keys after this step
  std::vector<int32_t> q_len;   // [n_seq] query rows this step: the last q_len positions
  int32_t window = 0;
  float softcap = 0.f;
  float q_scale = 1.f;  // spreads the scores (peaky softmax, softcap engaged)
  // fp8: both backends keep an fp8 cache (the CPU emulates it exactly), K/V drawn over many magnitudes.
  KvDtype kv_dtype = KvDtype::KV_DTYPE_BF16;
};

struct AttnResult {
  double err_prefill = 0, err_decode = 0, err_auto = 0;
};

AttnResult run_case(const AttnCase& c) {
  const int32_t n_seq = int32_t(c.kv_len.size());
  const int32_t n_heads = c.n_kv_heads * c.group, D = c.head_dim, ps = c.page_size;

  // Pages: each sequence gets ceil(kv_len / ps) pages, drawn from a shuffled pool with a few spare pages.
  std::vector<int32_t> pages_per_seq(static_cast<size_t>(n_seq));
  int32_t total_pages = 3;
  for (int32_t s = 0; s < n_seq; ++s) {
    pages_per_seq[size_t(s)] = (c.kv_len[size_t(s)] + ps - 1) / ps;
    total_pages += pages_per_seq[size_t(s)];
  }
  std::vector<int32_t> perm(static_cast<size_t>(total_pages));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng());
  CsrPages csr;
  csr.indptr.push_back(0);
  size_t next = 0;
  for (int32_t s = 0; s < n_seq; ++s) {
    for (int32_t i = 0; i < pages_per_seq[size_t(s)]; ++i) csr.indices.push_back(perm[next++]);
    csr.indptr.push_back(int32_t(csr.indices.size()));
    csr.last_page_len.push_back(c.kv_len[size_t(s)] - (pages_per_seq[size_t(s)] - 1) * ps);
  }

  // Every key of every sequence, written through kv_write on both backends.
  std::vector<int64_t> slots;
  for (int32_t s = 0; s < n_seq; ++s) {
    for (int32_t j = 0; j < c.kv_len[size_t(s)]; ++j) {
      slots.push_back(int64_t(csr.indices[size_t(csr.indptr[size_t(s)] + j / ps)]) * ps + j % ps);
    }
  }
  const int64_t n_keys = int64_t(slots.size());
  CpuBackend cpu(0);
  CudaBackend gpu(0, 0.9f);
  const bool fp8 = c.kv_dtype == KvDtype::KV_DTYPE_FP8_E4M3;
  if (fp8) {
    cpu.kv_set_dtype(c.kv_dtype);
    gpu.kv_set_dtype(c.kv_dtype);
  }
  cpu.kv_reserve(1, total_pages, ps, c.n_kv_heads, D);
  gpu.kv_reserve(1, total_pages, ps, c.n_kv_heads, D);
  {
    // fp8: each (key, head) vector gets its own magnitude, so the per-vector scales span a wide range: V 2^-12 ..
    // 2^12, K 2^-4 .. 2^2 (wider K would make v2 prefill's bf16 rounding of q, not the cache, the error).
    auto kv_values = [&](int lo, int hi) {
      std::vector<float> x = random_bf16(size_t(n_keys * c.n_kv_heads * D));
      if (fp8) {
        std::uniform_int_distribution<int> e(lo, hi);
        for (size_t i = 0; i < x.size(); i += size_t(D)) {
          const float m = std::ldexp(1.f, e(rng()));
          for (size_t d = 0; d < size_t(D); ++d) x[i + d] *= m;
        }
      }
      return x;
    };
    auto k = make_pair(cpu, gpu, {n_keys, c.n_kv_heads, D}, kv_values(-4, 2));
    auto v = make_pair(cpu, gpu, {n_keys, c.n_kv_heads, D}, kv_values(-12, 12));
    cpu.kv_write(0, k.cpu, v.cpu, slots);
    gpu.kv_write(0, k.gpu, v.gpu, slots);
  }

  std::vector<int32_t> query_start = {0}, query_pos;
  for (int32_t s = 0; s < n_seq; ++s) {
    REQUIRE(c.q_len[size_t(s)] <= c.kv_len[size_t(s)]);
    for (int32_t i = 0; i < c.q_len[size_t(s)]; ++i) query_pos.push_back(c.kv_len[size_t(s)] - c.q_len[size_t(s)] + i);
    query_start.push_back(int32_t(query_pos.size()));
  }
  const int64_t n_rows = int64_t(query_pos.size());
  AttentionBatch batch;
  batch.query_start = query_start;
  batch.query_pos = query_pos;
  batch.kv_len = c.kv_len;
  batch.pages = &csr;
  AttentionParams params;
  params.scale = 1.0f / std::sqrt(float(D));
  params.softcap = c.softcap;
  params.sliding_window = c.window;

  auto q = make_pair(cpu, gpu, {n_rows, n_heads, D}, random_bf16(size_t(n_rows * n_heads * D), c.q_scale));
  Tensor out_cpu = cpu.alloc({n_rows, n_heads, D});
  cpu.attention(out_cpu, q.cpu, 0, batch, params);
  const std::vector<float> ref = read(cpu, out_cpu);

  AttnResult res;
  Tensor out_gpu = gpu.alloc({n_rows, n_heads, D});
  for (auto kind : {CudaAttentionKernel::CUDA_ATTENTION_PREFILL, CudaAttentionKernel::CUDA_ATTENTION_DECODE,
                    CudaAttentionKernel::CUDA_ATTENTION_AUTO}) {
    poison(gpu, out_gpu);
    gpu.set_attention_kernel(kind);
    gpu.attention(out_gpu, q.gpu, 0, batch, params);
    const std::vector<float> got = read(gpu, out_gpu);
    CHECK(count_nonfinite(got) == 0);
    const double err = relative_error(got, ref);
    (kind == CudaAttentionKernel::CUDA_ATTENTION_PREFILL  ? res.err_prefill
     : kind == CudaAttentionKernel::CUDA_ATTENTION_DECODE ? res.err_decode
                                                          : res.err_auto) = err;
  }
  return res;
}

void check_cases(const std::vector<AttnCase>& cases) {
  for (const auto& c : cases) {
    INFO("case " << c.name << " seed " << seed_used());
    const AttnResult r = run_case(c);
    WARN("attention " << c.name << ": rel err prefill " << r.err_prefill << ", decode " << r.err_decode << ", auto "
                      << r.err_auto);
    // Inputs are bf16-exact on both sides, so only fp32 summation order differs; 1e-2 is the bf16 budget.
    CHECK(r.err_prefill <= 1e-2);
    CHECK(r.err_decode <= 1e-2);
    CHECK(r.err_auto <= 1e-2);
  }
}

}  // namespace

TEST_CASE("cuda attention matches CPU: ragged batches, page boundaries, head_dims, GQA", "[cuda][attention]") {
  LCLLM_REQUIRE_GPU();
  check_cases({
      {"d128 gqa4 ps16 ragged", 2, 4, 128, 16, {1, 16, 17, 300}, {1, 16, 5, 40}},
      {"d64 mha ps5 ragged", 3, 1, 64, 5, {33, 129, 5}, {33, 7, 5}},
      {"d256 gqa8 ps16", 2, 8, 256, 16, {50, 200}, {50, 3}},
      {"d80 gqa2 ps7 (even, not a power of 2)", 2, 2, 80, 7, {45, 3}, {20, 3}},
      {"d64 gqa16 (chunked decode group)", 1, 16, 64, 16, {70}, {10}},
      {"d64 gqa7 (Qwen-like)", 2, 7, 64, 16, {40, 41}, {40, 1}},
      {"d128 gqa4 single token", 2, 4, 128, 16, {1}, {1}},
      {"d256 mha ps1", 1, 1, 256, 1, {19}, {19}},
      // Whole prompts over many 128-key tiles (the wgmma kernel's step): diagonal tiles, partial last tiles.
      {"d128 gqa4 prefill 1000 ps16", 2, 4, 128, 16, {1000}, {1000}},
      {"d64 gqa2 prefill 600 ps7, two sequences", 2, 2, 64, 7, {600, 131}, {600, 131}},
      {"d128 gqa8 chunk 257 rows after 700 keys", 1, 8, 128, 16, {957}, {257}},
      {"d128 mha prefill 300 ps3", 2, 1, 128, 3, {300}, {300}},
      // Gemma's head_dim over many tiles (64 keys a tile, a ring of two stages where the wgmma kernel takes it).
      {"d256 gqa4 prefill 1100 + a chunk of 300 after 900 keys", 2, 4, 256, 16, {1100, 1200}, {1100, 300}},
  });
}

TEST_CASE("cuda attention matches CPU: sliding windows and softcaps", "[cuda][attention]") {
  LCLLM_REQUIRE_GPU();
  check_cases({
      {"d128 gqa8 window 64", 2, 8, 128, 16, {500, 64, 65}, {100, 64, 1}, 64},
      {"d64 mha window 20 ps5", 2, 1, 64, 5, {33, 129}, {33, 7}, 20},
      {"d256 gqa2 softcap 50", 4, 2, 256, 16, {300, 1}, {17, 1}, 0, 50.f, 8.f},
      {"d128 gqa4 window 1", 2, 4, 128, 16, {40}, {40}, 1},
      {"d256 gqa2 window 8 + softcap 30 (Gemma-2-like)", 4, 2, 256, 16, {77}, {77}, 8, 30.f, 6.f},
      {"d64 gqa4 softcap 5 (saturating)", 2, 4, 64, 16, {200}, {30}, 0, 5.f, 10.f},
      {"d128 gqa4 window 200 prefill 900 (tiles inside, across and outside the window)", 2, 4, 128, 16, {900}, {900},
       200},
      {"d128 gqa4 softcap 30 prefill 500", 2, 4, 128, 16, {500}, {500}, 0, 30.f, 6.f},
  });
}

TEST_CASE("cuda attention matches CPU: decode batches (one query per sequence)", "[cuda][attention]") {
  LCLLM_REQUIRE_GPU();
  check_cases({
      {"decode d128 gqa4 ragged", 2, 4, 128, 16, {1, 15, 16, 17, 1000, 4097}, {1, 1, 1, 1, 1, 1}},
      {"decode d64 gqa8 window 256", 2, 8, 64, 16, {3000, 100}, {1, 1}, 256},
      {"decode d256 gqa2 softcap", 4, 2, 256, 16, {2500, 7}, {1, 1}, 0, 50.f, 8.f},
  });
}

TEST_CASE("cuda attention matches CPU: long context (32k tokens, one sequence)", "[cuda][attention][long]") {
  LCLLM_REQUIRE_GPU();
  check_cases({
      {"32k decode d128 gqa4 (32/8 heads)", 8, 4, 128, 16, {32768}, {1}},
      {"32k prefill tail 64 rows d128 gqa4", 8, 4, 128, 16, {32768}, {64}},
      {"32k decode d128 gqa8 window 4096", 4, 8, 128, 16, {32768}, {1}, 4096},
      {"32k prefill tail d64 gqa1", 2, 1, 64, 16, {32768}, {32}},
      {"32k decode d256 gqa2 softcap", 2, 2, 256, 16, {32768}, {1}, 0, 50.f, 4.f},
  });
}

TEST_CASE("cuda attention over an fp8 KV cache matches the CPU's exact emulation (every kernel)", "[cuda][attention][fp8]") {
  LCLLM_REQUIRE_GPU();
  const KvDtype f8 = KvDtype::KV_DTYPE_FP8_E4M3;
  // Both sides attend over the same dequantized values, so only summation order (and v2 prefill's bf16 q) differ.
  check_cases({
      {"fp8 d128 gqa4 ps16 ragged", 2, 4, 128, 16, {1, 16, 17, 300}, {1, 16, 5, 40}, 0, 0.f, 1.f, f8},
      {"fp8 d64 mha ps5 ragged", 3, 1, 64, 5, {33, 129, 5}, {33, 7, 5}, 0, 0.f, 1.f, f8},
      // Many tiles per block: the wgmma prefill's producer converts each stage more than once around its ring.
      {"fp8 d128 gqa8 ps16 long prefill", 2, 8, 128, 16, {2600, 900}, {700, 900}, 0, 0.f, 1.f, f8},
      {"fp8 d64 gqa4 ps16 long prefill + softcap", 2, 4, 64, 16, {1900}, {1000}, 0, 30.f, 6.f, f8},
      {"fp8 d256 gqa8 ps16", 2, 8, 256, 16, {50, 200}, {50, 3}, 0, 0.f, 1.f, f8},
      {"fp8 d256 gqa2 ps16 long prefill + softcap", 2, 2, 256, 16, {1300}, {800}, 0, 30.f, 6.f, f8},
      {"fp8 d80 gqa2 ps7 (v1 kernels)", 2, 2, 80, 7, {45, 3}, {20, 3}, 0, 0.f, 1.f, f8},
      {"fp8 d64 gqa16 ps3 (odd heads x slots: scale pairs in both word halves)", 1, 16, 64, 3, {70}, {10}, 0, 0.f, 1.f, f8},
      {"fp8 d128 gqa8 window 64", 2, 8, 128, 16, {500, 64, 65}, {100, 64, 1}, 64, 0.f, 1.f, f8},
      {"fp8 d256 gqa2 window 8 + softcap 30", 4, 2, 256, 16, {77}, {77}, 8, 30.f, 6.f, f8},
      {"fp8 decode d128 gqa4 ragged", 2, 4, 128, 16, {1, 15, 16, 17, 1000, 4097}, {1, 1, 1, 1, 1, 1}, 0, 0.f, 1.f, f8},
      {"fp8 decode d64 gqa8 window 256", 3, 8, 64, 16, {3000, 100}, {1, 1}, 256, 0.f, 1.f, f8},
      // The tensor-core decode's fp8 path puts up to 8 heads on N: a group of 16 takes two blocks, 3 pads one.
      {"fp8 decode d128 gqa16 softcap 30 ragged (two 8-head blocks)", 2, 16, 128, 16, {33, 700, 2049}, {1, 1, 1}, 0,
       30.f, 6.f, f8},
      {"fp8 decode d128 gqa3 (SmolLM2's group)", 3, 3, 128, 16, {1, 511, 3000}, {1, 1, 1}, 0, 0.f, 1.f, f8},
  });
}
