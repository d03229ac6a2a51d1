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

BOOST_AUTO_TEST_SUITE_END()
