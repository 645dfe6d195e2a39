// Every non-attention op of the CUDA backend against the CPU reference, on fresh random inputs with poisoned
// outputs. Inputs are bf16-exact, so the only differences left are fp32 rounding (and bf16 rounding of GEMM
// activations, which the CUDA backend does by design).
#include "kernels/gemv.h"
#include "kv/kv_rotation.h"
#include "tests/cuda/test_cuda_util.h"

using namespace lcllm;
using namespace lcllm::test;

namespace {

struct Backends {
  CpuBackend cpu{0};
  CudaBackend gpu{0, 0.9f};
};

}  // namespace

TEST_CASE("cuda weight upload converts F32, F16 and BF16 checkpoints exactly", "[cuda][ops]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  Backends b;
  const int64_t V = 64, D = 96;
  std::uniform_int_distribution<int> k(-200, 200);
  std::vector<float> table(static_cast<size_t>(V * D)), norm(static_cast<size_t>(D));
  for (auto& x : table) x = float(k(rng())) / 64.f;  // exact in f16 and bf16
  for (auto& x : norm) x = float(k(rng())) / 64.f;
  std::vector<int32_t> ids = {0, 5, 63, 5, 17};
  for (DType dt : {DType::DTYPE_F32, DType::DTYPE_F16, DType::DTYPE_BF16}) {
    INFO("dtype " << dtype_name(dt));
    HostWeight wt("table", dt, {V, D}, table), wn("norm", dt, {D}, norm);
    Tensor tc = b.cpu.weight(wt.view), tg = b.gpu.weight(wt.view);
    CHECK(tg.dtype == DType::DTYPE_BF16);
    auto out = make_output(b.cpu, b.gpu, {int64_t(ids.size()), D});
    b.cpu.embed(out.cpu, tc, ids, 1.0f);
    b.gpu.embed(out.gpu, tg, ids, 1.0f);
    CHECK(read(b.gpu, out.gpu) == read(b.cpu, out.cpu));

    Tensor nc = b.cpu.weight(wn.view), ng = b.gpu.weight(wn.view);
    CHECK(ng.dtype == DType::DTYPE_F32);
    const auto x = random_bf16(size_t(3 * D));
    auto xi = make_pair(b.cpu, b.gpu, {3, D}, x);
    auto o = make_output(b.cpu, b.gpu, {3, D});
    b.cpu.rmsnorm(o.cpu, xi.cpu, nc, 1e-6f, false);
    b.gpu.rmsnorm(o.gpu, xi.gpu, ng, 1e-6f, false);
    CHECK(relative_error(read(b.gpu, o.gpu), read(b.cpu, o.cpu)) <= 1e-6);
  }
}

TEST_CASE("cuda embed matches CPU (with Gemma scale, repeated ids)", "[cuda][ops]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  Backends b;
  const int64_t V = 1000, D = 300;
  HostWeight w("embed", DType::DTYPE_BF16, {V, D}, random_bf16(size_t(V * D)));
  Tensor tc = b.cpu.weight(w.view), tg = b.gpu.weight(w.view);
  std::uniform_int_distribution<int32_t> id(0, int32_t(V - 1));
  std::vector<int32_t> ids(77);
  for (auto& i : ids) i = id(rng());
  ids[3] = ids[9];
  auto out = make_output(b.cpu, b.gpu, {int64_t(ids.size()), D});
  b.cpu.embed(out.cpu, tc, ids, 17.3f);
  b.gpu.embed(out.gpu, tg, ids, 17.3f);
  CHECK(relative_error(read(b.gpu, out.gpu), read(b.cpu, out.cpu)) <= 1e-7);
}

TEST_CASE("cuda rmsnorm matches CPU (both variants, in place, per-head rows)", "[cuda][ops]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  Backends b;
  struct Shape {
    int64_t a, b, c;  // c == 0: 2-D [a, b]; else [a, b, c] normalised over c
  };
  for (Shape s : {Shape{7, 300, 0}, Shape{33, 4096, 0}, Shape{5, 8, 128}, Shape{1, 1, 64}}) {
    for (bool one_plus : {false, true}) {
      for (bool in_place : {false, true}) {
        const int64_t d = s.c ? s.c : s.b, n = s.a * s.b * (s.c ? s.c : 1);
        INFO("shape " << s.a << "x" << s.b << "x" << s.c << " one_plus " << one_plus << " in_place " << in_place);
        HostWeight w("w", DType::DTYPE_BF16, {d}, random_bf16(size_t(d), 0.5f));
        Tensor wc = b.cpu.weight(w.view), wg = b.gpu.weight(w.view);
        auto x = s.c ? make_pair(b.cpu, b.gpu, {s.a, s.b, s.c}, random_bf16(size_t(n), 3.f))
                     : make_pair(b.cpu, b.gpu, {s.a, s.b}, random_bf16(size_t(n), 3.f));
        TensorPair o = x;
        if (!in_place) o = s.c ? make_output(b.cpu, b.gpu, {s.a, s.b, s.c}) : make_output(b.cpu, b.gpu, {s.a, s.b});
        b.cpu.rmsnorm(o.cpu, x.cpu, wc, 1e-5f, one_plus);
        b.gpu.rmsnorm(o.gpu, x.gpu, wg, 1e-5f, one_plus);
        CHECK(relative_error(read(b.gpu, o.gpu), read(b.cpu, o.cpu)) <= 1e-6);
      }
    }
  }
}

TEST_CASE("cuda matmul matches CPU (bf16 weights, fp32 accumulation, bias)", "[cuda][ops]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  Backends b;
  struct Shape {
    int64_t n, in, out;
    bool bias;
  };
  for (Shape s : {Shape{1, 256, 512, false}, Shape{37, 300, 130, true}, Shape{64, 1024, 2048, false},
                  Shape{5, 2048, 1000, true}}) {
    INFO("n " << s.n << " in " << s.in << " out " << s.out << " bias " << s.bias);
    HostWeight w("w", DType::DTYPE_BF16, {s.out, s.in}, random_bf16(size_t(s.out * s.in), 1.f / std::sqrt(float(s.in))));
    HostWeight bias("b", DType::DTYPE_BF16, {s.out}, random_bf16(size_t(s.out)));
    Tensor wc = b.cpu.weight(w.view), wg = b.gpu.weight(w.view);
    Tensor bc, bg;
    if (s.bias) {
      bc = b.cpu.weight(bias.view);
      bg = b.gpu.weight(bias.view);
    }
    auto x = make_pair(b.cpu, b.gpu, {s.n, s.in}, random_bf16(size_t(s.n * s.in)));
    auto o = make_output(b.cpu, b.gpu, {s.n, s.out});
    b.cpu.matmul(o.cpu, x.cpu, wc, bc);
    b.gpu.matmul(o.gpu, x.gpu, wg, bg);
    const double err = relative_error(read(b.gpu, o.gpu), read(b.cpu, o.cpu));
    WARN("matmul " << s.n << "x" << s.in << "x" << s.out << ": rel err " << err);
    CHECK(err <= 1e-4);
  }
}

TEST_CASE("cuda rope matches CPU (default, linear, llama3; large positions)", "[cuda][ops]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  Backends b;
  RopeConfig def, lin, l3;
  def.theta = 10000;
  lin.type = RopeType::ROPE_TYPE_LINEAR;
  lin.theta = 1e6;
  lin.factor = 4;
  l3.type = RopeType::ROPE_TYPE_LLAMA3;
  l3.theta = 500000;
  l3.factor = 8;
  l3.low_freq_factor = 1;
  l3.high_freq_factor = 4;
  l3.original_max_position_embeddings = 8192;
  std::uniform_int_distribution<int32_t> pos(0, 1 << 20);
  for (const RopeConfig& rc : {def, lin, l3}) {
    for (int64_t hd : {64, 128, 256}) {
      INFO("rope type " << int(rc.type) << " head_dim " << hd);
      const int64_t n = 9, heads = 4;
      std::vector<int32_t> positions(static_cast<size_t>(n));
      for (auto& p : positions) p = pos(rng());
      positions[0] = 0;
      auto x = make_pair(b.cpu, b.gpu, {n, heads, hd}, random_bf16(size_t(n * heads * hd)));
      b.cpu.rope(x.cpu, positions, rc);
      b.gpu.rope(x.gpu, positions, rc);
      CHECK(relative_error(read(b.gpu, x.gpu), read(b.cpu, x.cpu)) <= 1e-6);
    }
  }
}

TEST_CASE("cuda glu, softcap, add and gather_rows match CPU", "[cuda][ops]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  Backends b;
  const int64_t n = 13, d = 777;
  for (Activation act : {Activation::ACTIVATION_SILU, Activation::ACTIVATION_GELU_TANH, Activation::ACTIVATION_GELU}) {
    INFO("activation " << int(act));
    auto g = make_pair(b.cpu, b.gpu, {n, d}, random_bf16(size_t(n * d), 3.f));
    auto u = make_pair(b.cpu, b.gpu, {n, d}, random_bf16(size_t(n * d)));
    b.cpu.glu(g.cpu, g.cpu, u.cpu, act);  // in place, as the forward pass calls it
    b.gpu.glu(g.gpu, g.gpu, u.gpu, act);
    CHECK(relative_error(read(b.gpu, g.gpu), read(b.cpu, g.cpu)) <= 1e-6);
  }
  {
    auto x = make_pair(b.cpu, b.gpu, {n, d}, random_bf16(size_t(n * d), 60.f));
    b.cpu.softcap(x.cpu, 30.f);
    b.gpu.softcap(x.gpu, 30.f);
    CHECK(relative_error(read(b.gpu, x.gpu), read(b.cpu, x.cpu)) <= 1e-6);
  }
  {
    auto x = make_pair(b.cpu, b.gpu, {n, d}, random_bf16(size_t(n * d)));
    auto y = make_pair(b.cpu, b.gpu, {n, d}, random_bf16(size_t(n * d)));
    b.cpu.add_inplace(x.cpu, y.cpu);
    b.gpu.add_inplace(x.gpu, y.gpu);
    CHECK(relative_error(read(b.gpu, x.gpu), read(b.cpu, x.cpu)) <= 1e-7);
  }
  {
    auto x = make_pair(b.cpu, b.gpu, {n, d}, random_bf16(size_t(n * d)));
    const std::vector<int32_t> rows = {12, 0, 5, 5};
    auto o = make_output(b.cpu, b.gpu, {4, d});
    b.cpu.gather_rows(o.cpu, x.cpu, rows);
    b.gpu.gather_rows(o.gpu, x.gpu, rows);
    CHECK(read(b.gpu, o.gpu) == read(b.cpu, o.cpu));
  }
}

TEST_CASE("cuda argmax_rows matches CPU: ties to the lowest index, +inf, -inf rows and NaN", "[cuda][ops]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  Backends b;
  // Llama 3's vocabulary (the float4 scan: many rounds per thread) and an odd width (the scalar scan)
  for (const int64_t d : {int64_t(128256), int64_t(4099)}) {
    INFO("columns " << d);
    const int64_t n = 7;
    std::vector<float> x = random_bf16(size_t(n * d), 8.f);
    std::uniform_int_distribution<int64_t> at(0, d - 1);
    const float top = 100.f;
    const int64_t t1 = at(rng()), t2 = at(rng());
    x[size_t(1 * d + t1)] = top;  // row 1: a tie between two random positions: the lower one
    x[size_t(1 * d + t2)] = top;
    x[size_t(2 * d + t1)] = INFINITY;  // row 2: +inf wins over every finite value
    for (int64_t j = 0; j < d; ++j) x[size_t(3 * d + j)] = -INFINITY;  // row 3: nothing above -inf
    x[size_t(4 * d + t2)] = NAN;  // row 4: a NaN poisons the row
    x[size_t(5 * d + d - 1)] = top;  // row 5: the last element
    x[size_t(6 * d)] = top;  // row 6: the first element
    auto xi = make_pair(b.cpu, b.gpu, {n, d}, x);
    auto o = make_output(b.cpu, b.gpu, {n});
    b.cpu.argmax_rows(o.cpu, xi.cpu);
    b.gpu.argmax_rows(o.gpu, xi.gpu);
    const std::vector<float> cpu = read(b.cpu, o.cpu), gpu = read(b.gpu, o.gpu);
    CHECK(gpu == cpu);
    CHECK(cpu[1] == float(std::min(t1, t2)));
    CHECK(cpu[2] == float(t1));
    CHECK(cpu[3] == -1.f);
    CHECK(cpu[4] == -1.f);
    CHECK(cpu[5] == float(d - 1));
    CHECK(cpu[6] == 0.f);
    const float* row0 = x.data();  // row 0: random values, against a plain scan
    CHECK(cpu[0] == float(std::max_element(row0, row0 + d) - row0));
  }
}

namespace {

// The same copy-on-write page copies on both backends (pages 4 -> 6 and 0 -> 8 of a 9-page pool).
void copy_pages_on_both(Backends& b) {
  const std::vector<PageCopy> copies = {{4, 6}, {0, 8}};
  b.cpu.kv_copy_pages(copies);
  b.gpu.kv_copy_pages(copies);
}

}  // namespace

TEST_CASE("cuda kv_write and kv_copy_pages fill the same slots as the CPU", "[cuda][ops]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  Backends b;
  const int32_t layers = 2, pages = 9, ps = 5, kvh = 2, hd = 64;
  b.cpu.kv_reserve(layers, pages, ps, kvh, hd);
  b.gpu.kv_reserve(layers, pages, ps, kvh, hd);
  std::vector<int64_t> slots = {0, 7, 44, 13, 21, 22, 23, 39};
  const int64_t n = int64_t(slots.size());
  for (int32_t l = 0; l < layers; ++l) {
    auto k = make_pair(b.cpu, b.gpu, {n, kvh, hd}, random_bf16(size_t(n * kvh * hd)));
    auto v = make_pair(b.cpu, b.gpu, {n, kvh, hd}, random_bf16(size_t(n * kvh * hd)));
    b.cpu.kv_write(l, k.cpu, v.cpu, slots);
    b.gpu.kv_write(l, k.gpu, v.gpu, slots);
  }
  copy_pages_on_both(b);
  const size_t pool = size_t(pages) * ps * kvh * hd;
  for (int32_t l = 0; l < layers; ++l) {
    for (bool value : {false, true}) {
      const std::vector<float> got = b.gpu.kv_read(l, value);
      const float* ref = b.cpu.kv_data(l, value);
      CHECK(std::vector<float>(ref, ref + pool) == got);
    }
  }
}

TEST_CASE("cuda fused add_rmsnorm matches the CPU's add then rmsnorm (out aliasing y, Gemma (1 + w))",
          "[cuda][ops][fused]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  Backends b;
  for (int64_t n : {1, 7, 64}) {
    for (int64_t d : {256, 4096, 3584}) {
      for (bool one_plus : {false, true}) {
        for (bool out_is_y : {false, true}) {
          INFO("rows " << n << " d " << d << " one_plus " << one_plus << " out aliases y " << out_is_y);
          HostWeight w("w", DType::DTYPE_BF16, {d}, random_bf16(size_t(d), 0.5f));
          Tensor wc = b.cpu.weight(w.view), wg = b.gpu.weight(w.view);
          auto x = make_pair(b.cpu, b.gpu, {n, d}, random_bf16(size_t(n * d), 2.f));
          auto y = make_pair(b.cpu, b.gpu, {n, d}, random_bf16(size_t(n * d), 2.f));
          TensorPair o = out_is_y ? y : make_output(b.cpu, b.gpu, {n, d});
          b.cpu.add_inplace(x.cpu, y.cpu);  // the reference: the two separate ops
          b.cpu.rmsnorm(o.cpu, x.cpu, wc, 1e-6f, one_plus);
          b.gpu.add_rmsnorm(x.gpu, y.gpu, o.gpu, wg, 1e-6f, one_plus);
          CHECK(relative_error(read(b.gpu, x.gpu), read(b.cpu, x.cpu)) <= 1e-7);
          CHECK(relative_error(read(b.gpu, o.gpu), read(b.cpu, o.cpu)) <= 1e-6);
        }
      }
    }
  }
}

TEST_CASE("cuda fused rope_kv_write matches the CPU's rope, rope, kv_write", "[cuda][ops][fused]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  RopeConfig l3;
  l3.type = RopeType::ROPE_TYPE_LLAMA3;
  l3.theta = 500000;
  l3.factor = 8;
  l3.low_freq_factor = 1;
  l3.high_freq_factor = 4;
  l3.original_max_position_embeddings = 8192;
  RopeConfig def;
  def.theta = 10000;
  std::uniform_int_distribution<int32_t> pos(0, 1 << 20);
  struct Shape {
    int32_t heads, kv_heads, head_dim;
  };
  for (Shape s : {Shape{32, 8, 128}, Shape{7, 1, 64}, Shape{8, 4, 256}, Shape{4, 4, 80}}) {
    for (const RopeConfig& rc : {def, l3}) {
      INFO("heads " << s.heads << "/" << s.kv_heads << " head_dim " << s.head_dim << " rope " << int(rc.type));
      Backends b;
      const int32_t layers = 2, pages = 11, ps = 7;
      b.cpu.kv_reserve(layers, pages, ps, s.kv_heads, s.head_dim);
      b.gpu.kv_reserve(layers, pages, ps, s.kv_heads, s.head_dim);
      const std::vector<int64_t> slots = {0, 6, 7, 76, 40, 41, 13};  // page boundaries, out of order
      const int64_t n = int64_t(slots.size());
      std::vector<int32_t> positions(slots.size());
      for (auto& p : positions) p = pos(rng());
      positions[0] = 0;
      for (int32_t l = 0; l < layers; ++l) {
        auto q = make_pair(b.cpu, b.gpu, {n, s.heads, s.head_dim}, random_bf16(size_t(n * s.heads * s.head_dim)));
        auto k = make_pair(b.cpu, b.gpu, {n, s.kv_heads, s.head_dim},
                           random_bf16(size_t(n * s.kv_heads * s.head_dim)));
        auto v = make_pair(b.cpu, b.gpu, {n, s.kv_heads, s.head_dim},
                           random_bf16(size_t(n * s.kv_heads * s.head_dim)));
        b.cpu.rope(q.cpu, positions, rc);
        b.cpu.rope(k.cpu, positions, rc);
        b.cpu.kv_write(l, k.cpu, v.cpu, slots);
        b.gpu.rope_kv_write(q.gpu, k.gpu, v.gpu, positions, rc, l, slots);
        CHECK(relative_error(read(b.gpu, q.gpu), read(b.cpu, q.cpu)) <= 1e-6);
        CHECK(relative_error(read(b.gpu, k.gpu), read(b.cpu, k.cpu)) <= 1e-6);
      }
      // The pools hold bf16 on the GPU and fp32 on the CPU: compare after rounding the CPU's to bf16. v is
      // bf16-exact, so its slots must be identical; rotated k may differ by the rounding of one fp32 ulp.
      const size_t pool = size_t(pages) * ps * s.kv_heads * s.head_dim;
      for (int32_t l = 0; l < layers; ++l) {
        for (bool value : {false, true}) {
          const std::vector<float> got = b.gpu.kv_read(l, value);
          const float* ref = b.cpu.kv_data(l, value);
          std::vector<float> ref_bf16(ref, ref + pool);
          for (auto& f : ref_bf16) f = round_bf16(f);
          if (value) {
            CHECK(ref_bf16 == got);
          } else {
            CHECK(relative_error(got, ref_bf16) <= 1e-3);  // a one-ulp fp32 difference may flip a bf16 rounding
          }
        }
      }
    }
  }
}

TEST_CASE("cuda matmul_group (decode GEMV for 1-4 rows, cuBLASLt beyond) matches CPU, x rounded to bf16",
          "[cuda][ops][gemv]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  Backends b;
  struct Shape {
    int64_t n, in;
    std::vector<int64_t> outs;
    bool bias;
  };
  const std::vector<Shape> shapes = {
      {1, 1024, {512, 128, 128}, false}, {2, 1024, {512, 128, 128}, true},  // q/k/v
      {3, 2048, {1000, 1000}, true},     {4, 2048, {1000, 1000}, false},    // gate/up
      {4, 14336, {64}, false},           {1, 40, {7}, true},                // long rows; rows shorter than a warp
      {5, 256, {96, 32}, true},          {1, 4096, {4097}, false},          // cuBLASLt group; odd features
  };
  for (const Shape& s : shapes) {
    INFO("n " << s.n << " in " << s.in << " targets " << s.outs.size() << " bias " << s.bias);
    std::vector<HostWeight> hw, hb;
    hw.reserve(s.outs.size());
    hb.reserve(s.outs.size());
    std::vector<MatmulTarget> gpu_targets;
    std::vector<Tensor> wc, bc, oc;
    std::vector<TensorPair> outs;
    // x is NOT bf16-exact here: the GPU rounds it to bf16 itself; the CPU reference gets the rounded copy.
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<float> x_raw(size_t(s.n * s.in)), x_rounded(x_raw.size());
    for (size_t i = 0; i < x_raw.size(); ++i) {
      x_raw[i] = nd(rng());
      x_rounded[i] = round_bf16(x_raw[i]);
    }
    Tensor xg = b.gpu.alloc({s.n, s.in});
    b.gpu.from_host(xg, x_raw.data(), s.n * s.in);
    Tensor xc = b.cpu.alloc({s.n, s.in});
    std::memcpy(xc.data, x_rounded.data(), x_rounded.size() * sizeof(float));
    for (int64_t out : s.outs) {
      hw.emplace_back("w", DType::DTYPE_BF16, std::vector<int64_t>{out, s.in},
                      random_bf16(size_t(out * s.in), 1.f / std::sqrt(float(s.in))));
      hb.emplace_back("b", DType::DTYPE_BF16, std::vector<int64_t>{out}, random_bf16(size_t(out)));
      outs.push_back(make_output(b.cpu, b.gpu, {s.n, out}));
      MatmulTarget t{outs.back().gpu, b.gpu.weight(hw.back().view), Tensor{}};
      Tensor bias_cpu;
      if (s.bias) {
        t.bias = b.gpu.weight(hb.back().view);
        bias_cpu = b.cpu.weight(hb.back().view);
      }
      b.cpu.matmul(outs.back().cpu, xc, b.cpu.weight(hw.back().view), bias_cpu);
      gpu_targets.push_back(t);
    }
    b.gpu.matmul_group(xg, gpu_targets);
    for (size_t i = 0; i < outs.size(); ++i) {
      const double err = relative_error(read(b.gpu, outs[i].gpu), read(b.cpu, outs[i].cpu));
      INFO("target " << i);
      CHECK(err <= 1e-5);
    }
  }
}

TEST_CASE("cuda norm_matmul_group and matmul_residual (GEMV with RMSNorm prologue / residual epilogue) match CPU",
          "[cuda][ops][gemv]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  Backends b;
  const int64_t d = 2048;
  for (int64_t n : {1, 2, 4, 6}) {  // 6 rows: the norm kernel + cuBLASLt path
    for (bool one_plus : {false, true}) {
      INFO("rows " << n << " one_plus " << one_plus);
      HostWeight g("g", DType::DTYPE_BF16, {d}, random_bf16(size_t(d), 0.5f));
      HostWeight w1("w1", DType::DTYPE_BF16, {768, d}, random_bf16(size_t(768 * d), 0.03f));
      HostWeight w2("w2", DType::DTYPE_BF16, {256, d}, random_bf16(size_t(256 * d), 0.03f));
      HostWeight wr("wr", DType::DTYPE_BF16, {d, 768}, random_bf16(size_t(d * 768), 0.03f));
      HostWeight br("br", DType::DTYPE_BF16, {d}, random_bf16(size_t(d)));
      auto x = make_pair(b.cpu, b.gpu, {n, d}, random_bf16(size_t(n * d), 2.f));
      auto normed = make_output(b.cpu, b.gpu, {n, d});
      auto o1 = make_output(b.cpu, b.gpu, {n, 768});
      auto o2 = make_output(b.cpu, b.gpu, {n, 256});
      const MatmulTarget tc[2] = {{o1.cpu, b.cpu.weight(w1.view), Tensor{}}, {o2.cpu, b.cpu.weight(w2.view), Tensor{}}};
      const MatmulTarget tg[2] = {{o1.gpu, b.gpu.weight(w1.view), Tensor{}}, {o2.gpu, b.gpu.weight(w2.view), Tensor{}}};
      b.cpu.norm_matmul_group(x.cpu, b.cpu.weight(g.view), 1e-5f, one_plus, normed.cpu, tc);
      b.gpu.norm_matmul_group(x.gpu, b.gpu.weight(g.view), 1e-5f, one_plus, normed.gpu, tg);
      // The CPU's GEMM input is the fp32 normed row; the GPU rounds it to bf16 (as every GPU GEMM does), so the
      // bound is the bf16 budget, not fp32 rounding.
      CHECK(relative_error(read(b.gpu, o1.gpu), read(b.cpu, o1.cpu)) <= 1e-2);
      CHECK(relative_error(read(b.gpu, o2.gpu), read(b.cpu, o2.cpu)) <= 1e-2);
      // Residual: x += o1 · wrᵀ + br, o1 bf16-exact on both sides first so the comparison is tight.
      std::vector<float> o1v = read(b.cpu, o1.cpu);
      for (auto& f : o1v) f = round_bf16(f);
      auto y = make_pair(b.cpu, b.gpu, {n, 768}, o1v);
      auto scratch = make_output(b.cpu, b.gpu, {n, d});
      b.cpu.matmul_residual(x.cpu, y.cpu, b.cpu.weight(wr.view), b.cpu.weight(br.view), scratch.cpu);
      b.gpu.matmul_residual(x.gpu, y.gpu, b.gpu.weight(wr.view), b.gpu.weight(br.view), scratch.gpu);
      CHECK(relative_error(read(b.gpu, x.gpu), read(b.cpu, x.cpu)) <= 1e-5);
    }
  }
}

namespace {

void round_in_place(Tensor t) {
  float* v = static_cast<float*>(t.data);
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = round_bf16(v[i]);
}

}  // namespace

// gated_mlp_hidden feeds the down projection alone, so the test runs it and then that projection on both sides. The
// CPU reference rounds where the GPU rounds: every GEMM input to bf16 and, on the GPU's bf16 path (more rows than the
// decode GEMV's, no biases, intermediate % 8 == 0), the gate and up projections too. A hidden output the GPU left
// unwritten (fp32, NaN-poisoned) or a bf16 copy the down GEMM did not find would fail by far more than the bound.
TEST_CASE("cuda gated_mlp_hidden (bf16 gate / up / GLU for prefill rows, the composed ops otherwise) and the down "
          "projection match the CPU",
          "[cuda][ops][mlp]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  Backends b;
  const int64_t d = 512;
  struct Case {
    int64_t rows, ffn;
    bool norm, bias;
  };
  // 40 rows: the bf16 path; 3 rows: the GEMV; biases and an intermediate size that is not a multiple of 8: composed.
  const std::vector<Case> cases = {{40, 1024, true, false}, {40, 1024, false, false}, {3, 1024, true, false},
                                   {40, 1024, true, true},  {40, 1004, true, false}};
  const Activation acts[] = {Activation::ACTIVATION_SILU, Activation::ACTIVATION_GELU_TANH, Activation::ACTIVATION_GELU};
  for (const Case& c : cases) {
    for (Activation act : acts) {
      const bool bf16_path = c.rows > kGemvMaxRows && !c.bias && c.ffn % 8 == 0;
      INFO("rows " << c.rows << " ffn " << c.ffn << " norm " << c.norm << " bias " << c.bias << " activation "
                   << int(act) << " bf16 path " << bf16_path);
      HostWeight nw("n", DType::DTYPE_BF16, {d}, random_bf16(size_t(d), 0.5f));
      HostWeight wg("g", DType::DTYPE_BF16, {c.ffn, d}, random_bf16(size_t(c.ffn * d), 0.06f));
      HostWeight wu("u", DType::DTYPE_BF16, {c.ffn, d}, random_bf16(size_t(c.ffn * d), 0.06f));
      HostWeight bg("bg", DType::DTYPE_BF16, {c.ffn}, random_bf16(size_t(c.ffn), 0.5f));
      HostWeight bu("bu", DType::DTYPE_BF16, {c.ffn}, random_bf16(size_t(c.ffn), 0.5f));
      HostWeight wd("d", DType::DTYPE_BF16, {d, c.ffn}, random_bf16(size_t(d * c.ffn), 0.04f));
      auto x = make_pair(b.cpu, b.gpu, {c.rows, d}, random_bf16(size_t(c.rows * d), 2.f));
      auto normed = make_output(b.cpu, b.gpu, {c.rows, d});
      auto gate = make_output(b.cpu, b.gpu, {c.rows, c.ffn});
      auto up = make_output(b.cpu, b.gpu, {c.rows, c.ffn});
      auto out = make_output(b.cpu, b.gpu, {c.rows, d});
      const Tensor none;
      const MatmulTarget tg[2] = {{gate.gpu, b.gpu.weight(wg.view), c.bias ? b.gpu.weight(bg.view) : none},
                                  {up.gpu, b.gpu.weight(wu.view), c.bias ? b.gpu.weight(bu.view) : none}};
      const Tensor gpu_norm = b.gpu.weight(nw.view);
      b.gpu.gated_mlp_hidden(x.gpu, c.norm ? &gpu_norm : nullptr, 1e-5f, false, normed.gpu, tg, gate.gpu, act);
      // Which path ran: the bf16 path leaves the fp32 hidden tensor as poisoned (NaN), the composed ops write it.
      {
        const std::vector<float> hidden = read(b.gpu, gate.gpu);
        const size_t finite = size_t(std::count_if(hidden.begin(), hidden.end(), [](float f) { return std::isfinite(f); }));
        CHECK(finite == (bf16_path ? size_t(0) : hidden.size()));
      }
      b.gpu.matmul(out.gpu, gate.gpu, b.gpu.weight(wd.view), none);
      // The reference, step by step with the GPU's roundings.
      Tensor in = x.cpu;
      if (c.norm) {
        b.cpu.rmsnorm(normed.cpu, x.cpu, b.cpu.weight(nw.view), 1e-5f, false);
        in = normed.cpu;
      }
      std::vector<float> in_rounded = read(b.cpu, in);
      for (auto& f : in_rounded) f = round_bf16(f);
      auto in_r = make_pair(b.cpu, b.gpu, {c.rows, d}, in_rounded);
      b.cpu.matmul(gate.cpu, in_r.cpu, b.cpu.weight(wg.view), c.bias ? b.cpu.weight(bg.view) : none);
      b.cpu.matmul(up.cpu, in_r.cpu, b.cpu.weight(wu.view), c.bias ? b.cpu.weight(bu.view) : none);
      if (bf16_path) {
        round_in_place(gate.cpu);
        round_in_place(up.cpu);
      }
      b.cpu.glu(gate.cpu, gate.cpu, up.cpu, act);
      round_in_place(gate.cpu);  // the down GEMM's input
      b.cpu.matmul(out.cpu, gate.cpu, b.cpu.weight(wd.view), none);
      // Summation order moves a bf16 rounding of gate, up or the hidden value by one ulp (2^-8) here and there.
      CHECK(relative_error(read(b.gpu, out.gpu), read(b.cpu, out.cpu)) <= 5e-3);
    }
  }
}

// Decode rows: the gate and up rows of each hidden feature in one GEMV launch that writes act(gate) * up
// (GemvParams::glu). The same fp32 sums and the same activation as the GEMV + GLU kernel it replaces, so the two
// must agree bit for bit; a pairing mistake (a gate row against another feature's up row, a skipped bias, rows mixed
// up) changes the values.
TEST_CASE("cuda decode gated_mlp_hidden (gate / up pairs in one GEMV) equals the GEMV + GLU kernel exactly",
          "[cuda][ops][mlp][gemv]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  Backends b;
  const int64_t d = 512, ffn = 1000;  // ffn not a multiple of the 8 warps of a block: a partial last block
  const Activation acts[] = {Activation::ACTIVATION_SILU, Activation::ACTIVATION_GELU_TANH, Activation::ACTIVATION_GELU};
  for (const int64_t rows : {int64_t(1), int64_t(2), int64_t(3), int64_t(4)}) {
    for (const bool norm : {true, false}) {
      for (const bool bias : {false, true}) {
        for (Activation act : acts) {
          INFO("rows " << rows << " norm " << norm << " bias " << bias << " activation " << int(act));
          HostWeight nw("n", DType::DTYPE_BF16, {d}, random_bf16(size_t(d), 0.5f));
          HostWeight wg("g", DType::DTYPE_BF16, {ffn, d}, random_bf16(size_t(ffn * d), 0.06f));
          HostWeight wu("u", DType::DTYPE_BF16, {ffn, d}, random_bf16(size_t(ffn * d), 0.06f));
          HostWeight bg("bg", DType::DTYPE_BF16, {ffn}, random_bf16(size_t(ffn), 0.5f));
          HostWeight bu("bu", DType::DTYPE_BF16, {ffn}, random_bf16(size_t(ffn), 0.5f));
          auto x = make_pair(b.cpu, b.gpu, {rows, d}, random_bf16(size_t(rows * d), 2.f));
          auto normed = make_output(b.cpu, b.gpu, {rows, d});
          auto gate = make_output(b.cpu, b.gpu, {rows, ffn});
          auto up = make_output(b.cpu, b.gpu, {rows, ffn});
          auto fused = make_output(b.cpu, b.gpu, {rows, ffn});
          const Tensor none;
          const Tensor nw_gpu = b.gpu.weight(nw.view);
          const MatmulTarget tg[2] = {{gate.gpu, b.gpu.weight(wg.view), bias ? b.gpu.weight(bg.view) : none},
                                      {up.gpu, b.gpu.weight(wu.view), bias ? b.gpu.weight(bu.view) : none}};
          b.gpu.gated_mlp_hidden(x.gpu, norm ? &nw_gpu : nullptr, 1e-5f, false, normed.gpu, tg, fused.gpu, act);
          // The composed ops: the GEMV writing gate and up, then the GLU kernel.
          if (norm) {
            b.gpu.norm_matmul_group(x.gpu, nw_gpu, 1e-5f, false, normed.gpu, tg);
          } else {
            b.gpu.matmul_group(x.gpu, tg);
          }
          b.gpu.glu(gate.gpu, gate.gpu, up.gpu, act);
          const std::vector<float> want = read(b.gpu, gate.gpu), got = read(b.gpu, fused.gpu);
          CHECK(got == want);
          CHECK(std::all_of(got.begin(), got.end(), [](float f) { return std::isfinite(f); }));
        }
      }
    }
  }
}

TEST_CASE("cuda fp8 KV: kv_write, rope_kv_write and kv_copy_pages store what the CPU emulation computes",
          "[cuda][ops][fp8]") {
  LCLLM_REQUIRE_GPU();
  INFO("seed " << seed_used());
  const KvDtype f8 = KvDtype::KV_DTYPE_FP8_E4M3;
  for (int32_t hd : {64, 80, 128, 256}) {
    INFO("head_dim " << hd);
    Backends b;
    b.cpu.kv_set_dtype(f8);
    b.gpu.kv_set_dtype(f8);
    const int32_t layers = 2, pages = 9, ps = 5, kvh = 3;  // odd heads x odd page: scale pairs at both word halves
    b.cpu.kv_reserve(layers, pages, ps, kvh, hd);
    b.gpu.kv_reserve(layers, pages, ps, kvh, hd);
    const std::vector<int64_t> slots = {0, 7, 44, 13, 21, 22, 23, 39};
    const std::vector<int32_t> positions = {0, 5, 900, 17, 1 << 19, 3, 4, 77};
    const int64_t n = int64_t(slots.size());
    std::uniform_int_distribution<int> mag(-20, 20);
    auto values = [&] {  // vectors of many magnitudes, one all zero, one with a value past e4m3's range
      std::vector<float> x = random_bf16(size_t(n * kvh * hd));
      for (size_t i = 0; i < x.size(); i += size_t(hd)) {
        const float m = std::ldexp(1.f, mag(rng()));
        for (int32_t d = 0; d < hd; ++d) x[i + size_t(d)] *= m;
      }
      std::fill(x.begin(), x.begin() + hd, 0.f);
      x[size_t(hd)] = 1e6f;
      return x;
    };
    RopeConfig rc;
    rc.theta = 10000;
    for (int32_t l = 0; l < layers; ++l) {
      auto k = make_pair(b.cpu, b.gpu, {n, kvh, hd}, values());
      auto v = make_pair(b.cpu, b.gpu, {n, kvh, hd}, values());
      if (l == 0) {  // layer 0: the plain write
        b.cpu.kv_write(l, k.cpu, v.cpu, slots);
        b.gpu.kv_write(l, k.gpu, v.gpu, slots);
      } else {  // layer 1: the fused rope + write of decode steps
        auto q = make_pair(b.cpu, b.gpu, {n, kvh, hd}, random_bf16(size_t(n * kvh * hd)));
        b.cpu.rope_kv_write(q.cpu, k.cpu, v.cpu, positions, rc, l, slots);
        b.gpu.rope_kv_write(q.gpu, k.gpu, v.gpu, positions, rc, l, slots);
        // q leaves roped and, where the cache rotates (head_dim 64, 128, 256; not 80), rotated as the CPU rotates it.
        CHECK(kv_rotated(f8, hd) == (hd != 80));
        CHECK(relative_error(read(b.gpu, q.gpu), read(b.cpu, q.cpu)) <= 1e-5);
        // k leaves roped but unrotated (the windowed heads' writer rotates its own copy).
        CHECK(relative_error(read(b.gpu, k.gpu), read(b.cpu, k.cpu)) <= 1e-5);
      }
    }
    copy_pages_on_both(b);
    const size_t pool = size_t(pages) * ps * kvh * hd;
    for (int32_t l = 0; l < layers; ++l) {
      for (bool value : {false, true}) {
        INFO("layer " << l << (value ? " V" : " K"));
        const std::vector<float> got = b.gpu.kv_read(l, value);
        const std::vector<float> ref(b.cpu.kv_data(l, value), b.cpu.kv_data(l, value) + pool);
        if (l == 0 || value) {
          CHECK(ref == got);  // the same encoder on the same fp32 inputs: the same values
        } else {
          // Rotated k may differ from the CPU's rope by an fp32 ulp, which can flip one e4m3 rounding (1/16).
          CHECK(relative_error(got, ref) <= 0.07);
        }
      }
    }
  }
}
