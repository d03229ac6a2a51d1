// Float64 central finite-difference checks of every backward of the CPU backend. Each case defines the scalar
// objective  loss = sum(out * R)  for a fixed random R, so that dout = R, runs the backward once, and compares
// every input and parameter gradient with check_gradient(). Shapes are small and odd on purpose.
#include <boost/test/unit_test.hpp>
#include "backend/cpu/cpu_ops.h"
#include "cpu_test_util.h"

using namespace duo;
using namespace duo::test;

namespace {
constexpr int64_t B = 2, L = 5, D = 6, V = 7;
constexpr int64_t H = 2, HD = 6, DA = H * HD;  // attention and rotary: 2 heads of (even) head_dim 6
}

BOOST_AUTO_TEST_SUITE(cpu_ops_grad)

BOOST_AUTO_TEST_CASE(linear) {
  CpuOps ops;
  const int64_t I = D, O = V, N = B * L;
  for (bool with_bias : {true, false}) {
    BOOST_TEST_CONTEXT("with_bias=" << with_bias) {
      std::vector<double> x = random_vec(N * I, 1), W = random_vec(O * I, 2), b = random_vec(O, 3);
      std::vector<double> R = random_vec(N * O, 4), y(N * O);
      Tensor x_t = tv(x, {B, L, I}), W_t = tv(W, {O, I}), y_t = tv(y, {B, L, O}), R_t = tv(R, {B, L, O});
      Tensor b_t = with_bias ? tv(b, {O}) : Tensor();
      auto loss = [&] {
        ops.linear(y_t, x_t, W_t, b_t);
        return dot(y, R);
      };
      loss();

      std::vector<double> dx(N * I, 0.25), dW(O * I, 0.0), db(O, 0.0);  // dx starts dirty: it is written
      Tensor dx_t = tv(dx, {B, L, I}), dW_t = tv(dW, {O, I});
      Tensor db_t = with_bias ? tv(db, {O}) : Tensor();
      ops.linear_backward(dx_t, dW_t, db_t, R_t, x_t, W_t, false);
      check_gradient("dx", x, dx, loss);
      check_gradient("dW", W, dW, loss);
      if (with_bias) check_gradient("dbias", b, db, loss);

      // Second call: dW and dbias accumulate; dx accumulates only when asked.
      const std::vector<double> dx1 = dx, dW1 = dW, db1 = db;
      ops.linear_backward(dx_t, dW_t, db_t, R_t, x_t, W_t, true);
      check_doubled("dx (accumulate_din)", dx1, dx);
      check_doubled("dW", dW1, dW);
      if (with_bias) check_doubled("dbias", db1, db);
      const std::vector<double> dx2 = dx;
      Tensor no_din;
      ops.linear_backward(no_din, dW_t, db_t, R_t, x_t, W_t, false);  // din absent: only parameters change
      BOOST_TEST(max_abs_diff(dx2, dx) == 0.0);
    }
  }
}

BOOST_AUTO_TEST_CASE(silu_and_gelu) {
  CpuOps ops;
  const int64_t n = B * L * D;
  for (bool is_gelu : {false, true}) {
    BOOST_TEST_CONTEXT((is_gelu ? "gelu" : "silu")) {
      std::vector<double> x = random_vec(n, 5, -4.0, 4.0), R = random_vec(n, 6), y(n), dx(n, 9.0);
      Tensor x_t = tv(x, {B, L, D}), y_t = tv(y, {B, L, D}), R_t = tv(R, {B, L, D}), dx_t = tv(dx, {B, L, D});
      auto loss = [&] {
        is_gelu ? ops.gelu(y_t, x_t) : ops.silu(y_t, x_t);
        return dot(y, R);
      };
      loss();
      is_gelu ? ops.gelu_backward(dx_t, R_t, x_t) : ops.silu_backward(dx_t, R_t, x_t);
      check_gradient("din", x, dx, loss);
    }
  }
}

// Modulated LayerNorm with shift/scale as column blocks of one (B, 6D) adaLN buffer (as the DiT passes them),
// and the plain LayerNorm of the causal model.
BOOST_AUTO_TEST_CASE(layernorm_modulate) {
  CpuOps ops;
  const int64_t N = B * L;
  for (bool modulate : {true, false}) {
    BOOST_TEST_CONTEXT("modulate=" << modulate) {
      std::vector<double> x = random_vec(N * D, 7, -2.0, 2.0), w = random_vec(D, 8, 0.5, 1.5);
      std::vector<double> ada = random_vec(B * 6 * D, 9);  // (B, 6D): shift at block 0, scale at block 1
      std::vector<double> R = random_vec(N * D, 10), y(N * D), mean(N), rstd(N);
      Tensor x_t = tv(x, {B, L, D}), w_t = tv(w, {D}), y_t = tv(y, {B, L, D}), R_t = tv(R, {B, L, D});
      Tensor mean_t = tv(mean, {N}), rstd_t = tv(rstd, {N}), ada_t = tv(ada, {B, 6 * D});
      Tensor shift = modulate ? ada_t.cols(0, D) : Tensor(), scale = modulate ? ada_t.cols(D, D) : Tensor();
      auto loss = [&] {
        ops.layernorm_modulate(y_t, mean_t, rstd_t, x_t, w_t, shift, scale);
        return dot(y, R);
      };
      loss();

      std::vector<double> dx(N * D, 0.0), dw(D, 0.0), dada(B * 6 * D, 0.0);
      Tensor dx_t = tv(dx, {B, L, D}), dw_t = tv(dw, {D}), dada_t = tv(dada, {B, 6 * D});
      Tensor dshift = modulate ? dada_t.cols(0, D) : Tensor(), dscale = modulate ? dada_t.cols(D, D) : Tensor();
      ops.layernorm_modulate_backward(dx_t, dw_t, dshift, dscale, R_t, x_t, mean_t, rstd_t, w_t, shift, scale);
      check_gradient("dx", x, dx, loss);
      check_gradient("dweight", w, dw, loss);
      if (modulate) check_gradient("d(adaLN buffer) via dshift, dscale", ada, dada, loss);

      // dx and dweight accumulate; dshift and dscale are written.
      const std::vector<double> dx1 = dx, dw1 = dw, dada1 = dada;
      ops.layernorm_modulate_backward(dx_t, dw_t, dshift, dscale, R_t, x_t, mean_t, rstd_t, w_t, shift, scale);
      check_doubled("dx", dx1, dx);
      check_doubled("dweight", dw1, dw);
      BOOST_TEST(max_abs_diff(dada1, dada) == 0.0);
    }
  }
}

BOOST_AUTO_TEST_CASE(rotary) {
  CpuOps ops;
  const int64_t n = B * L * 3 * DA;
  std::vector<double> x = random_vec(n, 11), R = random_vec(n, 12), y(n), dx(n, 3.0);
  Tensor x_t = tv(x, {B, L, 3 * DA}), y_t = tv(y, {B, L, 3 * DA}), R_t = tv(R, {B, L, 3 * DA});
  Tensor dx_t = tv(dx, {B, L, 3 * DA});
  auto loss = [&] {
    ops.rotary(y_t, x_t, H);
    return dot(y, R);
  };
  loss();
  ops.rotary_backward(dx_t, R_t, H);
  check_gradient("din", x, dx, loss);
}

BOOST_AUTO_TEST_CASE(attention) {
  CpuOps ops;
  for (bool causal : {false, true}) {
    BOOST_TEST_CONTEXT("causal=" << causal) {
      std::vector<double> qkv = random_vec(B * L * 3 * DA, 13, -1.5, 1.5), R = random_vec(B * L * DA, 14);
      std::vector<double> out(B * L * DA), lse(B * H * L), dqkv(qkv.size(), 5.0);
      Tensor qkv_t = tv(qkv, {B, L, 3 * DA}), out_t = tv(out, {B, L, DA}), lse_t = tv(lse, {B, H, L});
      Tensor R_t = tv(R, {B, L, DA}), dqkv_t = tv(dqkv, {B, L, 3 * DA});
      auto loss = [&] {
        ops.attention(out_t, lse_t, qkv_t, H, causal);
        return dot(out, R);
      };
      loss();
      ops.attention_backward(dqkv_t, R_t, qkv_t, out_t, lse_t, H, causal);
      check_gradient("dqkv", qkv, dqkv, loss);
    }
  }
}

// gate is a column block of a (B, 3D) buffer; dropout uses the same Philox stream in both passes.
BOOST_AUTO_TEST_CASE(gated_residual) {
  CpuOps ops;
  const Philox rng{2025, 17};
  struct Case { float p; bool gated; };
  for (Case c : {Case{0.3f, true}, Case{0.0f, true}, Case{0.3f, false}}) {
    BOOST_TEST_CONTEXT("p=" << c.p << " gated=" << c.gated) {
      const int64_t n = B * L * D;
      std::vector<double> h0 = random_vec(n, 15), x = random_vec(n, 16), ada = random_vec(B * 3 * D, 17);
      std::vector<double> R = random_vec(n, 18), h(n), dx(n, 2.0), dada(B * 3 * D, 0.0);
      Tensor h_t = tv(h, {B, L, D}), x_t = tv(x, {B, L, D}), R_t = tv(R, {B, L, D}), dx_t = tv(dx, {B, L, D});
      Tensor ada_t = tv(ada, {B, 3 * D}), dada_t = tv(dada, {B, 3 * D});
      Tensor gate = c.gated ? ada_t.cols(2 * D, D) : Tensor(), dgate = c.gated ? dada_t.cols(2 * D, D) : Tensor();
      auto loss = [&] {
        h = h0;  // h += ... : start every evaluation from the same residual stream
        ops.gated_residual(h_t, x_t, gate, c.p, rng);
        return dot(h, R);
      };
      loss();
      ops.gated_residual_backward(dx_t, dgate, R_t, x_t, gate, c.p, rng);
      check_gradient("dbranch", x, dx, loss);
      if (c.gated) check_gradient("d(adaLN buffer) via dgate", ada, dada, loss);

      // dbranch and dgate are written, not accumulated: a second call gives the same values.
      const std::vector<double> dx1 = dx, dada1 = dada;
      ops.gated_residual_backward(dx_t, dgate, R_t, x_t, gate, c.p, rng);
      BOOST_TEST(max_abs_diff(dx1, dx) == 0.0);
      BOOST_TEST(max_abs_diff(dada1, dada) == 0.0);
    }
  }
}

BOOST_AUTO_TEST_CASE(log_softmax) {
  CpuOps ops;
  const int64_t N = B * L;
  std::vector<double> x = random_vec(N * V, 19, -3.0, 3.0), R = random_vec(N * V, 20), y(N * V), dx(N * V, 1.0);
  Tensor x_t = tv(x, {B, L, V}), y_t = tv(y, {B, L, V}), R_t = tv(R, {B, L, V}), dx_t = tv(dx, {B, L, V});
  auto loss = [&] {
    ops.log_softmax(y_t, x_t);
    return dot(y, R);
  };
  loss();
  ops.log_softmax_backward(dx_t, R_t, y_t);
  check_gradient("dlogits", x, dx, loss);
}

// dlogits is the gradient of grad_scale * sum_n losses[n].
BOOST_AUTO_TEST_CASE(cross_entropy) {
  CpuOps ops;
  const int64_t N = B * L;
  const double grad_scale = 0.37;
  std::vector<double> x = random_vec(N * V, 21, -3.0, 3.0), losses(N), dx(N * V, 1.0);
  std::vector<int32_t> targets(N);
  for (int64_t n = 0; n < N; ++n) targets[n] = (int32_t)((n * 3 + 1) % V);
  Tensor x_t = tv(x, {N, V}), losses_t = tv(losses, {N}), dx_t = tv(dx, {N, V}), targets_t = tv(targets, {N});
  Tensor no_grad;
  auto loss = [&] {
    ops.cross_entropy(losses_t, no_grad, x_t, targets_t, grad_scale);
    double total = 0;
    for (double l : losses) total += grad_scale * l;
    return total;
  };
  ops.cross_entropy(losses_t, dx_t, x_t, targets_t, grad_scale);
  check_gradient("dlogits", x, dx, loss);
}

// The three input embeddings; only the table is differentiated (ids, soft-input logits and bag weights are
// data). dtable accumulates.
BOOST_AUTO_TEST_CASE(embeddings) {
  CpuOps ops;
  const int64_t N = B * L, K = 3;
  std::vector<double> table = random_vec(V * D, 22), R = random_vec(N * D, 23), out(N * D);
  Tensor table_t = tv(table, {V, D}), out_t = tv(out, {B, L, D}), R_t = tv(R, {B, L, D});
  std::vector<int32_t> ids(N), bag_ids(N * K);
  for (int64_t n = 0; n < N; ++n) ids[n] = (int32_t)((n * 5 + 2) % V);  // repeats ids: the scatter must add
  for (int64_t i = 0; i < N * K; ++i) bag_ids[i] = (int32_t)((i * 4 + 1) % V);
  std::vector<double> logits = random_vec(N * V, 24, -2.0, 2.0), probs(N * V), weights = random_vec(N * K, 25);
  Tensor ids_t = tv(ids, {B, L}), bag_ids_t = tv(bag_ids, {B, L, K}), weights_t = tv(weights, {B, L, K});
  Tensor logits_t = tv(logits, {B, L, V}), probs_t = tv(probs, {B, L, V});

  for (const char* kind : {"ids", "soft", "bag"}) {
    BOOST_TEST_CONTEXT(kind) {
      const std::string k = kind;
      auto loss = [&] {
        if (k == "ids") ops.embed_ids(out_t, ids_t, table_t);
        if (k == "soft") ops.embed_soft(out_t, probs_t, logits_t, table_t);
        if (k == "bag") ops.embed_bag(out_t, bag_ids_t, weights_t, table_t);
        return dot(out, R);
      };
      auto backward = [&](Tensor& dtable_t) {
        if (k == "ids") ops.embed_ids_backward(dtable_t, ids_t, R_t);
        if (k == "soft") ops.embed_soft_backward(dtable_t, probs_t, R_t);
        if (k == "bag") ops.embed_bag_backward(dtable_t, bag_ids_t, weights_t, R_t);
      };
      loss();
      std::vector<double> dtable(V * D, 0.0);
      Tensor dtable_t = tv(dtable, {V, D});
      backward(dtable_t);
      check_gradient("dtable", table, dtable, loss);
      const std::vector<double> once = dtable;
      backward(dtable_t);
      check_doubled("dtable", once, dtable);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
