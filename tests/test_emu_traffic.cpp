// The traffic model of the CUDA backend (src/backend/kernel_traffic.h) against the emulator's counts of the same
// launches (cuda/emu/traffic.h): every op on shapes where each tensor spans many 4 KiB pages, run once to size the
// workspace, then again counted. The kernels must be the model's, in order; each launch's bytes read and written
// must match within the counter's page granularity (kPageSlack: up to 6 partly used pages at the ends of the
// buffers a launch touches), and its tensor-core FLOPs exactly (2·M·N·K per GEMM, 4096 per mma.sync), and the bytes
// its ldmatrix instructions load from shared memory exactly.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "backend/kernel_traffic.h"
#include "cuda_test_util.h"
#include "emu/traffic.h"

using namespace duo;
using namespace duo::test;

namespace {

constexpr double kPageSlack = 6 * 4096.0;

struct Recorder : OpObserver {
  std::vector<KernelTraffic> model;
  void after(const OpCall& c) override {
    for (const KernelTraffic& k : cuda_op_traffic(c).kernels) model.push_back(k);
  }
};

// "" when the counted launches match the modelled ones, else the first difference.
std::string mismatch(const std::vector<emu::ScopeTraffic>& got, const std::vector<KernelTraffic>& want) {
  if (got.size() != want.size()) {
    std::string g, w;
    for (const auto& s : got) g += s.what + " ";
    for (const auto& k : want) w += k.kernel + " ";
    return str("counted ", got.size(), " launches (", g, "), modelled ", want.size(), " (", w, ")");
  }
  for (size_t i = 0; i < got.size(); ++i) {
    const auto& g = got[i];
    const auto& w = want[i];
    if (g.what != w.kernel) return str("launch ", i, ": counted ", g.what, ", modelled ", w.kernel);
    if (std::fabs(double(g.read) - w.read) > kPageSlack || std::fabs(double(g.written) - w.written) > kPageSlack)
      return str("launch ", i, " (", g.what, "): counted ", g.read, " bytes read and ", g.written,
                 " written, modelled ", w.read, " and ", w.written);
    if (g.tensor_flops != w.tensor_flops)
      return str("launch ", i, " (", g.what, "): counted ", g.tensor_flops, " tensor FLOPs, modelled ",
                 w.tensor_flops);
    if (double(g.fragment_bytes) != w.fragment_bytes)
      return str("launch ", i, " (", g.what, "): counted ", g.fragment_bytes, " bytes of fragments, modelled ",
                 w.fragment_bytes);
  }
  return "";
}

struct Counted {
  std::vector<emu::ScopeTraffic> got;
  std::vector<KernelTraffic> want;
};

// Runs op twice (the first call grows the backend's workspace), the second under the counter and the observer.
Counted count(CudaOps& ops, const std::function<void()>& op) {
  op();
  Recorder rec;
  ops.set_observer(&rec);
  Counted c;
  {
    emu::TrafficCounter counter;
    op();
    c.got = counter.stop();
  }
  ops.set_observer(nullptr);
  c.want = rec.model;
  return c;
}

// small_traffic: the op moves too few bytes for the page slack to be negligible (it is checked anyway, and the
// caller shows what a wrong model would have counted).
void check(const char* what, CudaOps& ops, const std::function<void()>& op, bool small_traffic = false) {
  const Counted c = count(ops, op);
  double modelled = 0;
  for (const KernelTraffic& k : c.want) modelled += k.read + k.written;
  BOOST_TEST_CONTEXT(what) {
    BOOST_TEST(mismatch(c.got, c.want) == "");
    // Not vacuous: the bytes compared exceed what the page slack could hide several times over.
    if (!small_traffic) BOOST_TEST(modelled >= 4 * kPageSlack * double(c.want.size()));
  }
}

std::vector<int32_t> distinct_ids(size_t n, int V, uint64_t seed) {  // a seeded permutation's first n (n <= V)
  std::vector<int32_t> p(size_t(V), 0);
  std::iota(p.begin(), p.end(), 0);
  Philox rng{seed, 3};
  for (size_t i = p.size() - 1; i > 0; --i) std::swap(p[i], p[rng.bits(i) % (i + 1)]);
  p.resize(n);
  return p;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(emu_traffic)

BOOST_AUTO_TEST_CASE(counter_sees_reads_writes_and_nothing_else) {
  CudaOps ops;
  DeviceBuffers dev{ops};
  const int64_t n = 64 * 1024;  // 256 KiB, 64 pages
  Tensor x = dev.up(rand_f(n, 1), {n}), y = dev.zeros(DType::F32, {n});
  emu::TrafficCounter counter;
  ops.scale(x, 2.0);
  ops.fill(y, 1.0);
  ops.copy(y, x);
  const auto got = counter.stop();
  BOOST_REQUIRE_EQUAL(got.size(), 3u);
  BOOST_TEST(got[0].what == "scale_kernel");
  BOOST_TEST(got[0].read == uint64_t(4 * n));  // whole buffers: exact
  BOOST_TEST(got[0].written == uint64_t(4 * n));
  BOOST_TEST(got[1].read == 0u);
  BOOST_TEST(got[1].written == uint64_t(4 * n));
  BOOST_TEST(got[2].what == "cudaMemcpy");
  BOOST_TEST(got[2].read == uint64_t(4 * n));
  BOOST_TEST(got[2].written == uint64_t(4 * n));
}

// The comparison can fail: a model off by a factor 2 on one launch, or missing one, is reported.
BOOST_AUTO_TEST_CASE(mismatch_reports_a_wrong_model) {
  CudaOps ops;
  DeviceBuffers dev{ops};
  const int64_t N = 256, I = 256, O = 128;
  Tensor in = dev.up(rand_f(N * I, 2), {N, I}), W = dev.up(rand_f(O * I, 3), {O, I}), b = dev.up(rand_f(O, 4), {O});
  Tensor out = dev.zeros(DType::F32, {N, O});
  Counted c = count(ops, [&] { ops.linear(out, in, W, b); });
  BOOST_TEST(mismatch(c.got, c.want) == "");
  auto wrong = c.want;
  wrong[0].read *= 2;
  BOOST_TEST(mismatch(c.got, wrong) != "");
  wrong = c.want;
  wrong.pop_back();
  BOOST_TEST(mismatch(c.got, wrong) != "");
  wrong = c.want;
  wrong.back().tensor_flops += 1;
  BOOST_TEST(mismatch(c.got, wrong) != "");
}

BOOST_AUTO_TEST_CASE(gemm_ops) {
  CudaOps ops;
  DeviceBuffers dev{ops};
  const int64_t N = 256, I = 192, O = 264;
  Tensor in = dev.up(rand_f(N * I, 5), {N, I}), W = dev.up(rand_f(O * I, 6), {O, I});
  Tensor bias_buf = dev.up(rand_f(O + 4, 7), {O + 4});
  Tensor bias = bias_buf.rows(0, O), bias_odd = bias_buf.rows(1, O);  // fused epilogue / separate pass
  Tensor out = dev.zeros(DType::F32, {N, O}), pre = dev.zeros(DType::F32, {N, O});
  Tensor dout = dev.up(rand_f(N * O, 8), {N, O}), din = dev.zeros(DType::F32, {N, I});
  Tensor dW = dev.zeros(DType::F32, {O, I}), db = dev.zeros(DType::F32, {O});
  check("linear, aligned bias", ops, [&] { ops.linear(out, in, W, bias); });
  check("linear, misaligned bias", ops, [&] { ops.linear(out, in, W, bias_odd); });
  check("linear_gelu", ops, [&] { ops.linear_gelu(out, pre, in, W, bias); });
  check("linear_backward", ops, [&] { ops.linear_backward(din, dW, db, dout, in, W, false); });
  check("linear_backward, din accumulates", ops, [&] { ops.linear_backward(din, dW, db, dout, in, W, true); });
  // Activations in bf16 (Ops::activation_dtype): read as they are, written by the GEMM (O = 264: the epilogue; the
  // misaligned fp32 bias goes in through its aligned bf16 copy).
  Tensor in16 = dev.zeros(DType::BF16, {N, I}), out16 = dev.zeros(DType::BF16, {N, O}),
         pre16 = dev.zeros(DType::BF16, {N, O});
  check("linear, bf16 in and out", ops, [&] { ops.linear(out16, in16, W, bias_odd); });
  check("linear, bf16 in", ops, [&] { ops.linear(out, in16, W, bias); });
  check("linear_gelu, bf16", ops, [&] { ops.linear_gelu(out16, pre16, in16, W, bias); });
  check("linear_backward, bf16 in", ops, [&] { ops.linear_backward(din, dW, db, dout, in16, W, false); });
  check("linear_backward, bf16 in and dout", ops, [&] { ops.linear_backward(din, dW, db, out16, in16, W, false); });
  Tensor din16 = dev.zeros(DType::BF16, {N, I});
  check("linear_backward, bf16 in, dout and din", ops,
        [&] { ops.linear_backward(din16, dW, db, out16, in16, W, false); });
  // The MLP's second layer backward through GELU: I = 192, the DGELU epilogue reading pre; fp32 and bf16
  Tensor pre32 = dev.up(rand_f(N * I, 17), {N, I}), pre_16 = dev.zeros(DType::BF16, {N, I});
  check("gelu_linear_backward (DGELU epilogue)", ops,
        [&] { ops.gelu_linear_backward(din, dW, db, dout, in, W, pre32); });
  check("gelu_linear_backward, bf16 (DGELU epilogue)", ops,
        [&] { ops.gelu_linear_backward(din16, dW, db, out16, in16, W, pre_16); });
  {  // I = 196 (not a multiple of 8): the GEMM, then the GELU backward kernel on dpre in place
    const int64_t I2 = 196;
    Tensor W2 = dev.up(rand_f(O * I2, 18), {O, I2}), in2 = dev.up(rand_f(N * I2, 19), {N, I2});
    Tensor p2 = dev.up(rand_f(N * I2, 20), {N, I2}), d2 = dev.zeros(DType::F32, {N, I2});
    Tensor dW2 = dev.zeros(DType::F32, {O, I2});
    check("gelu_linear_backward, no epilogue", ops,
          [&] { ops.gelu_linear_backward(d2, dW2, db, dout, in2, W2, p2); });
  }
  {  // O = 260: no GELU epilogue (O % 8 != 0): the GEMM into bf16 pre, then the bf16 GELU kernel
    const int64_t O2 = 260;
    Tensor W2 = dev.up(rand_f(O2 * I, 15), {O2, I}), b2 = dev.up(rand_f(O2, 16), {O2});
    Tensor o2 = dev.zeros(DType::BF16, {N, O2}), p2 = dev.zeros(DType::BF16, {N, O2});
    check("linear_gelu, bf16, no epilogue", ops, [&] { ops.linear_gelu(o2, p2, in16, W2, b2); });
  }
}

// The GEMM ops on frozen weights (backend/weight_copies.h): the first op that reads a matrix makes its bf16 working
// copy (one rounding pass, before the op's own launches), the ops after it read the copy and round nothing of W.
BOOST_AUTO_TEST_CASE(gemm_ops_on_frozen_weights) {
  CudaOps ops;
  DeviceBuffers dev{ops};
  const int64_t N = 256, I = 192, O = 264;
  Tensor block = dev.up(rand_f(2 * O * I, 40), {2 * O * I});  // two (O, I) matrices, as in a model's parameters
  Tensor W(block.data, DType::F32, {O, I}, block.device);
  Tensor W2(static_cast<float*>(block.data) + O * I, DType::F32, {O, I}, block.device);
  Tensor in = dev.up(rand_f(N * I, 41), {N, I}), bias = dev.up(rand_f(O, 42), {O});
  Tensor out = dev.zeros(DType::F32, {N, O}), pre = dev.zeros(DType::F32, {N, O});
  Tensor dout = dev.up(rand_f(N * O, 43), {N, O}), din = dev.zeros(DType::F32, {N, I});
  Tensor dW = dev.zeros(DType::F32, {O, I}), db = dev.zeros(DType::F32, {O});
  Tensor pre_in = dev.up(rand_f(N * I, 44), {N, I});
  Tensor in16 = dev.zeros(DType::BF16, {N, I}), out16 = dev.zeros(DType::BF16, {N, O});
  check("linear makes W's copy; linear_gelu, linear_backward, gelu_linear_backward read it", ops, [&] {
    FrozenWeights frozen(ops, block.data, block.nbytes());
    ops.linear(out, in, W, bias);
    ops.linear_gelu(out, pre, in, W, bias);
    ops.linear_backward(din, dW, db, dout, in, W, false);
    ops.gelu_linear_backward(din, dW, db, dout, in, W, pre_in);
    ops.linear(out16, in16, W2, bias);  // the other matrix: its own copy
    ops.linear_backward(din, dW, db, out16, in16, W2, false);
  });
  check("linear_backward without din reads no W: the next op makes the copy", ops, [&] {
    FrozenWeights frozen(ops, block.data, block.nbytes());
    Tensor no_din;
    ops.linear_backward(no_din, dW, db, dout, in, W, false);
    ops.linear(out, in, W, bias);
  });
  // AdamW over the whole block (not frozen) writes the copy with the weights; the next freeze rounds nothing.
  Tensor g = dev.up(rand_f(2 * O * I, 45), {2 * O * I}), m = dev.zeros(DType::F32, {2 * O * I});
  Tensor v = dev.zeros(DType::F32, {2 * O * I});
  check("adamw writes the working copy; the next freeze reads it", ops, [&] {
    ops.adamw(block, g, m, v, AdamWArgs{});
    FrozenWeights frozen(ops, block.data, block.nbytes());
    ops.linear(out, in, W, bias);
    ops.linear_backward(din, dW, db, dout, in, W2, false);
  });
  Tensor half = block.rows(0, O * I), gh = g.rows(0, O * I), mh = m.rows(0, O * I), vh = v.rows(0, O * I);
  check("adamw over part of the block (a ZeRO-1 shard) writes no copy: the next freeze makes them", ops, [&] {
    ops.adamw(half, gh, mh, vh, AdamWArgs{});
    FrozenWeights frozen(ops, block.data, block.nbytes());
    ops.linear(out, in, W, bias);
  });
}

BOOST_AUTO_TEST_CASE(layernorm_residual_rotary_activations) {
  CudaOps ops;
  DeviceBuffers dev{ops};
  const int64_t B = 2, L = 160, D = 256, N = B * L;
  Tensor x = dev.up(rand_f(N * D, 9), {B, L, D}), w = dev.up(rand_f(D, 10, 0.5f, 1.5f), {D});
  Tensor mod = dev.up(rand_f(B * 6 * D, 11), {B, 6 * D});
  Tensor shift = mod.cols(0, D), scale = mod.cols(D, D), gate = mod.cols(2 * D, D);
  Tensor out = dev.zeros(DType::F32, {B, L, D}), mean = dev.zeros(DType::F32, {N}), rstd = dev.zeros(DType::F32, {N});
  Tensor g = dev.up(rand_f(N * D, 12), {B, L, D}), dx = dev.zeros(DType::F32, {B, L, D});
  Tensor dw = dev.zeros(DType::F32, {D}), dmod = dev.zeros(DType::F32, {B, 6 * D});
  Tensor dshift = dmod.cols(0, D), dscale = dmod.cols(D, D), dgate = dmod.cols(2 * D, D);
  check("layernorm_modulate", ops, [&] { ops.layernorm_modulate(out, mean, rstd, x, w, shift, scale); });
  Tensor out16 = dev.zeros(DType::BF16, {B, L, D});
  check("layernorm_modulate, bf16 out", ops, [&] { ops.layernorm_modulate(out16, mean, rstd, x, w, shift, scale); });
  check("layernorm_modulate_backward (L = 160: three passes)", ops, [&] {
    ops.layernorm_modulate_backward(dx, dw, dshift, dscale, g, x, mean, rstd, w, shift, scale);
  });
  {  // L = 128: the one-pass backward (modulated), and plain LN over one sequence of N rows
    const int64_t L2 = 128, N2 = B * L2;
    Tensor x2 = dev.up(rand_f(N2 * D, 40), {B, L2, D}), g2 = dev.up(rand_f(N2 * D, 41), {B, L2, D});
    Tensor dx2 = dev.zeros(DType::F32, {B, L2, D}), m2 = dev.zeros(DType::F32, {N2}), r2 = dev.zeros(DType::F32, {N2});
    ops.layernorm_modulate(dx2, m2, r2, x2, w, shift, scale);
    check("layernorm_modulate_backward (L = 128: one pass)", ops, [&] {
      ops.layernorm_modulate_backward(dx2, dw, dshift, dscale, g2, x2, m2, r2, w, shift, scale);
    });
    Tensor g16 = dev.zeros(DType::BF16, {B, L2, D});
    check("layernorm_modulate_backward, bf16 dout (one pass)", ops, [&] {
      ops.layernorm_modulate_backward(dx2, dw, dshift, dscale, g16, x2, m2, r2, w, shift, scale);
    });
    Tensor x1 = x2.view({1, N2, D}), g1 = g2.view({1, N2, D}), dx1 = dx2.view({1, N2, D});
    Tensor none;
    check("layernorm backward, plain (one pass)", ops, [&] {
      ops.layernorm_modulate_backward(dx1, dw, none, none, g1, x1, m2, r2, w, none, none);
    });
  }
  const Philox drop{3, 4};
  check("gated_residual in place", ops, [&] { ops.gated_residual(out, g, gate, 0.1f, drop); });
  check("gated_residual out of place", ops, [&] { ops.gated_residual(out, x, g, gate, 0.1f, drop); });
  check("gated_residual_backward", ops, [&] { ops.gated_residual_backward(dx, dgate, g, x, gate, 0.1f, drop); });
  check("silu, gelu", ops, [&] {
    ops.silu(out, x);
    ops.gelu(out, x);
    ops.silu_backward(dx, g, x);
    ops.gelu_backward(dx, g, x);
  });
  Tensor dx16 = dev.zeros(DType::BF16, {B, L, D}), g16b = dev.zeros(DType::BF16, {B, L, D});
  check("gelu, bf16", ops, [&] {
    ops.gelu(out16, out16);
    ops.gelu_backward(dx16, g16b, out16);
  });
  check("layernorm_modulate_backward, bf16 dout (L = 160: three passes)", ops, [&] {
    ops.layernorm_modulate_backward(dx, dw, dshift, dscale, out16, x, mean, rstd, w, shift, scale);
  });
  {  // fused with the next LayerNorm: fp32, bf16 branch and ln; D = 1100, the two kernels
    Tensor o2 = dev.zeros(DType::F32, {B, L, D}), m2 = dev.zeros(DType::F32, {N}), r2 = dev.zeros(DType::F32, {N});
    check("gated_residual_layernorm", ops, [&] {
      ops.gated_residual_layernorm(o2, out, m2, r2, x, g, gate, 0.1f, drop, w, shift, scale);
    });
    check("gated_residual_layernorm, bf16", ops, [&] {
      ops.gated_residual_layernorm(o2, out16, m2, r2, x, g16b, gate, 0.1f, drop, w, shift, scale);
    });
    const int64_t DW = 1100;
    Tensor xw = dev.up(rand_f(N * DW, 42), {B, L, DW}), bw = dev.up(rand_f(N * DW, 43), {B, L, DW});
    Tensor ow = dev.zeros(DType::F32, {B, L, DW}), lw = dev.zeros(DType::F32, {B, L, DW});
    Tensor ww = dev.up(rand_f(DW, 44, 0.5f, 1.5f), {DW}), none;
    check("gated_residual_layernorm, D = 1100", ops, [&] {
      ops.gated_residual_layernorm(ow, lw, m2, r2, xw, bw, none, 0.1f, drop, ww, none, none);
    });
  }
  check("gated_residual_backward, bf16 branch and dbranch", ops,
        [&] { ops.gated_residual_backward(dx16, dgate, g, g16b, gate, 0.1f, drop); });
  check("gated_residual, bf16 branch", ops, [&] {
    ops.gated_residual(out, g16b, gate, 0.1f, drop);
    ops.gated_residual(out, x, g16b, gate, 0.1f, drop);
  });
  Tensor qkv = dev.up(rand_f(N * 3 * D, 13), {B, L, 3 * D}), rot = dev.zeros(DType::F32, {B, L, 3 * D});
  check("rotary", ops, [&] {
    ops.rotary(rot, qkv, 4);
    ops.rotary_backward(rot, qkv, 4);
  });
  Tensor qkv16 = dev.zeros(DType::BF16, {B, L, 3 * D}), rot16 = dev.zeros(DType::BF16, {B, L, 3 * D});
  check("rotary, bf16", ops, [&] {
    ops.rotary(rot16, qkv16, 4);
    ops.rotary_backward(rot16, qkv, 4);
  });
  Tensor sigma = dev.up(rand_f(1024, 14, 0.0f, 1.0f), {1024}), temb = dev.zeros(DType::F32, {1024, 256});
  check("timestep_embedding", ops, [&] { ops.timestep_embedding(temb, sigma); });
}

// Flash attention (head_dim 64: every token's q, k and v rows are whole pages) and the naive kernels (head_dim 16).
BOOST_AUTO_TEST_CASE(attention) {
  CudaOps ops;
  DeviceBuffers dev{ops};
  const int64_t B = 1, L = 96, H = 16, D = 1024;
  Tensor qkv = dev.up(rand_f(B * L * 3 * D, 15), {B, L, 3 * D}), out = dev.zeros(DType::F32, {B, L, D});
  Tensor lse = dev.zeros(DType::F32, {B, H, L}), dout = dev.up(rand_f(B * L * D, 16), {B, L, D});
  Tensor dqkv = dev.zeros(DType::F32, {B, L, 3 * D});
  for (bool causal : {false, true}) {
    BOOST_TEST_CONTEXT("causal " << causal) {
      check("flash attention", ops, [&] { ops.attention(out, lse, qkv, int(H), causal); });
      check("flash attention_backward", ops,
            [&] { ops.attention_backward(dqkv, dout, qkv, out, lse, int(H), causal); });
    }
  }
  Tensor lse64 = dev.zeros(DType::F32, {B, 64, L});
  check("naive attention", ops, [&] { ops.attention(out, lse64, qkv, 64, false); });
  check("naive attention_backward", ops, [&] { ops.attention_backward(dqkv, dout, qkv, out, lse64, 64, false); });
  // qkv and out in bf16 (the activation dtype): read and written as they are by the flash kernels, widened and
  // rounded around the naive ones
  Tensor qkv16 = dev.zeros(DType::BF16, {B, L, 3 * D}), out16 = dev.zeros(DType::BF16, {B, L, D});
  check("flash attention, bf16", ops, [&] { ops.attention(out16, lse, qkv16, int(H), false); });
  check("flash attention_backward, bf16", ops,
        [&] { ops.attention_backward(dqkv, dout, qkv16, out16, lse, int(H), false); });
  check("naive attention, bf16", ops, [&] { ops.attention(out16, lse64, qkv16, 64, false); });
  check("naive attention_backward, bf16", ops,
        [&] { ops.attention_backward(dqkv, dout, qkv16, out16, lse64, 64, false); });
  Tensor dout16 = dev.zeros(DType::BF16, {B, L, D});
  check("flash attention_backward, bf16 dout", ops,
        [&] { ops.attention_backward(dqkv, dout16, qkv16, out16, lse, int(H), false); });
  check("naive attention_backward, bf16 dout", ops,
        [&] { ops.attention_backward(dqkv, dout16, qkv16, out16, lse64, 64, false); });
  // rotary in the flash kernels (bf16 qkv: the table, then q and k rotated as they load, dqkv written in bf16; D =
  // 2048 so that each of a row's q, k and v parts is whole pages in bf16), and the default's ops through the scratch
  // (an fp32 qkv; the naive kernels at head_dim 16)
  {
    const int64_t H2 = 32, D2 = 2048;
    Tensor q2 = dev.zeros(DType::BF16, {B, L, 3 * D2}), o2 = dev.zeros(DType::BF16, {B, L, D2});
    Tensor lse2 = dev.zeros(DType::F32, {B, H2, L}), r2 = dev.zeros(DType::BF16, {B, L, 3 * D2});
    Tensor dq2 = dev.zeros(DType::BF16, {B, L, 3 * D2}), dr2 = dev.zeros(DType::F32, {B, L, 3 * D2});
    Tensor do2 = dev.up(rand_f(B * L * D2, 17), {B, L, D2});
    for (bool causal : {false, true})
      BOOST_TEST_CONTEXT("causal " << causal) {
        check("rotary_attention, bf16", ops, [&] { ops.rotary_attention(o2, lse2, r2, q2, int(H2), causal); });
        check("rotary_attention_backward, bf16", ops,
              [&] { ops.rotary_attention_backward(dq2, dr2, r2, do2, q2, o2, lse2, int(H2), causal); });
      }
    Tensor do16 = dev.zeros(DType::BF16, {B, L, D2});  // the DiT's: the gradient at the output in bf16 too
    check("rotary_attention_backward, bf16 dout", ops,
          [&] { ops.rotary_attention_backward(dq2, dr2, r2, do16, q2, o2, lse2, int(H2), false); });
  }
  Tensor rot16 = dev.zeros(DType::BF16, {B, L, 3 * D});
  Tensor rot = dev.zeros(DType::F32, {B, L, 3 * D}), drot = dev.zeros(DType::F32, {B, L, 3 * D});
  check("rotary_attention, fp32 (the ops)", ops, [&] { ops.rotary_attention(out, lse, rot, qkv, int(H), false); });
  check("rotary_attention_backward, fp32 (the ops)", ops,
        [&] { ops.rotary_attention_backward(dqkv, drot, rot, dout, qkv, out, lse, int(H), false); });
  check("rotary_attention, naive", ops, [&] { ops.rotary_attention(out16, lse64, rot16, qkv16, 64, false); });
}

// The forward's warps own two 16-row tiles each and feed both from every K and V fragment they load: per warp and
// 64-key tile, hd/16 · 4 ldmatrix.x4 (512 bytes) for K and as many for V, against 2 · hd mma (hd per row tile); plus
// the queries' fragments once. So 128 bytes of shared memory per mma in the loop, half of what a warp of one row
// tile reads (256, as before 2026-12-07: 264 per mma on this shape).
BOOST_AUTO_TEST_CASE(flash_forward_reads_each_fragment_once_for_two_row_tiles) {
  CudaOps ops;
  DeviceBuffers dev{ops};
  for (int64_t hd : {32, 64}) {
    const int64_t B = 1, L = 256, H = 2, D = H * hd, tiles = L / 64, warps = B * H * (L / 128) * 4;
    Tensor qkv = dev.up(rand_f(B * L * 3 * D, 18), {B, L, 3 * D}), out = dev.zeros(DType::F32, {B, L, D});
    Tensor lse = dev.zeros(DType::F32, {B, H, L});
    const Counted c = count(ops, [&] { ops.attention(out, lse, qkv, int(H), false); });
    const auto fwd = std::find_if(c.got.begin(), c.got.end(), [](const auto& s) { return s.what == "flash_forward"; });
    BOOST_TEST_REQUIRE((fwd != c.got.end()));
    const double mma = fwd->tensor_flops / (2.0 * 16 * 8 * 16);
    BOOST_TEST(mma == double(warps * tiles * 2 * hd));
    BOOST_TEST(fwd->fragment_bytes == uint64_t(warps * (tiles * 2 * (hd / 16) * 4 * 512 + 2 * (hd / 16) * 512)),
               "head_dim " << hd << ": " << fwd->fragment_bytes << " bytes in fragments, " << fwd->fragment_bytes / mma
                           << " a mma");
    BOOST_TEST(double(fwd->fragment_bytes) / mma <= 136.0);
  }
}

BOOST_AUTO_TEST_CASE(embeddings) {
  CudaOps ops;
  DeviceBuffers dev{ops};
  const int64_t N = 96, V = 200, D = 1024, K = 2;  // D = 1024: every table row is a whole page
  Tensor table = dev.up(rand_f(V * D, 17), {V, D}), out = dev.zeros(DType::F32, {N, D});
  Tensor ids = dev.up(distinct_ids(N, int(V), 18), {N}), bag = dev.up(distinct_ids(N * K, int(V), 19), {N, K});
  Tensor wts = dev.up(rand_f(N * K, 20, 0.0f, 1.0f), {N, K}), dout = dev.up(rand_f(N * D, 21), {N, D});
  Tensor dtable = dev.zeros(DType::F32, {V, D});
  check("embed_ids", ops, [&] { ops.embed_ids(out, ids, table); });
  check("embed_ids_backward", ops, [&] { ops.embed_ids_backward(dtable, ids, dout); });
  check("embed_bag", ops, [&] { ops.embed_bag(out, bag, wts, table); });
  check("embed_bag_backward", ops, [&] { ops.embed_bag_backward(dtable, bag, wts, dout); });
  Tensor logits = dev.up(rand_f(N * V * 4, 22), {N, 4 * V}), probs = dev.zeros(DType::F32, {N, 4 * V});
  Tensor table4 = dev.up(rand_f(4 * V * 256, 23), {4 * V, 256}), out4 = dev.zeros(DType::F32, {N, 256});
  Tensor dout4 = dev.up(rand_f(N * 256, 24), {N, 256}), dtable4 = dev.zeros(DType::F32, {4 * V, 256});
  check("embed_soft", ops, [&] { ops.embed_soft(out4, probs, logits, table4); });
  check("embed_soft_backward", ops, [&] { ops.embed_soft_backward(dtable4, probs, dout4); });
  check("embed_soft, the table frozen: its working copy made, then read", ops, [&] {
    FrozenWeights frozen(ops, table4.data, table4.nbytes());
    ops.embed_soft(out4, probs, logits, table4);
    ops.embed_soft(out4, probs, logits, table4);
  });
}

BOOST_AUTO_TEST_CASE(row_heads_and_relaxation) {
  CudaOps ops;
  DeviceBuffers dev{ops};
  const int64_t B = 2, L = 64, N = B * L, V = 2048;  // rows of 8 KiB
  Tensor logits = dev.up(rand_f(N * V, 25, -4.0f, 4.0f), {N, V}), teacher = dev.up(rand_f(N * V, 26), {N, V});
  Tensor out = dev.zeros(DType::F32, {N, V}), dl = dev.zeros(DType::F32, {N, V}), losses = dev.zeros(DType::F32, {N});
  Tensor x = dev.up(rand_ids(N, 27, int(V)), {N}), z = dev.up(rand_ids(N, 28, int(V)), {N});
  Tensor alpha = dev.up(std::vector<double>(N, 0.6), {N}), dalpha = dev.up(std::vector<double>(N, -1.0), {N});
  Tensor weight = dev.up(std::vector<double>(N, 0.5), {N});
  check("log_softmax", ops, [&] {
    ops.log_softmax(out, logits);
    ops.log_softmax_backward(dl, teacher, out);
  });
  check("cross_entropy", ops, [&] { ops.cross_entropy(losses, dl, logits, x, 0.5); });
  LossHeadArgs a;
  a.kind = LossKind::DUO;
  check("loss_head", ops, [&] { ops.loss_head(a, losses, dl, logits, x, z, alpha, dalpha, weight); });
  check("kl_head", ops, [&] { ops.kl_head(KlDirection::Backward, losses, dl, logits, teacher, weight); });
  // The output layer fused with the loss head, in chunks of 48 rows (48, 48, 32), with and without the backward;
  // V = 1000 has rows padded to 1024 entries; a bias that is not 16-byte aligned is copied to one that is.
  const int64_t D = 64, Vh = 1000;
  Tensor y = dev.up(rand_f(N * D, 29), {N, D}), W = dev.up(rand_f(Vh * D, 30), {Vh, D});
  Tensor bias_buf = dev.up(rand_f(Vh + 4, 31), {Vh + 4});
  Tensor bias = bias_buf.rows(0, Vh), bias_odd = bias_buf.rows(1, Vh);
  Tensor dy = dev.zeros(DType::F32, {N, D}), dW = dev.zeros(DType::F32, {Vh, D}), db = dev.zeros(DType::F32, {Vh});
  Tensor xh = dev.up(rand_ids(N, 32, int(Vh)), {N}), zh = dev.up(rand_ids(N, 33, int(Vh)), {N}), none;
  ops.set_vocab_chunk_rows(48);
  check("linear_loss_head", ops,
        [&] { ops.linear_loss_head(a, losses, none, none, none, y, W, bias, xh, zh, alpha, dalpha, weight); });
  check("linear_loss_head, backward", ops,
        [&] { ops.linear_loss_head(a, losses, dy, dW, db, y, W, bias, xh, zh, alpha, dalpha, weight); });
  check("linear_loss_head, misaligned bias", ops,
        [&] { ops.linear_loss_head(a, losses, dy, dW, db, y, W, bias_odd, xh, zh, alpha, dalpha, weight); });
  check("linear_loss_head, W frozen: its working copy made, then read", ops, [&] {
    FrozenWeights frozen(ops, W.data, W.nbytes());
    ops.linear_loss_head(a, losses, dy, dW, db, y, W, bias, xh, zh, alpha, dalpha, weight);
    ops.linear_loss_head(a, losses, none, none, none, y, W, bias, xh, zh, alpha, dalpha, weight);
  });
  ops.set_vocab_chunk_rows(0);

  Tensor scales = dev.up(std::vector<double>{0.7, 0.3, 0.5, 0.5}, {B, 2}), soft = dev.zeros(DType::F32, {B, L, V});
  check("gaussian_relaxation", ops, [&] { ops.gaussian_relaxation(soft, z, x, scales, 2.0, Philox{5, 6}); });
  // Distillation's z alone: about 1 KiB moved, where writing the soft logits would be 1 MiB (far beyond the slack).
  Tensor no_soft(nullptr, DType::F32, {B, L, V}, soft.device);
  check("gaussian_relaxation z only", ops, [&] { ops.gaussian_relaxation(no_soft, z, x, scales, 2.0, Philox{5, 6}); },
        true);

  // The soft input in one op: the probabilities written in bf16 and z, nothing else of (B, L, V); then the product.
  Tensor table = dev.up(rand_f(V * 64, 34), {V, 64}), eout = dev.zeros(DType::F32, {N, 64});
  Tensor probs = dev.zeros(DType::F32, {N, V});
  Tensor x2 = x.view({B, L});
  check("embed_relaxed", ops, [&] { ops.embed_relaxed(eout, probs, z, x2, scales, 2.0, Philox{5, 6}, table); });

  // The samplers' step: the logits read once (statistics, then the race from cache), the ids updated in place.
  Tensor status = dev.zeros(DType::I32, {2}), sigma = dev.up(std::vector<double>{0.5, 2.0}, {B});
  Tensor keep = dev.up(std::vector<uint8_t>(size_t(N), 0), {N}), logits3 = logits.view({B, L, V});
  DiffusionStepArgs step;
  step.alpha_t = 0.2;
  step.alpha_s = 0.9;
  check("diffusion_step, DUO", ops, [&] { ops.diffusion_step(z, status, logits3, keep, sigma, step); });
  DiffusionStepArgs sedd = step;
  sedd.family = DiffusionFamily::sedd;
  sedd.mask_id = int32_t(V) - 1;
  check("diffusion_step, SEDD", ops, [&] { ops.diffusion_step(x, status, logits3, Tensor(), sigma, sedd); });
}

BOOST_AUTO_TEST_CASE(optimizer) {
  CudaOps ops;
  DeviceBuffers dev{ops};
  const int64_t n = 100000;
  Tensor p = dev.up(rand_f(n, 29), {n}), g = dev.up(rand_f(n, 30), {n}), m = dev.up(rand_f(n, 31), {n});
  Tensor v = dev.up(rand_f(n, 32, 0.0f, 0.01f), {n}), e = dev.up(rand_f(n, 33), {n});
  check("sum_squares, scale", ops, [&] {
    ops.sum_squares(g);
    ops.scale(g, 0.5);
  });
  check("adamw", ops, [&] { ops.adamw(p, g, m, v, AdamWArgs{}); });
  check("ema_update, fill, copy", ops, [&] {
    ops.ema_update(e, p, 0.9);
    ops.fill(m, 0.0);
    ops.copy(v, m);
  });
}

BOOST_AUTO_TEST_SUITE_END()
