// The vectorisable float exp and tanh of the CPU backend (backend/cpu/fast_math.h) against the exact functions
// over their whole working ranges.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include "backend/cpu/fast_math.h"

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

BOOST_AUTO_TEST_SUITE_END()
