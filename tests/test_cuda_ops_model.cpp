// CudaOps end to end under the emulator: every loss head against the CPU backend, and the whole DiT (tiny
// config: V = 13, d = 16, 2 blocks, 2 heads, L = 8, B = 2) forward, backward and one optimizer step on both
// backends, for the bidirectional model (ids, soft and bag input) and the causal AR model.
//
// Loss heads run the same DUO_HD row functions on both backends: kF32Tol. The DiT chains bf16 GEMMs through
// two blocks, so logits and gradients are compared with the bf16 tolerance kDiTTol (max error relative to the
// tensor's largest entry); the initial parameters, inputs and dropout masks are identical on both sides.
#include <boost/test/unit_test.hpp>

#include <unistd.h>
#include <cstdio>
#include <cstring>
#include "algo/algorithm.h"
#include "algo/curriculum.h"
#include "algo/diffusion_transform.h"
#include "algo/integral_table.h"
#include "math/loss_common.h"
#include "backend/cpu/cpu_ops.h"
#include "cpu_test_util.h"
#include "cuda_test_util.h"
#include "model/dit.h"
#include "train/model_state.h"

using namespace duo;
using namespace duo::test;

namespace {

// bf16 inputs to ~10 chained GEMMs (2^-9 each), relative to the max entry; measured up to 2e-2 (LN weights)
constexpr double kDiTTol = 3e-2;

struct Backends {
  CpuOps cpu;
  CudaOps gpu;
  DeviceBuffers dev{gpu};
};

}  // namespace

BOOST_AUTO_TEST_SUITE(DUO_CUDA_SUITE)

// Rows shorter than a warp (V = 13) and longer than the block (V = 700 > 256 threads: each thread walks several
// entries, and the [MASK] entry V − 1 belongs to a thread other than 0).
BOOST_AUTO_TEST_CASE(cuda_ops_loss_heads) {
  const int64_t N = 9;
  for (int64_t V : {13, 700})
  for (LossKind kind : {LossKind::AR, LossKind::MDLM, LossKind::SEDD, LossKind::D3PM, LossKind::CE, LossKind::DUO}) {
    const int mask = int(V) - 1;
    Backends b;
    const double tol = V > 32 ? kF32LongRowTol : kF32Tol;
    LossHeadArgs a;
    a.kind = kind;
    a.mask_id = kind == LossKind::DUO || kind == LossKind::CE ? -1 : mask;
    a.T = 10;
    std::vector<float> logits = rand_f(N * V, 60, -3.0f, 3.0f), losses(N), dl(N * V);
    std::vector<int32_t> x = rand_ids(N, 61, mask), z = rand_ids(N, 62, (int)V);
    std::vector<double> alpha(N), dalpha(N), weight(N);
    for (int64_t n = 0; n < N; ++n) {
      if (a.mask_id >= 0 && kind != LossKind::AR) z[n] = n % 2 ? mask : x[n];  // absorbing: z is x or [MASK]
      alpha[n] = 0.05 + 0.9 * double(n) / double(N);
      dalpha[n] = -1.0 - 0.1 * double(n);
      weight[n] = n == 3 ? 0.0 : 0.5 + 0.1 * double(n);
    }
    Tensor gl = b.dev.up(logits, {N, V}), gloss = b.dev.zeros(DType::F32, {N}), gdl = b.dev.zeros(DType::F32, {N, V});
    Tensor gx = b.dev.up(x, {N}), gz = b.dev.up(z, {N}), ga = b.dev.up(alpha, {N}), gda = b.dev.up(dalpha, {N});
    Tensor gw = b.dev.up(weight, {N});
    b.cpu.loss_head(a, hv(losses, {N}), hv(dl, {N, V}), hv(logits, {N, V}), hv(x, {N}), hv(z, {N}), hv(alpha, {N}),
                    hv(dalpha, {N}), hv(weight, {N}));
    b.gpu.loss_head(a, gloss, gdl, gl, gx, gz, ga, gda, gw);
    BOOST_TEST_CONTEXT("loss kind " << int(kind) << ", V = " << V) {
      DUO_CHECK_CLOSE("loss_head losses", b.dev.down<float>(gloss), losses, tol);
      DUO_CHECK_CLOSE("loss_head dlogits", b.dev.down<float>(gdl), dl, tol);
      Tensor none;
      b.gpu.loss_head(a, gloss, none, gl, gx, gz, ga, gda, gw);
      DUO_CHECK_CLOSE("loss_head losses without dlogits", b.dev.down<float>(gloss), losses, tol);
    }
  }
}

// The output layer fused with the loss head against the CPU backend's three ops, in chunks of 4 rows (3 chunks, the
// last one short) and in one: the logits come from a bf16 GEMM and the backward GEMMs take the gradient in bf16, so
// the tolerance is one bf16 rounding of a GEMM's inputs (2^-8 relative, x 2.5 for the sums), of the max entry.
BOOST_AUTO_TEST_CASE(cuda_ops_linear_loss_head) {
  constexpr double kOneBf16GemmTol = 1e-2;
  const int64_t N = 10, D = 24;
  for (int64_t V : {13, 700})
  for (int64_t chunk : {4, 0})
  for (LossKind kind : {LossKind::AR, LossKind::MDLM, LossKind::DUO}) {
    const int mask = int(V) - 1;
    Backends b;
    LossHeadArgs a;
    a.kind = kind;
    a.mask_id = kind == LossKind::DUO ? -1 : mask;
    std::vector<float> y = rand_f(N * D, 63), W = rand_f(V * D, 64), bias = rand_f(V, 65, -0.5f, 0.5f);
    std::vector<float> losses(N), dy(N * D), dW(V * D, 0.125f), db(V, 0.25f);
    std::vector<int32_t> x = rand_ids(N, 66, mask), z = rand_ids(N, 67, (int)V);
    std::vector<double> alpha(N), dalpha(N), weight(N);
    for (int64_t n = 0; n < N; ++n) {
      if (kind == LossKind::MDLM) z[n] = n % 2 ? mask : x[n];
      alpha[n] = 0.05 + 0.9 * double(n) / double(N);
      dalpha[n] = -1.0 - 0.1 * double(n);
      weight[n] = n == 3 ? 0.0 : 0.5 + 0.1 * double(n);
    }
    Tensor gy = b.dev.up(y, {N, D}), gW = b.dev.up(W, {V, D}), gb = b.dev.up(bias, {V});
    Tensor gloss = b.dev.zeros(DType::F32, {N}), gdy = b.dev.zeros(DType::F32, {N, D});
    Tensor gdW = b.dev.up(dW, {V, D}), gdb = b.dev.up(db, {V});
    Tensor gx = b.dev.up(x, {N}), gz = b.dev.up(z, {N}), ga = b.dev.up(alpha, {N}), gda = b.dev.up(dalpha, {N});
    Tensor gw = b.dev.up(weight, {N});
    b.cpu.set_vocab_chunk_rows(chunk);
    b.gpu.set_vocab_chunk_rows(chunk);
    b.cpu.linear_loss_head(a, hv(losses, {N}), hv(dy, {N, D}), hv(dW, {V, D}), hv(db, {V}), hv(y, {N, D}),
                           hv(W, {V, D}), hv(bias, {V}), hv(x, {N}), hv(z, {N}), hv(alpha, {N}), hv(dalpha, {N}),
                           hv(weight, {N}));
    b.gpu.linear_loss_head(a, gloss, gdy, gdW, gdb, gy, gW, gb, gx, gz, ga, gda, gw);
    BOOST_TEST_CONTEXT("loss kind " << int(kind) << ", V = " << V << ", chunk rows " << chunk) {
      DUO_CHECK_CLOSE("linear_loss_head losses", b.dev.down<float>(gloss), losses, kOneBf16GemmTol);
      DUO_CHECK_CLOSE("linear_loss_head dy", b.dev.down<float>(gdy), dy, kOneBf16GemmTol);
      DUO_CHECK_CLOSE("linear_loss_head dW", b.dev.down<float>(gdW), dW, kOneBf16GemmTol);
      DUO_CHECK_CLOSE("linear_loss_head dbias", b.dev.down<float>(gdb), db, kOneBf16GemmTol);
      Tensor none;
      b.gpu.linear_loss_head(a, gloss, none, none, none, gy, gW, gb, gx, gz, ga, gda, gw);
      DUO_CHECK_CLOSE("linear_loss_head losses without backward", b.dev.down<float>(gloss), losses, kOneBf16GemmTol);
    }
  }
}

// The distillation KL head (kl-bwd and kl-fwd) against the CPU backend; masked rows get a zero gradient.
BOOST_AUTO_TEST_CASE(cuda_ops_kl_head) {
  const int64_t N = 11;
  for (int64_t V : {17, 700})
  for (KlDirection dir : {KlDirection::Backward, KlDirection::Forward}) {
    Backends b;
    const double tol = V > 32 ? kF32LongRowTol : kF32Tol;
    std::vector<float> student = rand_f(N * V, 70, -3.0f, 3.0f), teacher = rand_f(N * V, 71, -3.0f, 3.0f);
    std::vector<float> losses(N), ds(N * V);
    std::vector<double> weight(N);
    for (int64_t n = 0; n < N; ++n) weight[n] = n == 4 ? 0.0 : 0.25 + 0.1 * double(n);
    Tensor gs = b.dev.up(student, {N, V}), gt = b.dev.up(teacher, {N, V}), gw = b.dev.up(weight, {N});
    Tensor gloss = b.dev.zeros(DType::F32, {N}), gds = b.dev.zeros(DType::F32, {N, V});
    b.cpu.kl_head(dir, hv(losses, {N}), hv(ds, {N, V}), hv(student, {N, V}), hv(teacher, {N, V}), hv(weight, {N}));
    b.gpu.kl_head(dir, gloss, gds, gs, gt, gw);
    BOOST_TEST_CONTEXT("direction " << (dir == KlDirection::Forward ? "kl-fwd" : "kl-bwd") << ", V = " << V) {
      DUO_CHECK_CLOSE("kl_head losses", b.dev.down<float>(gloss), losses, tol);
      DUO_CHECK_CLOSE("kl_head dstudent", b.dev.down<float>(gds), ds, tol);
      Tensor none;
      b.gpu.kl_head(dir, gloss, none, gs, gt, gw);
      DUO_CHECK_CLOSE("kl_head losses without dstudent", b.dev.down<float>(gloss), losses, tol);
    }
  }
}

// The curriculum's relaxation: a row of one Philox block's tail (V = 67 is not a multiple of 4, so blocks
// straddle rows), a row longer than one pass of the block (V = 1500 > 256 threads × 4), a sequence whose
// clean coordinate wins almost always (γ = −6) and one where it rarely does (γ = 2). Same ε on both backends:
// under the emulator the values are bit-identical; on a GPU libm's last bits may differ (ties do not occur).
BOOST_AUTO_TEST_CASE(cuda_ops_gaussian_relaxation) {
  for (int64_t V : {67, 1500}) {
    const int64_t B = 2, L = 5, N = B * L;
    Backends b;
    std::vector<int32_t> x = rand_ids(N, 72, int(V)), z_cpu(N);
    std::vector<double> scales(2 * B);
    gaussian_scales(-6.0, &scales[0], &scales[1]);
    gaussian_scales(2.0, &scales[2], &scales[3]);
    std::vector<float> y_cpu(N * V);
    const Philox noise{21, 5};
    const double beta = 37.5;
    b.cpu.gaussian_relaxation(hv(y_cpu, {B, L, V}), hv(z_cpu, {N}), hv(x, {B, L}), hv(scales, {B, 2}), beta, noise);
    Tensor gy = b.dev.zeros(DType::F32, {B, L, V}), gz = b.dev.zeros(DType::I32, {N});
    b.gpu.gaussian_relaxation(gy, gz, b.dev.up(x, {B, L}), b.dev.up(scales, {B, 2}), beta, noise);
    BOOST_TEST_CONTEXT("V = " << V) {
      DUO_CHECK_CLOSE("soft logits", b.dev.down<float>(gy), y_cpu, kF32Tol);
      BOOST_TEST(b.dev.down<int32_t>(gz) == z_cpu);
      Tensor no_soft(nullptr, DType::F32, {B, L, V}, gy.device), gz_only = b.dev.zeros(DType::I32, {N});
      b.gpu.gaussian_relaxation(no_soft, gz_only, b.dev.up(x, {B, L}), b.dev.up(scales, {B, 2}), 1.0, noise);
      BOOST_TEST(b.dev.down<int32_t>(gz_only) == z_cpu);  // distillation's draw: z alone, the same ids
      int clean = 0;
      for (int64_t n = 0; n < L; ++n) clean += z_cpu[n] == x[n];
      BOOST_TEST(clean == int(L));  // γ = −6: α̃ ≈ 0.998 dwarfs σ̃·ε ≈ 0.05·ε
      // embed_relaxed: the relaxation drawn inside the soft embedding's softmax. z the same ids; out against the CPU's
      // relaxation + embed_soft through the bf16 GEMM (K = V terms of bf16 probabilities times the bf16 table).
      const int64_t D = 16;
      const std::vector<float> table = rand_f(V * D, 74);
      std::vector<float> out_cpu(N * D), probs_cpu(N * V);
      std::vector<int32_t> zr_cpu(N);
      b.cpu.embed_relaxed(hv(out_cpu, {N, D}), hv(probs_cpu, {N, V}), hv(zr_cpu, {N}), hv(x, {B, L}),
                          hv(scales, {B, 2}), beta, noise, hv(const_cast<std::vector<float>&>(table), {V, D}));
      BOOST_TEST(zr_cpu == z_cpu);
      Tensor gout = b.dev.zeros(DType::F32, {N, D}), gprobs = b.dev.zeros(DType::F32, {N, V});
      Tensor gzr = b.dev.zeros(DType::I32, {N});
      b.gpu.embed_relaxed(gout, gprobs, gzr, b.dev.up(x, {B, L}), b.dev.up(scales, {B, 2}), beta, noise,
                          b.dev.up(table, {V, D}));
      BOOST_TEST(b.dev.down<int32_t>(gzr) == z_cpu);
      DUO_CHECK_CLOSE("embed_relaxed out", b.dev.down<float>(gout), out_cpu, kBf16Tol);
    }
  }
  Backends b;
  std::vector<int32_t> bad = {0, 67};
  std::vector<double> scales = {0.6, 0.8};
  Tensor gy = b.dev.zeros(DType::F32, {1, 2, 67}), gz = b.dev.zeros(DType::I32, {2});
  // an id outside the vocabulary: reported at the next synchronisation (CudaOps::check_ids)
  BOOST_CHECK_THROW(b.gpu.gaussian_relaxation(gy, gz, b.dev.up(bad, {1, 2}), b.dev.up(scales, {1, 2}), 1.0, Philox{});
                    b.gpu.sync(), Error);
}

// One model on one backend, with its own state and inputs. The parameters are random (the reference's init
// zeroes the adaLN and output layers, which would make the logits exactly 0 and most gradients vanish), the
// same host values on both backends.
struct ModelRun {
  ModelState state;
  DiT model;
  DiTInput in;
  ModelRun(const ModelConfig& cfg, Ops& ops, const DiTOptions& opt) : state(cfg, ops, true), model(cfg, ops, opt) {
    model.bind(state.params(), state.grads());
    const std::vector<float> params = rand_f((size_t)state.table().total(), 11, -0.5f, 0.5f);
    Tensor p = state.flat(state.params());
    ops.from_host(p, params.data());
    state.reset_ema();
  }
};

// Records every op a backend runs (Ops::set_observer): its kind and a host copy of its first output (as float; the
// CUDA backend's bf16 activations widened exactly).
struct OpRecorder final : OpObserver {
  explicit OpRecorder(Ops& o) : ops(o) {}
  void after(const OpCall& c) override {
    kinds.push_back(c.kind);
    std::vector<float> v;
    const Tensor* t = c.n_out > 0 ? c.out[0] : nullptr;
    if (t && !t->empty() && t->dtype == DType::F32 && t->is_contiguous()) {
      v.resize((size_t)t->numel());
      ops.to_host(v.data(), *t);
    }
    if (t && !t->empty() && t->dtype == DType::BF16 && t->is_contiguous()) {
      std::vector<uint16_t> h((size_t)t->numel());
      ops.to_host(h.data(), *t);
      v.resize(h.size());
      for (size_t i = 0; i < h.size(); ++i) {
        const uint32_t bits = uint32_t(h[i]) << 16;
        std::memcpy(&v[i], &bits, 4);
      }
    }
    outputs.push_back(std::move(v));
  }
  Ops& ops;
  std::vector<OpKind> kinds;
  std::vector<std::vector<float>> outputs;
};

// The first op whose output differs between two recordings by more than tol of its largest entry (max error
// relative to max |reference|), or -1. Both recordings must have run the same ops.
int64_t first_divergence(const OpRecorder& got, const OpRecorder& want, double tol) {
  for (size_t i = 0; i < want.outputs.size(); ++i) {
    const std::vector<float>& g = got.outputs[i];
    const std::vector<float>& w = want.outputs[i];
    if (g.size() != w.size()) return (int64_t)i;
    double err = 0, scale = 0;
    for (size_t j = 0; j < w.size(); ++j) {
      if (!std::isfinite(g[j]) && std::isfinite(w[j])) return (int64_t)i;
      err = std::max(err, std::fabs((double)g[j] - (double)w[j]));
      scale = std::max(scale, std::fabs((double)w[j]));
    }
    if (err > tol * std::max(scale, 1e-30)) return (int64_t)i;
  }
  return -1;
}

// The whole DiT, op by op: the observer sees the same ops in the same order on both backends, and no op's output
// leaves the bf16 tolerance; a divergence is reported by the op's name and position, the first one that differs.
// The finder itself is checked on a recording with one op's output spoiled.
BOOST_AUTO_TEST_CASE(cuda_ops_dit_op_by_op) {
  Backends b;
  ModelConfig cfg;
  cfg.vocab_size = 13; cfg.hidden = 16; cfg.n_blocks = 2; cfg.n_heads = 2; cfg.cond_dim = 16; cfg.freq_dim = 16;
  cfg.mlp_ratio = 4; cfg.length = 8; cfg.dropout = 0.1f;
  const int64_t B = 2, L = 8, N = B * L, V = cfg.vocab_size;
  DiTOptions opt;
  opt.max_batch = B;
  ModelRun cpu(cfg, b.cpu, opt), gpu(cfg, b.gpu, opt);
  std::vector<int32_t> ids = rand_ids(N, 80, (int)V);
  std::vector<float> sigma = {0.7f, 3.0f}, dlogits = rand_f(N * V, 81, -0.1f, 0.1f);
  cpu.in.ids = tv(ids, {B, L});
  gpu.in.ids = b.dev.up(ids, {B, L});
  cpu.in.sigma = tv(sigma, {B});
  gpu.in.sigma = b.dev.up(sigma, {B});
  OpRecorder rc(b.cpu), rg(b.gpu);
  b.cpu.set_observer(&rc);
  b.gpu.set_observer(&rg);
  const Philox drop{9, 2};
  cpu.model.forward(cpu.in, B, L, true, drop);
  gpu.model.forward(gpu.in, B, L, true, drop);
  std::vector<float> dl = dlogits;
  cpu.model.backward(tv(dl, {B, L, V}));
  gpu.model.backward(b.dev.up(dlogits, {B, L, V}));
  b.cpu.set_observer(nullptr);
  b.gpu.set_observer(nullptr);

  BOOST_REQUIRE(rc.kinds.size() > 40u);  // embedding, time MLP, 2 blocks, head, and their backward
  BOOST_REQUIRE(rc.kinds == rg.kinds);
  const int64_t at = first_divergence(rg, rc, kDiTTol);
  BOOST_TEST(at == -1, "first op to diverge: #" << at << " " << (at >= 0 ? op_name(rc.kinds[(size_t)at]) : ""));

  OpRecorder spoiled = rg;
  const size_t k = rc.kinds.size() / 2;
  BOOST_REQUIRE(!spoiled.outputs[k].empty());
  spoiled.outputs[k][0] += 1.0f + 2.0f * std::fabs(spoiled.outputs[k][0]);
  BOOST_TEST(first_divergence(spoiled, rc, kDiTTol) == (int64_t)k);
}

// Each op's cost from its call: a linear layer is 2·N·I·O multiply-add FLOPs plus the bias, and moves each tensor
// once; bidirectional attention 4·B·L²·D, half of it causal, the backward 2.5 times that.
BOOST_AUTO_TEST_CASE(cuda_ops_op_costs) {
  std::vector<float> in(4 * 3), W(5 * 3), bias(5), out(4 * 5), qkv(2 * 8 * 48), att(2 * 8 * 16), lse(2 * 2 * 8);
  Tensor tin = tv(in, {4, 3}), tW = tv(W, {5, 3}), tb = tv(bias, {5}), tout = tv(out, {4, 5});
  OpCall c;
  c.kind = OpKind::Linear;
  c.out[c.n_out++] = &tout;
  for (const Tensor* t : {&tin, &tW, &tb}) c.in[c.n_in++] = t;
  BOOST_TEST(op_cost(c).flops == 2.0 * 4 * 3 * 5 + 4 * 5);
  BOOST_TEST(op_cost(c).bytes == 4.0 * (12 + 15 + 5 + 20));
  Tensor tq = tv(qkv, {2, 8, 48}), ta = tv(att, {2, 8, 16}), tl = tv(lse, {2, 2, 8});
  OpCall a;
  a.kind = OpKind::Attention;
  a.out[a.n_out++] = &ta;
  a.out[a.n_out++] = &tl;
  a.in[a.n_in++] = &tq;
  a.n_heads = 2;
  BOOST_TEST(op_cost(a).flops == 4.0 * 2 * 8 * 8 * 16);
  a.causal = true;
  BOOST_TEST(op_cost(a).flops == 2.0 * 2 * 8 * 8 * 16);
  for (int kind = 0; kind < (int)OpKind::Count; ++kind) BOOST_TEST(std::string(op_name((OpKind)kind)) != "?");
}

BOOST_AUTO_TEST_CASE(cuda_ops_whole_dit) {
  struct Variant { bool causal, soft, bag; };
  for (Variant var : {Variant{false, false, false}, Variant{false, true, false}, Variant{false, false, true},
                      Variant{true, false, false}}) {
    Backends b;
    ModelConfig cfg;
    cfg.vocab_size = 13; cfg.hidden = 16; cfg.n_blocks = 2; cfg.n_heads = 2; cfg.cond_dim = 16; cfg.freq_dim = 16;
    cfg.mlp_ratio = 4; cfg.length = 8; cfg.dropout = 0.1f; cfg.causal = var.causal;
    const int64_t B = 2, L = 8, N = B * L, V = cfg.vocab_size;
    DiTOptions opt;
    opt.max_batch = B;
    opt.soft_input = var.soft;
    opt.bag_k = var.bag ? 3 : 0;
    ModelRun cpu(cfg, b.cpu, opt), gpu(cfg, b.gpu, opt);

    std::vector<int32_t> ids = rand_ids(N, 70, (int)V), targets = rand_ids(N, 71, (int)V);
    std::vector<float> sigma = {0.3f, 2.0f}, soft = rand_f(N * V, 72, -2.0f, 2.0f);
    std::vector<float> bag_w = rand_f(N * 3, 73, 0.0f, 1.0f);
    std::vector<int32_t> bag_ids = rand_ids(N * 3, 74, (int)V);
    if (var.soft) {
      cpu.in.soft_logits = tv(soft, {B, L, V});
      gpu.in.soft_logits = b.dev.up(soft, {B, L, V});
    } else if (var.bag) {
      cpu.in.bag_ids = tv(bag_ids, {B, L, 3});
      cpu.in.bag_weights = tv(bag_w, {B, L, 3});
      gpu.in.bag_ids = b.dev.up(bag_ids, {B, L, 3});
      gpu.in.bag_weights = b.dev.up(bag_w, {B, L, 3});
    } else {
      cpu.in.ids = tv(ids, {B, L});
      gpu.in.ids = b.dev.up(ids, {B, L});
    }
    if (!var.causal) {
      cpu.in.sigma = tv(sigma, {B});
      gpu.in.sigma = b.dev.up(sigma, {B});
    }
    BOOST_TEST_CONTEXT("causal=" << var.causal << " soft=" << var.soft << " bag=" << var.bag) {
      const Philox drop{5, 1};
      Tensor cl = cpu.model.forward(cpu.in, B, L, true, drop);
      Tensor gl = gpu.model.forward(gpu.in, B, L, true, drop);
      std::vector<float> cpu_logits(N * V);
      b.cpu.to_host(cpu_logits.data(), cl);
      DUO_CHECK_CLOSE("DiT logits", b.dev.down<float>(gl), cpu_logits, kDiTTol);

      // mean cross-entropy on each backend, then backward
      std::vector<float> closs(N), cdl(N * V);
      b.cpu.cross_entropy(hv(closs, {N}), hv(cdl, {N, V}), cl.view({N, V}), hv(targets, {N}), 1.0 / N);
      Tensor gloss = b.dev.zeros(DType::F32, {N}), gdl = b.dev.zeros(DType::F32, {N, V});
      b.gpu.cross_entropy(gloss, gdl, gl.view({N, V}), b.dev.up(targets, {N}), 1.0 / N);
      DUO_CHECK_CLOSE("DiT losses", b.dev.down<float>(gloss), closs, kDiTTol);
      cpu.state.zero_grads();
      gpu.state.zero_grads();
      cpu.model.backward(tv(cdl, {B, L, V}));
      gpu.model.backward(gdl.view({B, L, V}));
      const int64_t P = cpu.state.table().total();
      std::vector<float> cg(P), gg(P);
      b.cpu.to_host(cg.data(), cpu.state.flat(cpu.state.grads()));
      b.gpu.to_host(gg.data(), gpu.state.flat(gpu.state.grads()));
      for (const ParamInfo& p : cpu.state.table().params()) {
        std::vector<float> c(cg.begin() + p.offset, cg.begin() + p.offset + p.numel);
        std::vector<float> g(gg.begin() + p.offset, gg.begin() + p.offset + p.numel);
        DUO_CHECK_CLOSE("gradient of " << p.name, g, c, kDiTTol);
      }

      // one optimizer step: clip + AdamW + EMA on each backend's own gradients
      OptimConfig oc;
      oc.lr = 1e-3;
      oc.warmup_steps = 0;
      oc.weight_decay = 0.01;
      oc.ema = 0.9;
      const double cnorm = cpu.state.grad_norm(single_process()), gnorm = gpu.state.grad_norm(single_process());
      cpu.state.optimizer_step(oc, cnorm);
      gpu.state.optimizer_step(oc, gnorm);
      BOOST_TEST(std::abs(gnorm - cnorm) <= kDiTTol * cnorm);
      std::vector<float> cp(P), gp(P), ce(P), ge(P);
      b.cpu.to_host(cp.data(), cpu.state.flat(cpu.state.params()));
      b.gpu.to_host(gp.data(), gpu.state.flat(gpu.state.params()));
      b.cpu.to_host(ce.data(), cpu.state.flat(cpu.state.ema()));
      b.gpu.to_host(ge.data(), gpu.state.flat(gpu.state.ema()));
      // AdamW's first step moves every parameter by about lr sign(g), so a gradient near 0 whose sign the bf16
      // rounding flips moves it 2 lr apart: parameters (and the EMA that follows them) agree to 2 lr + rounding.
      auto max_abs = [](const std::vector<float>& a, const std::vector<float>& c) {
        double m = 0;
        for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(c[i])));
        return m;
      };
      BOOST_TEST(max_abs(gp, cp) <= 2.2 * oc.lr);
      BOOST_TEST(max_abs(ge, ce) <= 2.2 * oc.lr);
      BOOST_TEST(max_abs(gp, std::vector<float>(rand_f((size_t)P, 11, -0.5f, 0.5f))) > 0.5 * oc.lr);  // it moved
    }
  }
}

// One training micro-batch of every algorithm (noising, forward, loss head, backward) on the emulated CUDA
// backend against the CPU backend: the same Philox streams draw the same times and noise, so losses and
// gradients agree to the bf16 tolerance.
BOOST_AUTO_TEST_CASE(cuda_ops_training_step_of_every_algorithm) {
  const std::string table = "/tmp/duo_cuda_test_integral_" + std::to_string(getpid()) + ".bin";
  IntegralTable::compute(DiffusionTransform(13), -6.0, 6.0, 601).write(table);
  for (const std::string name : {"ar", "mdlm", "sedd", "d3pm", "duo_base", "duo"}) {
    Backends b;
    ModelConfig cfg;
    cfg.vocab_size = 13; cfg.hidden = 16; cfg.n_blocks = 2; cfg.n_heads = 2; cfg.cond_dim = 16; cfg.freq_dim = 16;
    cfg.length = 8; cfg.dropout = 0.1f; cfg.causal = name == "ar";
    const int64_t B = 2, L = 8;
    DiTOptions opt;
    opt.max_batch = B;
    opt.soft_input = name == "duo";
    ModelRun cpu(cfg, b.cpu, opt), gpu(cfg, b.gpu, opt);
    AlgoSettings s;
    s.name = name;
    s.mask_id = 12;
    s.T = name == "d3pm" ? 1000 : 0;
    s.integral_path = table;
    s.curriculum.gamma_min = -2.0;
    s.curriculum.gamma_max = 1.0;
    s.curriculum.tau_log10_start = s.curriculum.tau_log10_end = -0.5;
    auto ca = make_algorithm(s, cpu.model, b.cpu), ga = make_algorithm(s, gpu.model, b.gpu);
    const std::vector<int32_t> ids = rand_ids(B * L, 80, 12);
    const std::vector<float> mask(B * L, 1.0f);
    MicroBatch mb;
    mb.ids = ids.data(); mb.mask = mask.data(); mb.B = B; mb.L = L;
    mb.t = {0.3, 0.8};
    mb.noise = Philox{3, 4};
    mb.dropout = Philox{5, 6};
    BOOST_TEST_CONTEXT(name) {
      cpu.state.zero_grads();
      gpu.state.zero_grads();
      const LossSums c = ca->run(mb, true, true, 1.0 / (B * L)), g = ga->run(mb, true, true, 1.0 / (B * L));
      BOOST_TEST(std::abs(g.loss - c.loss) <= kDiTTol * std::abs(c.loss));
      const int64_t P = cpu.state.table().total();
      std::vector<float> cg(P), gg(P);
      b.cpu.to_host(cg.data(), cpu.state.flat(cpu.state.grads()));
      b.gpu.to_host(gg.data(), gpu.state.flat(gpu.state.grads()));
      DUO_CHECK_CLOSE("gradients", gg, cg, kDiTTol);
    }
  }
  std::remove(table.c_str());
}

BOOST_AUTO_TEST_SUITE_END()
