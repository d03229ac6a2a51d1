// CudaOps under the SIMT emulator vs the CPU reference backend, fp32 ops (tolerance kF32Tol unless stated):
// memory, activations, timestep features, embeddings, LayerNorm + adaLN, rotary, gated residual with dropout,
// softmax heads, optimiser ops. Shapes are small and odd (not multiples of a block or a warp), with one row
// and a row longer than a block. GEMM ops and attention: test_cuda_ops_gemm.cpp; the loss heads and the
// whole DiT: test_cuda_ops_model.cpp; determinism and coverage: test_cuda_ops_determinism.cpp.
#include <boost/test/unit_test.hpp>

#include "backend/cpu/cpu_ops.h"
#include "cpu_test_util.h"
#include "cuda_test_util.h"
#include "device.h"

using namespace duo;
using namespace duo::test;

namespace {

struct Backends {
  CpuOps cpu;
  CudaOps gpu;
  DeviceBuffers dev{gpu};
};

#if !defined(DUO_CUDA_EMU)
// make test-cuda on a machine without a usable GPU: one clear error (the --device cuda check, with its HINT)
// instead of every test case failing on its own.
struct GpuPresent {
  GpuPresent() { make_cuda_backend(true); }
};
BOOST_TEST_GLOBAL_FIXTURE(GpuPresent);
#endif

}  // namespace

BOOST_AUTO_TEST_SUITE(DUO_CUDA_SUITE)

BOOST_AUTO_TEST_CASE(cuda_ops_memory) {
  Backends b;
  BOOST_TEST(std::string(b.gpu.name()) == "cuda");
  BOOST_TEST((b.gpu.device() == Device::CUDA));
  // alloc is zero-filled (the emulator's fresh memory is NaN poison, so this tests alloc's memset)
  Tensor z = b.dev.zeros(DType::F32, {37});
  for (float v : b.dev.down<float>(z)) BOOST_TEST(v == 0.0f);
  std::vector<float> x = rand_f(37, 1);
  Tensor t = b.dev.up(x, {37});
  BOOST_TEST(b.dev.down<float>(t) == x);
  b.gpu.copy(z, t);
  BOOST_TEST(b.dev.down<float>(z) == x);
  b.gpu.fill(t, -2.5);
  for (float v : b.dev.down<float>(t)) BOOST_TEST(v == -2.5f);
  Tensor d = b.dev.zeros(DType::F64, {300});
  b.gpu.fill(d, 0.1);
  for (double v : b.dev.down<double>(d)) BOOST_TEST(v == 0.1);
  Tensor i = b.dev.zeros(DType::I32, {5});
  b.gpu.fill(i, 7);
  for (int32_t v : b.dev.down<int32_t>(i)) BOOST_TEST(v == 7);
  Tensor empty = b.dev.zeros(DType::F32, {0});
  b.gpu.fill(empty, 1.0);  // a no-op, not an error
  Tensor wrong = b.dev.zeros(DType::F32, {36});
  BOOST_CHECK_THROW(b.gpu.copy(wrong, t), Error);
  // out of memory names the size and gives the HINT (1 PiB exceeds any address space)
  BOOST_CHECK_EXCEPTION(b.gpu.alloc(size_t(1) << 50), Error, [](const Error& e) {
    const std::string m = e.what();
    return m.find("1125899906842624 bytes") != std::string::npos && m.find("HINT") != std::string::npos;
  });
  // ... and the failed cudaMalloc is not left as CUDA's last error, which the next launch check would report
  BOOST_TEST(cudaPeekAtLastError() == cudaSuccess);
  std::vector<float> host(37);
  BOOST_CHECK_EXCEPTION(b.gpu.silu(t, hv(host, {37})), Error, [](const Error& e) {
    return std::string(e.what()).find("host memory") != std::string::npos;
  });
  b.gpu.sync();
  BOOST_TEST(b.gpu.memory_in_use() >= size_t(37 * 4 + 300 * 8));  // at least what this test holds
  BOOST_TEST(b.cpu.memory_in_use() > 0u);                          // the process's resident set
#if defined(DUO_CUDA_EMU)
  BOOST_TEST(b.gpu.peak_flops() == 0.0);  // the emulator quotes no peak
#else
  BOOST_TEST(b.gpu.peak_flops() > 0.0);  // every GPU this build runs on (sm_80+) has bf16 tensor cores
#endif
}

BOOST_AUTO_TEST_CASE(cuda_ops_activations) {
  for (int64_t n : {1, 1031}) {
    Backends b;
    std::vector<float> x = rand_f(n, 2, -6.0f, 6.0f), dy = rand_f(n, 3);
    Tensor gx = b.dev.up(x, {n}), gdy = b.dev.up(dy, {n}), gout = b.dev.zeros(DType::F32, {n});
    std::vector<float> out(n);
    for (int which = 0; which < 2; ++which) {
      const char* name = which ? "gelu" : "silu";
      if (which) {
        b.cpu.gelu(hv(out, {n}), hv(x, {n}));
        b.gpu.gelu(gout, gx);
      } else {
        b.cpu.silu(hv(out, {n}), hv(x, {n}));
        b.gpu.silu(gout, gx);
      }
      DUO_CHECK_CLOSE(name << " n=" << n, b.dev.down<float>(gout), out, kF32Tol);
      if (which) {
        b.cpu.gelu_backward(hv(out, {n}), hv(dy, {n}), hv(x, {n}));
        b.gpu.gelu_backward(gout, gdy, gx);
      } else {
        b.cpu.silu_backward(hv(out, {n}), hv(dy, {n}), hv(x, {n}));
        b.gpu.silu_backward(gout, gdy, gx);
      }
      DUO_CHECK_CLOSE(name << "_backward n=" << n, b.dev.down<float>(gout), out, kF32Tol);
    }
  }
}

BOOST_AUTO_TEST_CASE(cuda_ops_timestep_embedding) {
  Backends b;
  const int64_t B = 3, F = 22;
  std::vector<float> sigma = {0.0f, 0.37f, 7.5f}, out(B * F);
  Tensor gs = b.dev.up(sigma, {B}), go = b.dev.zeros(DType::F32, {B, F});
  b.cpu.timestep_embedding(hv(out, {B, F}), hv(sigma, {B}));
  b.gpu.timestep_embedding(go, gs);
  DUO_CHECK_CLOSE("timestep_embedding", b.dev.down<float>(go), out, kF32Tol);
}

// ids and bag: forward gathers and the deterministic scatter backward are the CPU's additions in the CPU's
// order, so they must match exactly; 300 ids > one placement chunk of 256, with many repeats (V = 13).
BOOST_AUTO_TEST_CASE(cuda_ops_embedding_ids_and_bag) {
  Backends b;
  const int64_t V = 13, D = 37, N = 300, K = 3;
  std::vector<float> table = rand_f(V * D, 4), dout = rand_f(N * D, 5), dtable = rand_f(V * D, 6);
  std::vector<int32_t> ids = rand_ids(N, 7, V), bag = rand_ids(N * K, 8, V);
  std::vector<float> w = rand_f(N * K, 9, 0.0f, 1.0f), out(N * D), dt = dtable;
  Tensor gt = b.dev.up(table, {V, D}), gids = b.dev.up(ids, {N}), gout = b.dev.zeros(DType::F32, {N, D});
  Tensor gdout = b.dev.up(dout, {N, D}), gdt = b.dev.up(dtable, {V, D});
  b.cpu.embed_ids(hv(out, {N, D}), hv(ids, {N}), hv(table, {V, D}));
  b.gpu.embed_ids(gout, gids, gt);
  BOOST_TEST(b.dev.down<float>(gout) == out);
  b.cpu.embed_ids_backward(hv(dt, {V, D}), hv(ids, {N}), hv(dout, {N, D}));
  b.gpu.embed_ids_backward(gdt, gids, gdout);
  BOOST_TEST(b.dev.down<float>(gdt) == dt);

  Tensor gbag = b.dev.up(bag, {N, K}), gw = b.dev.up(w, {N, K});
  b.cpu.embed_bag(hv(out, {N, D}), hv(bag, {N, K}), hv(w, {N, K}), hv(table, {V, D}));
  b.gpu.embed_bag(gout, gbag, gw, gt);
  BOOST_TEST(b.dev.down<float>(gout) == out);
  b.cpu.embed_bag_backward(hv(dt, {V, D}), hv(bag, {N, K}), hv(w, {N, K}), hv(dout, {N, D}));
  b.gpu.embed_bag_backward(gdt, gbag, gw, gdout);
  BOOST_TEST(b.dev.down<float>(gdt) == dt);

  // An id outside the vocabulary: the op runs (the kernels read it as id 0, never outside the table) and the next
  // synchronisation fails naming the op, the first bad position and its id; the ids of a second call stay queued
  // behind it and are dropped with it, so the calls after the failure start clean.
  std::vector<int32_t> bad = ids;
  bad[123] = (int32_t)V;
  bad[200] = -5;
  Tensor gbad = b.dev.up(bad, {N});
  b.gpu.embed_ids(gout, gbad, gt);
  b.gpu.embed_bag_backward(gdt, gbag, gw, gdout);  // good ids, checked after the bad ones
  BOOST_CHECK_EXCEPTION(b.gpu.sync(), Error, [&](const Error& e) {
    const std::string m = e.what();
    return m.find("embed_ids") != std::string::npos && m.find("token id " + std::to_string(V) + " at position 123") !=
                                                            std::string::npos;
  });
  b.gpu.embed_ids(gout, gids, gt);
  BOOST_CHECK_NO_THROW(b.gpu.sync());
  b.gpu.embed_ids_backward(gdt, gbad, gdout);  // to_host synchronises too
  BOOST_CHECK_EXCEPTION(b.dev.down<float>(gout), Error, [](const Error& e) {
    return std::string(e.what()).find("embed_ids_backward") != std::string::npos &&
           std::string(e.what()).find("position 123") != std::string::npos;
  });
  // More checks than slots between two synchronisations: the slots are read when they run out.
  for (size_t i = 0; i < 70; ++i) b.gpu.embed_ids(gout, gids, gt);
  BOOST_CHECK_NO_THROW(b.gpu.sync());
  auto seventy_with_a_bad_fourth = [&] {  // fails at the 65th call, when the slots are read
    for (size_t i = 0; i < 70; ++i) b.gpu.embed_ids(gout, i == 3 ? gbad : gids, gt);
  };
  BOOST_CHECK_THROW(seventy_with_a_bad_fourth(), Error);
  BOOST_CHECK_NO_THROW(b.gpu.sync());
}

// LayerNorm + adaLN with shift/scale as strided column views of a (B, 6D) buffer, and plain LN with one row
// and a row longer than a warp's stride (D = 333).
BOOST_AUTO_TEST_CASE(cuda_ops_layernorm_modulate) {
  struct Shape { int64_t B, L, D; bool modulate; };
  // (B=2, L=128: the one-pass backward over two chunks per sequence; L=5 and L=70 with B > 1: the three passes)
  for (Shape s : {Shape{2, 5, 37, true}, Shape{1, 1, 333, false}, Shape{3, 70, 9, true}, Shape{2, 128, 37, true}}) {
    Backends b;
    const int64_t N = s.B * s.L, D = s.D;
    std::vector<float> x = rand_f(N * D, 10, -2.0f, 3.0f), w = rand_f(D, 11, 0.5f, 1.5f);
    std::vector<float> mod = rand_f(s.B * 6 * D, 12), g = rand_f(N * D, 13), dx0 = rand_f(N * D, 14);
    std::vector<float> dw0 = rand_f(D, 15), dmod0 = rand_f(s.B * 6 * D, 16);
    std::vector<float> out(N * D), mean(N), rstd(N), dx = dx0, dw = dw0, dmod = dmod0;
    Tensor cmod = tv(mod, {s.B, 6 * D}), cdmod = tv(dmod, {s.B, 6 * D});
    Tensor csh = s.modulate ? cmod.cols(D, D) : Tensor(), csc = s.modulate ? cmod.cols(4 * D, D) : Tensor();
    Tensor cdsh = s.modulate ? cdmod.cols(D, D) : Tensor(), cdsc = s.modulate ? cdmod.cols(4 * D, D) : Tensor();
    b.cpu.layernorm_modulate(hv(out, {N, D}), hv(mean, {N}), hv(rstd, {N}), hv(x, {N, D}), hv(w, {D}), csh, csc);
    Tensor gx = b.dev.up(x, {N, D}), gw = b.dev.up(w, {D}), gmod = b.dev.up(mod, {s.B, 6 * D});
    Tensor gout = b.dev.zeros(DType::F32, {N, D}), gmean = b.dev.zeros(DType::F32, {N}),
           grstd = b.dev.zeros(DType::F32, {N});
    Tensor gsh = s.modulate ? gmod.cols(D, D) : Tensor(), gsc = s.modulate ? gmod.cols(4 * D, D) : Tensor();
    b.gpu.layernorm_modulate(gout, gmean, grstd, gx, gw, gsh, gsc);
    BOOST_TEST_CONTEXT("B=" << s.B << " L=" << s.L << " D=" << D) {
      DUO_CHECK_CLOSE("ln out", b.dev.down<float>(gout), out, kF32Tol);
      DUO_CHECK_CLOSE("ln mean", b.dev.down<float>(gmean), mean, kF32Tol);
      DUO_CHECK_CLOSE("ln rstd", b.dev.down<float>(grstd), rstd, kF32Tol);
      b.cpu.layernorm_modulate_backward(hv(dx, {N, D}), hv(dw, {D}), cdsh, cdsc, hv(g, {N, D}), hv(x, {N, D}),
                                        hv(mean, {N}), hv(rstd, {N}), hv(w, {D}), csh, csc);
      Tensor gdx = b.dev.up(dx0, {N, D}), gdw = b.dev.up(dw0, {D}), gdmod = b.dev.up(dmod0, {s.B, 6 * D});
      Tensor gdsh = s.modulate ? gdmod.cols(D, D) : Tensor(), gdsc = s.modulate ? gdmod.cols(4 * D, D) : Tensor();
      b.gpu.layernorm_modulate_backward(gdx, gdw, gdsh, gdsc, b.dev.up(g, {N, D}), gx, gmean, grstd, gw, gsh, gsc);
      DUO_CHECK_CLOSE("ln dx (accumulated)", b.dev.down<float>(gdx), dx, kF32Tol);
      DUO_CHECK_CLOSE("ln dweight (accumulated)", b.dev.down<float>(gdw), dw, kF32Tol);
      // columns other than dshift/dscale are untouched; those two are written
      DUO_CHECK_CLOSE("ln dshift/dscale in the (B, 6D) gradient", b.dev.down<float>(gdmod), dmod, kF32Tol);
    }
  }
}

BOOST_AUTO_TEST_CASE(cuda_ops_rotary) {
  Backends b;
  const int64_t B = 2, L = 7, H = 3, hd = 6, D = H * hd, W = 3 * D;
  std::vector<float> x = rand_f(B * L * W, 17), out(B * L * W), back(B * L * W);
  Tensor gx = b.dev.up(x, {B, L, W}), gout = b.dev.zeros(DType::F32, {B, L, W});
  b.cpu.rotary(hv(out, {B, L, W}), hv(x, {B, L, W}), (int)H);
  b.gpu.rotary(gout, gx, (int)H);
  DUO_CHECK_CLOSE("rotary", b.dev.down<float>(gout), out, kF32Tol);
  b.cpu.rotary_backward(hv(back, {B, L, W}), hv(x, {B, L, W}), (int)H);
  b.gpu.rotary_backward(gout, gx, (int)H);
  DUO_CHECK_CLOSE("rotary_backward", b.dev.down<float>(gout), back, kF32Tol);
}

// rotary_attention (and its backward) against the rotary ops around the attention, on the same backend: where the
// flash kernels run on a bf16 qkv (head dims 32 and 64, the activation dtype) they rotate q and k in shared memory and
// turn dQ and dK back as they store them, with the rotary kernels' arithmetic and roundings, so the results are the
// same bits; elsewhere (hd 16, or an fp32 qkv) the op is the ops themselves. A tail tile (L = 70), causal or not.
BOOST_AUTO_TEST_CASE(cuda_ops_rotary_attention) {
  struct Shape { int64_t B, L, H, hd; };
  for (Shape s : {Shape{2, 70, 2, 32}, Shape{1, 65, 1, 64}, Shape{2, 9, 2, 16}})
    for (bool causal : {false, true})
      for (DType act : {DType::BF16, DType::F32}) {
        Backends b;
        const int64_t B = s.B, L = s.L, H = s.H, D = H * s.hd, N = B * L;
        const int h = int(H);
        auto zeros = [&](DType dt, std::initializer_list<int64_t> dims) { return b.dev.zeros(dt, dims); };
        Tensor qkv = b.dev.up_as(act, rand_f(size_t(N * 3 * D), 41, -2.0f, 2.0f), {B, L, 3 * D});
        Tensor dout = b.dev.up(rand_f(size_t(N * D), 42), {B, L, D});
        // the fused op
        Tensor out = zeros(act, {B, L, D}), lse = zeros(DType::F32, {B, H, L}), rotated = zeros(act, {B, L, 3 * D});
        Tensor dqkv = zeros(act, {B, L, 3 * D}), drot = zeros(DType::F32, {B, L, 3 * D});
        b.gpu.rotary_attention(out, lse, rotated, qkv, h, causal);
        b.gpu.rotary_attention_backward(dqkv, drot, rotated, dout, qkv, out, lse, h, causal);
        // the ops
        Tensor r2 = zeros(act, {B, L, 3 * D}), out2 = zeros(act, {B, L, D}), lse2 = zeros(DType::F32, {B, H, L});
        Tensor drot2 = zeros(DType::F32, {B, L, 3 * D}), dqkv2 = zeros(act, {B, L, 3 * D});
        b.gpu.rotary(r2, qkv, h);
        b.gpu.attention(out2, lse2, r2, h, causal);
        b.gpu.attention_backward(drot2, dout, r2, out2, lse2, h, causal);
        b.gpu.rotary_backward(dqkv2, drot2, h);
        BOOST_TEST_CONTEXT("B=" << B << " L=" << L << " H=" << H << " hd=" << s.hd << (causal ? " causal" : "")
                                << (act == DType::BF16 ? " bf16" : " fp32")) {
          BOOST_TEST(b.dev.down_as_float(out) == b.dev.down_as_float(out2), boost::test_tools::per_element());
          BOOST_TEST(b.dev.down<float>(lse) == b.dev.down<float>(lse2), boost::test_tools::per_element());
          BOOST_TEST(b.dev.down_as_float(dqkv) == b.dev.down_as_float(dqkv2), boost::test_tools::per_element());
          // Where the flash kernels rotate (bf16, hd 32 / 64) the op needs no scratch: empty ones, the same bits;
          // elsewhere a call without scratch fails, naming the op.
          const bool fused = act == DType::BF16 && s.hd != 16;
          BOOST_TEST(b.gpu.rotary_attention_uses_scratch(qkv, h) == !fused);
          Tensor no_rot(nullptr, act, {B, L, 3 * D}, qkv.device), no_drot(nullptr, DType::F32, {B, L, 3 * D}, qkv.device);
          Tensor out3 = zeros(act, {B, L, D}), lse3 = zeros(DType::F32, {B, H, L}), dqkv3 = zeros(act, {B, L, 3 * D});
          if (fused) {
            b.gpu.rotary_attention(out3, lse3, no_rot, qkv, h, causal);
            b.gpu.rotary_attention_backward(dqkv3, no_drot, no_rot, dout, qkv, out3, lse3, h, causal);
            BOOST_TEST(b.dev.down_as_float(out3) == b.dev.down_as_float(out), boost::test_tools::per_element());
            BOOST_TEST(b.dev.down_as_float(dqkv3) == b.dev.down_as_float(dqkv), boost::test_tools::per_element());
          } else {
            BOOST_CHECK_THROW(b.gpu.rotary_attention(out3, lse3, no_rot, qkv, h, causal), Error);
          }
        }
      }
}

// The dropout keep mask is a pure function of (seed, subsequence, index) on both backends: with branch = 1,
// no gate and h = 0 the output IS the mask times 1/(1-p), and must match the CPU bit for bit.
BOOST_AUTO_TEST_CASE(cuda_ops_gated_residual) {
  Backends b;
  const int64_t B = 2, L = 9, D = 35, N = B * L;
  const Philox rng{1234, 56};
  {
    std::vector<float> ones(N * D, 1.0f), h(N * D, 0.0f);
    Tensor gh = b.dev.zeros(DType::F32, {B, L, D});
    b.cpu.gated_residual(hv(h, {B, L, D}), hv(ones, {N, D}), Tensor(), 0.3f, rng);
    b.gpu.gated_residual(gh, b.dev.up(ones, {N, D}), Tensor(), 0.3f, rng);
    BOOST_TEST(b.dev.down<float>(gh) == h);
    int dropped = 0;
    for (float v : h) dropped += v == 0.0f;
    BOOST_TEST(dropped > 0);
    BOOST_TEST(dropped < N * D);
  }
  // p = 0 and p > 0; the second shape has sequences of 150 tokens, whose dgate sums run in three chunks
  for (auto [p, Lp] : {std::pair{0.0f, L}, std::pair{0.25f, L}, std::pair{0.1f, int64_t(150)}}) {
    const int64_t L = Lp, N = B * L;
    std::vector<float> h0 = rand_f(N * D, 18), x = rand_f(N * D, 19), mod = rand_f(B * 3 * D, 20);
    std::vector<float> dh = rand_f(N * D, 21), h = h0, dx(N * D), dmod = rand_f(B * 3 * D, 22);
    std::vector<float> dmod0 = dmod;
    Tensor cgate = tv(mod, {B, 3 * D}).cols(2 * D, D), cdgate = tv(dmod, {B, 3 * D}).cols(2 * D, D);
    b.cpu.gated_residual(hv(h, {B, L, D}), hv(x, {N, D}), cgate, p, rng);
    Tensor gh = b.dev.up(h0, {B, L, D}), gx = b.dev.up(x, {N, D}), gmod = b.dev.up(mod, {B, 3 * D});
    b.gpu.gated_residual(gh, gx, gmod.cols(2 * D, D), p, rng);
    DUO_CHECK_CLOSE("gated_residual p=" << p, b.dev.down<float>(gh), h, kF32Tol);
    b.cpu.gated_residual_backward(hv(dx, {N, D}), cdgate, hv(dh, {B, L, D}), hv(x, {N, D}), cgate, p, rng);
    Tensor gdx = b.dev.zeros(DType::F32, {N, D}), gdmod = b.dev.up(dmod0, {B, 3 * D});
    Tensor gdgate = gdmod.cols(2 * D, D);
    b.gpu.gated_residual_backward(gdx, gdgate, b.dev.up(dh, {B, L, D}), gx, gmod.cols(2 * D, D), p, rng);
    DUO_CHECK_CLOSE("gated_residual dbranch p=" << p, b.dev.down<float>(gdx), dx, kF32Tol);
    DUO_CHECK_CLOSE("gated_residual dgate p=" << p << " L=" << L, b.dev.down<float>(gdmod), dmod, kF32Tol);
    // fused with the next LayerNorm (shift, scale: mod's first two column blocks): the CPU's two ops
    std::vector<float> w = rand_f(D, 23, 0.5f, 1.5f), out(N * D), ln(N * D), mean(N), rstd(N);
    Tensor cmod = tv(mod, {B, 3 * D});
    b.cpu.gated_residual(hv(out, {B, L, D}), hv(h0, {B, L, D}), hv(x, {N, D}), cgate, p, rng);
    b.cpu.layernorm_modulate(hv(ln, {B, L, D}), hv(mean, {N}), hv(rstd, {N}), hv(out, {B, L, D}), tv(w, {D}),
                             cmod.cols(0, D), cmod.cols(D, D));
    Tensor gout = b.dev.zeros(DType::F32, {B, L, D}), gln = b.dev.zeros(DType::F32, {B, L, D});
    Tensor gmean = b.dev.zeros(DType::F32, {N}), grstd = b.dev.zeros(DType::F32, {N});
    b.gpu.gated_residual_layernorm(gout, gln, gmean, grstd, b.dev.up(h0, {B, L, D}), gx, gmod.cols(2 * D, D), p, rng,
                                   b.dev.up(w, {D}), gmod.cols(0, D), gmod.cols(D, D));
    DUO_CHECK_CLOSE("gated_residual_layernorm out p=" << p, b.dev.down<float>(gout), out, kF32Tol);
    DUO_CHECK_CLOSE("gated_residual_layernorm ln p=" << p, b.dev.down<float>(gln), ln, kF32Tol);
    DUO_CHECK_CLOSE("gated_residual_layernorm mean p=" << p, b.dev.down<float>(gmean), mean, kF32Tol);
    DUO_CHECK_CLOSE("gated_residual_layernorm rstd p=" << p, b.dev.down<float>(grstd), rstd, kF32Tol);
  }
}

BOOST_AUTO_TEST_CASE(cuda_ops_softmax_and_cross_entropy) {
  struct Shape { int64_t N, V; };
  for (Shape s : {Shape{1, 1}, Shape{5, 13}, Shape{3, 601}}) {
    Backends b;
    const int64_t N = s.N, V = s.V;
    std::vector<float> x = rand_f(N * V, 23, -4.0f, 4.0f), dy = rand_f(N * V, 24), out(N * V), dx(N * V);
    std::vector<int32_t> tgt = rand_ids(N, 25, (int)V);
    std::vector<float> loss(N);
    Tensor gx = b.dev.up(x, {N, V}), gout = b.dev.zeros(DType::F32, {N, V}), gdx = b.dev.zeros(DType::F32, {N, V});
    BOOST_TEST_CONTEXT("N=" << N << " V=" << V) {
      b.cpu.log_softmax(hv(out, {N, V}), hv(x, {N, V}));
      b.gpu.log_softmax(gout, gx);
      DUO_CHECK_CLOSE("log_softmax", b.dev.down<float>(gout), out, kF32Tol);
      b.cpu.log_softmax_backward(hv(dx, {N, V}), hv(dy, {N, V}), hv(out, {N, V}));
      b.gpu.log_softmax_backward(gdx, b.dev.up(dy, {N, V}), gout);
      DUO_CHECK_CLOSE("log_softmax_backward", b.dev.down<float>(gdx), dx, kF32Tol);
      Tensor gloss = b.dev.zeros(DType::F32, {N}), gt = b.dev.up(tgt, {N});
      b.cpu.cross_entropy(hv(loss, {N}), hv(dx, {N, V}), hv(x, {N, V}), hv(tgt, {N}), 0.125);
      b.gpu.cross_entropy(gloss, gdx, gx, gt, 0.125);
      DUO_CHECK_CLOSE("cross_entropy losses", b.dev.down<float>(gloss), loss, kF32Tol);
      DUO_CHECK_CLOSE("cross_entropy dlogits", b.dev.down<float>(gdx), dx, kF32Tol);
      Tensor none;
      b.gpu.cross_entropy(gloss, none, gx, gt, 1.0);  // without a gradient
      DUO_CHECK_CLOSE("cross_entropy losses (no dlogits)", b.dev.down<float>(gloss), loss, kF32Tol);
    }
  }
}

BOOST_AUTO_TEST_CASE(cuda_ops_optimiser) {
  Backends b;
  const int64_t n = 20011;  // > two sum_squares chunks, odd
  std::vector<float> p = rand_f(n, 26), g = rand_f(n, 27), m = rand_f(n, 28), v = rand_f(n, 29, 0.0f, 0.01f);
  std::vector<float> e = rand_f(n, 30);
  Tensor gp = b.dev.up(p, {n}), gg = b.dev.up(g, {n}), gm = b.dev.up(m, {n}), gv = b.dev.up(v, {n});
  Tensor ge = b.dev.up(e, {n});
  const double want = b.cpu.sum_squares(hv(g, {n}));
  BOOST_TEST(std::abs(b.gpu.sum_squares(gg) - want) <= 1e-12 * want);
  std::vector<float> one = {3.0f};
  BOOST_TEST(b.gpu.sum_squares(b.dev.up(one, {1})) == 9.0);
  {  // the chunk sums (ZeRO-1's norm): each within double rounding of the CPU's sum over the same elements
    const int64_t c = b.gpu.sum_squares_chunk();
    const std::vector<double> chunks = b.gpu.sum_squares_chunks(gg);
    BOOST_TEST((int64_t)chunks.size() == (n + c - 1) / c);
    double total = 0;
    for (size_t k = 0; k < chunks.size(); ++k) {
      const int64_t begin = (int64_t)k * c, end = std::min(n, begin + c);
      const double cpu = b.cpu.sum_squares(Tensor(g.data() + begin, DType::F32, {end - begin}, Device::CPU));
      BOOST_TEST(std::abs(chunks[k] - cpu) <= 1e-12 * cpu);
      total += chunks[k];
    }
    BOOST_TEST(std::abs(total - want) <= 1e-12 * want);
  }
  b.cpu.scale(hv(g, {n}), 0.37);
  b.gpu.scale(gg, 0.37);
  DUO_CHECK_CLOSE("scale", b.dev.down<float>(gg), g, kF32Tol);
  AdamWArgs a;
  a.lr = 1e-2;
  a.weight_decay = 0.1;
  a.step = 3;
  b.cpu.adamw(hv(p, {n}), hv(g, {n}), hv(m, {n}), hv(v, {n}), a);
  b.gpu.adamw(gp, gg, gm, gv, a);
  DUO_CHECK_CLOSE("adamw params", b.dev.down<float>(gp), p, kF32Tol);
  DUO_CHECK_CLOSE("adamw m", b.dev.down<float>(gm), m, kF32Tol);
  DUO_CHECK_CLOSE("adamw v", b.dev.down<float>(gv), v, kF32Tol);
  b.cpu.ema_update(hv(e, {n}), hv(p, {n}), 0.9);
  b.gpu.ema_update(ge, gp, 0.9);
  DUO_CHECK_CLOSE("ema_update", b.dev.down<float>(ge), e, kF32Tol);
  BOOST_CHECK_THROW(b.gpu.sum_squares(Tensor(gp.data, DType::F64, {n / 2}, Device::CUDA)), Error);
}

BOOST_AUTO_TEST_SUITE_END()
