// The CPU backend's bf16 dense layers (`--compute bf16`, backend/cpu/gemm_bf16.h): the rounding, the GEMMs
// against a float64 reference under a bound derived from the arithmetic, the frozen-weights copies, the option's
// errors, and a DiT forward against the fp32 one. On a CPU without bf16 instructions the GEMM cases say so
// and check nothing else (the option refuses to run there).
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <vector>
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/gemm_bf16.h"
#include "backend/select.h"
#include "core/error.h"
#include "cpu_test_util.h"
#include "model/dit.h"
#include "train/model_state.h"

namespace {

using duo::cpu::bf16_t;
using duo::cpu::from_bf16;
using duo::cpu::to_bf16;

float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

bool has_bf16() {
  if (duo::cpu::cpu_has_bf16_gemm()) return true;
  BOOST_TEST_MESSAGE("this CPU has no AVX512-BF16 / AMX-BF16: the bf16 GEMM cases are not run here");
  return false;
}

std::vector<double> rounded(const std::vector<double>& v) {
  std::vector<double> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = from_bf16(to_bf16((float)v[i]));
  return r;
}

// One dense-layer case: x (N, I), W (O, I), bias (O), dy (N, O).
struct LinearCase {
  int64_t N, I, O;
  bool bias;
};

// The verdict: with inputs rounded to bf16, the products are exact in fp32 (8-bit significands) and every sum
// of K terms (plus the bias or the accumulated value) rounds at most K + 2 times, so against float64 sums of the
// same rounded inputs |err| <= (K + 2) u32 * sum |terms|, u32 = 2^-24 (with 1e-30 for exact zeros).
void check_close(const char* what, const std::vector<float>& got, const std::vector<double>& want,
                 const std::vector<double>& magnitude, int64_t K) {
  const double u32 = std::ldexp(1.0, -24);
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double bound = (double)(K + 2) * u32 * magnitude[i] + 1e-30;
    worst = std::fmax(worst, std::fabs((double)got[i] - want[i]) / bound);
  }
  BOOST_TEST(worst <= 1.0, what << ": error is " << worst << " times the bound");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cpu_bf16)

BOOST_AUTO_TEST_CASE(rounding_is_to_nearest_even) {
  BOOST_TEST(to_bf16(1.0f) == 0x3f80);
  BOOST_TEST(to_bf16(bits_to_float(0x3f808000u)) == 0x3f80);  // halfway, even below: down
  BOOST_TEST(to_bf16(bits_to_float(0x3f818000u)) == 0x3f82);  // halfway, even above: up
  BOOST_TEST(to_bf16(bits_to_float(0x3f808001u)) == 0x3f81);  // above halfway: up
  BOOST_TEST(to_bf16(-2.5f) == 0xc020);
  BOOST_TEST(to_bf16(bits_to_float(0x7f7fffffu)) == 0x7f80);  // the largest float rounds to inf, as the hardware's
  BOOST_TEST(to_bf16(bits_to_float(0x7f800000u)) == 0x7f80);
  BOOST_TEST(std::isnan(from_bf16(to_bf16(std::nanf("")))));
  BOOST_TEST(std::isnan(from_bf16(to_bf16(bits_to_float(0x7f800001u)))));  // a NaN never becomes inf
  std::vector<float> x = {1.0f, 3.14159f, -1e-3f, 65504.0f};
  std::vector<bf16_t> y(x.size());
  duo::cpu::to_bf16(x.data(), y.data(), (int64_t)x.size());
  for (size_t i = 0; i < x.size(); ++i) BOOST_TEST(y[i] == to_bf16(x[i]));
}

BOOST_AUTO_TEST_CASE(linear_forward_and_backward_against_float64) {
  if (!has_bf16()) return;
  using duo::test::random_vec;
  using duo::test::tv;
  const LinearCase cases[] = {{1, 1, 1, true}, {7, 33, 65, true}, {64, 256, 96, false}, {130, 64, 50, true},
                              {3, 1000, 17, true}};
  for (const LinearCase& c : cases) {
    BOOST_TEST_CONTEXT("N " << c.N << " I " << c.I << " O " << c.O << (c.bias ? " with bias" : "")) {
      duo::CpuOps ops(/*bf16_gemms=*/true);
      const auto x = random_vec((size_t)(c.N * c.I), 1, -2, 2), W = random_vec((size_t)(c.O * c.I), 2, -0.5, 0.5),
                 b = random_vec((size_t)c.O, 3), dy = random_vec((size_t)(c.N * c.O), 4),
                 din0 = random_vec((size_t)(c.N * c.I), 5), dW0 = random_vec((size_t)(c.O * c.I), 6);
      const auto xr = rounded(x), Wr = rounded(W), dyr = rounded(dy);
      std::vector<float> xf(x.begin(), x.end()), Wf(W.begin(), W.end()), bf(b.begin(), b.end()),
          dyf(dy.begin(), dy.end()), y((size_t)(c.N * c.O)), din(din0.begin(), din0.end()), dW(dW0.begin(), dW0.end()),
          db((size_t)c.O, 0.5f);
      duo::Tensor tb = c.bias ? tv(bf, {c.O}) : duo::Tensor();
      duo::Tensor ty = tv(y, {c.N, c.O});
      ops.linear(ty, tv(xf, {c.N, c.I}), tv(Wf, {c.O, c.I}), tb);
      // y = x W^T + b
      std::vector<double> want(y.size()), mag(y.size());
      for (int64_t n = 0; n < c.N; ++n)
        for (int64_t o = 0; o < c.O; ++o) {
          double s = c.bias ? (double)bf[(size_t)o] : 0.0, m = std::fabs(s);
          for (int64_t i = 0; i < c.I; ++i) {
            s += xr[(size_t)(n * c.I + i)] * Wr[(size_t)(o * c.I + i)];
            m += std::fabs(xr[(size_t)(n * c.I + i)] * Wr[(size_t)(o * c.I + i)]);
          }
          want[(size_t)(n * c.O + o)] = s;
          mag[(size_t)(n * c.O + o)] = m;
        }
      check_close("forward", y, want, mag, c.I);

      // din += dy W (accumulating), dW += dy^T x, db += column sums of the unrounded dy.
      duo::Tensor tdb = c.bias ? tv(db, {c.O}) : duo::Tensor();
      duo::Tensor tdin = tv(din, {c.N, c.I}), tdW = tv(dW, {c.O, c.I});
      ops.linear_backward(tdin, tdW, tdb, tv(dyf, {c.N, c.O}), tv(xf, {c.N, c.I}), tv(Wf, {c.O, c.I}),
                          /*accumulate_din=*/true);
      std::vector<double> want_din(din.size()), mag_din(din.size()), want_dW(dW.size()), mag_dW(dW.size());
      for (int64_t n = 0; n < c.N; ++n)
        for (int64_t i = 0; i < c.I; ++i) {
          double s = (float)din0[(size_t)(n * c.I + i)], m = std::fabs(s);
          for (int64_t o = 0; o < c.O; ++o) {
            s += dyr[(size_t)(n * c.O + o)] * Wr[(size_t)(o * c.I + i)];
            m += std::fabs(dyr[(size_t)(n * c.O + o)] * Wr[(size_t)(o * c.I + i)]);
          }
          want_din[(size_t)(n * c.I + i)] = s;
          mag_din[(size_t)(n * c.I + i)] = m;
        }
      for (int64_t o = 0; o < c.O; ++o)
        for (int64_t i = 0; i < c.I; ++i) {
          double s = (float)dW0[(size_t)(o * c.I + i)], m = std::fabs(s);
          for (int64_t n = 0; n < c.N; ++n) {
            s += dyr[(size_t)(n * c.O + o)] * xr[(size_t)(n * c.I + i)];
            m += std::fabs(dyr[(size_t)(n * c.O + o)] * xr[(size_t)(n * c.I + i)]);
          }
          want_dW[(size_t)(o * c.I + i)] = s;
          mag_dW[(size_t)(o * c.I + i)] = m;
        }
      check_close("input gradient", din, want_din, mag_din, c.O);
      check_close("weight gradient", dW, want_dW, mag_dW, c.N);
      if (c.bias) {
        std::vector<double> want_db((size_t)c.O), mag_db((size_t)c.O);
        for (int64_t o = 0; o < c.O; ++o) {
          double s = 0.5, m = 0.5;
          for (int64_t n = 0; n < c.N; ++n) {
            s += dyf[(size_t)(n * c.O + o)];
            m += std::fabs(dyf[(size_t)(n * c.O + o)]);
          }
          want_db[(size_t)o] = s;
          mag_db[(size_t)o] = m;
        }
        check_close("bias gradient", db, want_db, mag_db, c.N);
      }
    }
  }
}

// Attention with bf16 GEMM inputs against the fp32 op. With q, k, v in [-1, 1] and head size hd, rounding q and k
// moves a score by at most 2^-8 * hd * scale = 2^-8 sqrt(hd), so a probability by a factor within e^(±2·that);
// with P and v rounded too (2^-9 each) an output moves by at most (e^(2^-7 sqrt(hd)) - 1 + 2^-8) max|v| (0.036
// at hd 16). The gradients get the same relative bound on their own scale, with 50 % more for the extra
// rounding of dO and dS. A wrong layout or transposition errs by the values' own size.
BOOST_AUTO_TEST_CASE(attention_against_fp32) {
  if (!has_bf16()) return;
  using duo::test::random_vec;
  using duo::test::tv;
  struct Case { int64_t B, L, H, hd; bool causal; };
  for (const Case& c : {Case{1, 5, 1, 8, false}, Case{2, 33, 2, 16, false}, Case{2, 40, 3, 16, true},
                        Case{1, 64, 2, 32, false}}) {
    BOOST_TEST_CONTEXT("B " << c.B << " L " << c.L << " H " << c.H << " hd " << c.hd << (c.causal ? " causal" : "")) {
      const int64_t D = c.H * c.hd, N = c.B * c.L;
      const auto qkv0 = random_vec((size_t)(N * 3 * D), 7), dout0 = random_vec((size_t)(N * D), 8);
      std::vector<std::vector<float>> outs, dqkvs;
      for (bool bf16 : {false, true}) {
        duo::CpuOps ops(bf16);
        std::vector<float> qkv(qkv0.begin(), qkv0.end()), dout(dout0.begin(), dout0.end()), out((size_t)(N * D)),
            lse((size_t)(c.B * c.H * c.L)), dqkv((size_t)(N * 3 * D));
        duo::Tensor to = tv(out, {c.B, c.L, D}), tl = tv(lse, {c.B, c.H, c.L}), tq = tv(qkv, {c.B, c.L, 3 * D}),
                    td = tv(dqkv, {c.B, c.L, 3 * D});
        ops.attention(to, tl, tq, (int)c.H, c.causal);
        ops.attention_backward(td, tv(dout, {c.B, c.L, D}), tq, to, tl, (int)c.H, c.causal);
        outs.push_back(out);
        dqkvs.push_back(dqkv);
      }
      const double bound = std::exp(std::ldexp(std::sqrt((double)c.hd), -7)) - 1 + std::ldexp(1.0, -8);
      auto compare = [&](const char* what, const std::vector<float>& ref, const std::vector<float>& got, double tol) {
        double worst = 0, scale = 0;
        for (size_t i = 0; i < ref.size(); ++i) {
          worst = std::fmax(worst, std::fabs((double)ref[i] - got[i]));
          scale = std::fmax(scale, std::fabs((double)ref[i]));
        }
        BOOST_TEST(worst <= tol * scale, what << ": bf16 differs by " << worst << ", bound " << tol * scale);
        BOOST_TEST(worst > 0.0, what << ": the bf16 path gave the fp32 bits, so it did not run");
      };
      compare("output", outs[0], outs[1], bound);
      compare("dqkv", dqkvs[0], dqkvs[1], 1.5 * bound);
    }
  }
}

BOOST_AUTO_TEST_CASE(frozen_weights_keep_their_rounded_copy_until_released) {
  if (!has_bf16()) return;
  using duo::test::tv;
  duo::CpuOps ops(/*bf16_gemms=*/true);
  std::vector<float> x = {1.0f, 2.0f}, W = {0.5f, 0.25f}, y(1);
  duo::Tensor tx = tv(x, {1, 2}), tW = tv(W, {1, 2}), ty = tv(y, {1, 1});
  ops.linear(ty, tx, tW, duo::Tensor());
  BOOST_TEST(y[0] == 1.0f);
  W[0] = 1.5f;  // not frozen: every call rounds the weights it is given
  ops.linear(ty, tx, tW, duo::Tensor());
  BOOST_TEST(y[0] == 2.0f);
  {
    duo::FrozenWeights frozen(ops, W.data(), W.size() * sizeof(float));
    ops.linear(ty, tx, tW, duo::Tensor());
    BOOST_TEST(y[0] == 2.0f);
    W[0] = 0.5f;  // breaks the promise: the kept copy is used, which shows that it is kept
    ops.linear(ty, tx, tW, duo::Tensor());
    BOOST_TEST(y[0] == 2.0f);
    {
      duo::FrozenWeights again(ops, W.data(), W.size() * sizeof(float));  // a second holder of the same block
    }
    ops.linear(ty, tx, tW, duo::Tensor());  // still held by the first: still the kept copy
    BOOST_TEST(y[0] == 2.0f);
  }
  ops.linear(ty, tx, tW, duo::Tensor());  // released: the weights as they are now
  BOOST_TEST(y[0] == 1.0f);
}

BOOST_AUTO_TEST_CASE(compute_option_errors) {
  try {
    duo::make_backend("cpu", 0, "fp16");
    BOOST_FAIL("an unknown --compute was accepted");
  } catch (const duo::Error& e) {
    BOOST_TEST(std::string(e.what()).find("--compute") != std::string::npos);
    BOOST_TEST(std::string(e.what()).find("fp16") != std::string::npos);
  }
  if (duo::cpu::cpu_has_bf16_gemm()) {
    auto ops = duo::make_backend("cpu", 0, "bf16");
    BOOST_TEST(ops->describe().find("GEMMs in bf16") != std::string::npos);
  } else {
    BOOST_CHECK_THROW(duo::make_backend("cpu", 0, "bf16"), duo::Error);
  }
  BOOST_TEST(duo::make_backend("cpu", 0, "fp32")->describe().find("bf16") == std::string::npos);
}

// A whole DiT forward, bf16 against fp32 weights and activations: each of the 2 blocks' GEMMs rounds its inputs
// to 8 significant bits (relative 2^-9 each), so logits of order 1 move by about 1e-2 at most; a wrong layout
// or transposition moves them by their own size.
BOOST_AUTO_TEST_CASE(dit_forward_close_to_fp32) {
  if (!has_bf16()) return;
  duo::ModelConfig cfg;
  cfg.vocab_size = 40;
  cfg.hidden = 64;
  cfg.n_blocks = 2;
  cfg.n_heads = 4;
  cfg.cond_dim = 32;
  cfg.length = 24;
  cfg.dropout = 0;
  const int64_t B = 3, L = cfg.length, V = cfg.vocab_size;
  std::vector<int32_t> ids((size_t)(B * L));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = (int32_t)((i * 7 + 3) % (size_t)V);
  std::vector<float> sigma = {0.1f, 1.0f, 3.0f};
  std::vector<std::vector<float>> logits;
  for (bool bf16 : {false, true}) {
    duo::CpuOps ops(bf16);
    duo::ModelState state(cfg, ops, false);
    duo::DiTOptions opt;
    opt.max_batch = B;
    opt.training = false;
    duo::DiT dit(cfg, ops, opt);
    dit.bind(state.params(), nullptr);
    dit.init_parameters(11);
    float* w = static_cast<float*>(state.params());  // the initial head is zero: give every weight a value
    const duo::Philox r{3, 4};
    for (int64_t i = 0; i < state.table().total(); ++i) w[i] = (float)(0.1 * (2 * r.uniform_double((uint64_t)i) - 1));
    duo::DiTInput in;
    in.ids = duo::Tensor(ids.data(), duo::DType::I32, {B, L});
    in.sigma = duo::Tensor(sigma.data(), duo::DType::F32, {B});
    duo::Tensor out = dit.forward(in, B, L, false, duo::Philox{1, 2});
    logits.emplace_back((size_t)out.numel());
    ops.to_host(logits.back().data(), out);
  }
  double worst = 0, scale = 0;
  for (size_t i = 0; i < logits[0].size(); ++i) {
    worst = std::fmax(worst, std::fabs(logits[0][i] - logits[1][i]));
    scale = std::fmax(scale, std::fabs(logits[0][i]));
  }
  BOOST_TEST_MESSAGE("bf16 vs fp32 DiT logits: max difference " << worst << ", max |logit| " << scale);
  BOOST_TEST(scale > 0.1);
  BOOST_TEST(worst <= 0.02 * scale + 1e-3);
}

BOOST_AUTO_TEST_SUITE_END()
