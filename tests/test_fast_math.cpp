// The vectorisable float exp and tanh of the CPU backend (backend/cpu/fast_math.h) and the branch-free float64
// exp of the samplers (math/exp_f64.h) against the exact functions over their whole working ranges.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>
#include "backend/cpu/fast_math.h"
#include "core/philox.h"
#include "math/exp_f64.h"
#include "math/log_softmax_row.h"

BOOST_AUTO_TEST_SUITE(cpu_ops)

BOOST_AUTO_TEST_CASE(fast_exp_and_tanh_accuracy) {
  double exp_rel = 0, tanh_abs = 0;
  for (double x = -87.0; x <= 88.0; x += 0.00123) {
    const float f = (float)x;
    const double e = std::exp((double)f);
    exp_rel = std::fmax(exp_rel, std::fabs(duo::cpu::fast_exp(f) - e) / e);
  }
  for (double x = -20.0; x <= 20.0; x += 0.0001) {
    const float f = (float)x;
    tanh_abs = std::fmax(tanh_abs, std::fabs(duo::cpu::fast_tanh(f) - std::tanh((double)f)));
  }
  BOOST_TEST(exp_rel < 2.5e-7);
  BOOST_TEST(tanh_abs < 1.3e-7);
  BOOST_TEST(duo::cpu::fast_exp(-1000.0f) >= 0.0f);  // clamped, no garbage from the exponent bits
  BOOST_TEST(std::isfinite(duo::cpu::fast_exp(1000.0f)));
  BOOST_TEST(std::isnan(duo::cpu::fast_exp(std::nanf(""))));  // NaN is not clamped to exp(-87)
  BOOST_TEST(std::isnan(duo::cpu::fast_tanh(std::nanf(""))));
  BOOST_TEST(duo::cpu::fast_tanh(0.0f) == 0.0f);
  BOOST_TEST(duo::cpu::fast_tanh(50.0f) == 1.0f);
  BOOST_TEST(duo::cpu::fast_tanh(-50.0f) == -1.0f);
}

// Distance in units in the last place between two doubles of the same sign (0 when equal).
static int64_t ulps(double a, double b) {
  int64_t ia, ib;
  std::memcpy(&ia, &a, 8);
  std::memcpy(&ib, &b, 8);
  return ia > ib ? ia - ib : ib - ia;
}

BOOST_AUTO_TEST_CASE(exp_f64_within_one_ulp_of_std_exp) {
  // Uniform over the whole range where exp is finite and non-zero, plus a dense sweep of the range samplers use
  // (log-probabilities from -100 to 0), plus the subnormal results.
  const duo::Philox rng{5, 6};
  int64_t worst = 0;
  double worst_x = 0;
  auto check = [&](double x) {
    const int64_t u = ulps(duo::exp_f64(x), std::exp(x));
    if (u > worst) { worst = u; worst_x = x; }
  };
  for (uint64_t i = 0; i < 2000000; ++i) check(-745.0 + 1454.7 * rng.uniform_double(i));
  for (double x = -100.0; x <= 0.0; x += 1.37e-4) check(x);
  for (double x = -745.1; x < -708.0; x += 0.0123) check(x);
  BOOST_TEST(worst <= 1, "exp_f64 is " << worst << " ulp off at x = " << worst_x);
  const double inf = std::numeric_limits<double>::infinity();
  BOOST_TEST(duo::exp_f64(0.0) == 1.0);
  BOOST_TEST(duo::exp_f64(-inf) == 0.0);
  BOOST_TEST(duo::exp_f64(-800.0) == 0.0);
  BOOST_TEST(duo::exp_f64(inf) == inf);
  BOOST_TEST(duo::exp_f64(710.0) == inf);
  BOOST_TEST(duo::exp_f64(709.78) == std::exp(709.78));
  BOOST_TEST(std::isnan(duo::exp_f64(std::nan(""))));
}

// The samplers' log-softmax against float64 on rows of 50258 logits (and a short one): the float terms move the
// log-sum-exp by at most 2.5e-7 relative, so every entry is within that plus float's rounding of the exact value.
BOOST_AUTO_TEST_CASE(log_softmax_row_within_float_rounding) {
  for (int64_t V : {3, 17, 50258}) {
    for (double spread : {1.0, 30.0}) {
      std::vector<float> o((size_t)V);
      const duo::Philox rng{(uint64_t)V, 7};
      for (int64_t v = 0; v < V; ++v) o[(size_t)v] = (float)(spread * (2 * rng.uniform_double((uint64_t)v) - 1));
      double mx = -1e300, sum = 0;
      for (float x : o) mx = std::fmax(mx, (double)x);
      for (float x : o) sum += std::exp((double)x - mx);
      const double lse = mx + std::log(sum);
      std::vector<float> got = o;
      duo::log_softmax_row_inplace(got.data(), V);
      double worst = 0;
      for (int64_t v = 0; v < V; ++v) {
        const double exact = (double)o[(size_t)v] - lse;
        // float rounding of lse and of the difference (one ulp of each), plus the terms' 2.5e-7
        const double bound = 2.5e-7 + std::ldexp(1.0, -23) * (std::fabs(lse) + std::fabs(exact));
        worst = std::fmax(worst, std::fabs((double)got[(size_t)v] - exact) / bound);
      }
      BOOST_TEST(worst <= 1.0, "V = " << V << ", spread " << spread << ": " << worst << " of the bound");
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
