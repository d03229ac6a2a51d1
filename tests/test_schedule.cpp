// Noise schedules (values, derivatives vs finite differences, the cosine reference bug), D3PM discrete time,
// stratified time sampling (docs/test_vectors.md §1, slicing over ranks and micro-steps, Philox determinism).
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <vector>

#include "algo/schedule.h"
#include "core/error.h"

using namespace duo;

BOOST_AUTO_TEST_SUITE(schedule)

BOOST_AUTO_TEST_CASE(loglinear_values) {
  Schedule s = Schedule::from_name("log-linear");
  BOOST_TEST(s.alpha(0.0) == 1.0);
  BOOST_TEST(std::fabs(s.alpha(1.0) - 1e-3) < 1e-15);
  BOOST_TEST(std::fabs(s.alpha(0.4) - 0.6004) < 1e-15);  // docs/test_vectors.md §5
  BOOST_TEST(s.dalpha(0.4) == -0.999);
  BOOST_TEST(std::fabs(s.sigma(0.4) + std::log(0.6004)) < 1e-15);
  BOOST_TEST(std::fabs(s.t_for_alpha(0.25) - 0.75) < 1e-15);  // ignores ε, like the reference
}

BOOST_AUTO_TEST_CASE(derivatives_match_finite_differences) {
  for (const char* name : {"log-linear", "cosine"}) {
    Schedule s = Schedule::from_name(name);
    for (double t : {0.01, 0.2, 0.5, 0.77, 0.99}) {
      const double h = 1e-5;
      double fd = (s.alpha(t + h) - s.alpha(t - h)) / (2 * h);
      BOOST_TEST(std::fabs(fd - s.dalpha(t)) < 1e-9, name << " t=" << t << " fd=" << fd << " dalpha=" << s.dalpha(t));
      // dσ/dt = −α'/α (SEDD's dσ̄); σ varies fast near t = 1 for cosine: step on the time scale α/|α'|.
      const double hs = 1e-4 * s.alpha(t) / std::fabs(s.dalpha(t));
      double fd_sigma = (s.sigma(t + hs) - s.sigma(t - hs)) / (2 * hs);
      BOOST_TEST(std::fabs(fd_sigma + s.dalpha(t) / s.alpha(t)) < 1e-7 * (1 + std::fabs(fd_sigma)));
      BOOST_TEST(s.dalpha(t) < 0.0);
    }
  }
}

BOOST_AUTO_TEST_CASE(cosine_values_and_reference_bug) {
  Schedule good = Schedule::from_name("cosine");
  Schedule bug = Schedule::from_name("cosine", 1e-3, true);
  BOOST_TEST(std::fabs(good.alpha(0.0) - 1.0) < 1e-15);
  BOOST_TEST(std::fabs(good.alpha(1.0) - (1.0 - std::cos(M_PI / 2 * 1e-3))) < 1e-15);
  BOOST_TEST(good.alpha(0.3) == bug.alpha(0.3));  // only the derivative differs
  for (double t : {0.1, 0.6, 0.95}) {
    BOOST_TEST(std::fabs(bug.dalpha(t) * (1.0 - 1e-3) - good.dalpha(t)) < 1e-15);
    BOOST_TEST(std::fabs(bug.dalpha(t) + M_PI / 2 * std::sin(M_PI / 2 * (1.0 - 0.999 * t))) < 1e-15);
  }
  Schedule exact = Schedule::from_name("cosine", 0.0);  // the inverse is exact when ε = 0
  for (double t : {0.1, 0.5, 0.9}) BOOST_TEST(std::fabs(exact.t_for_alpha(exact.alpha(t)) - t) < 1e-12);
}

BOOST_AUTO_TEST_CASE(unknown_schedule_is_an_error) {
  BOOST_CHECK_THROW(Schedule::from_name("linear"), duo::Error);
  BOOST_CHECK_THROW(Schedule::from_name("cosine", 1.5), duo::Error);
}

BOOST_AUTO_TEST_CASE(d3pm_discrete_time) {
  BOOST_TEST(std::fabs(discrete_time(1e-3, 1000) - 0.002) < 1e-15);  // smallest value is 2/T (docs/diffusion.md §4)
  BOOST_TEST(std::fabs(discrete_time(0.5, 1000) - 0.501) < 1e-15);
  BOOST_TEST(std::fabs(discrete_time(0.9999, 1000) - 1.0) < 1e-15);
  BOOST_TEST(std::fabs(discrete_time(0.0374, 10) - 0.1) < 1e-15);
  BOOST_CHECK_THROW(discrete_time(0.5, 0), duo::Error);
}

BOOST_AUTO_TEST_CASE(stratified_times_test_vector) {
  // docs/diffusion.md §4: n = 4, u = (0.1, 0.5, 0.9, 0.3) → t = (0.025975, 0.375625, 0.725275, 0.825175).
  TimeSampler ts;
  std::vector<double> t = ts.from_uniforms({0.1, 0.5, 0.9, 0.3}, 0, 4);
  const double want[4] = {0.025975, 0.375625, 0.725275, 0.825175};
  for (int i = 0; i < 4; ++i) BOOST_TEST(std::fabs(t[i] - want[i]) < 1e-15);
  std::vector<double> tail = ts.from_uniforms({0.1, 0.5, 0.9, 0.3}, 2, 2);  // a slice keeps its strata
  BOOST_TEST(tail[0] == t[2]);
  BOOST_TEST(tail[1] == t[3]);
  TimeSampler plain{false, 1e-3};
  BOOST_TEST(std::fabs(plain.from_uniforms({0.1, 0.5}, 0, 2)[1] - (0.999 * 0.5 + 1e-3)) < 1e-15);
}

BOOST_AUTO_TEST_CASE(philox_times_are_stratified_and_sliceable) {
  TimeSampler ts;
  Philox rng{77, 5};
  const int n = 24;
  std::vector<double> all = ts.sample(rng, n, 0, n);
  for (int i = 0; i < n; ++i) {  // one time in each stratum [ε + (1−ε) i/n, ε + (1−ε)(i+1)/n)
    double lo = 1e-3 + 0.999 * i / n, hi = 1e-3 + 0.999 * (i + 1) / n;
    BOOST_TEST((all[i] >= lo && all[i] < hi), "i=" << i << " t=" << all[i]);
  }
  // 2 ranks × 3 micro-steps: the slices tile the global batch in order and draw the same numbers.
  std::vector<double> tiled;
  for (int rank = 0; rank < 2; ++rank)
    for (int micro = 0; micro < 3; ++micro) {
      BatchSlice sl = batch_slice(n, 2, rank, 3, micro);
      BOOST_TEST(sl.count == 4);
      std::vector<double> part = ts.sample(rng, n, sl.offset, sl.count);
      tiled.insert(tiled.end(), part.begin(), part.end());
    }
  BOOST_TEST(tiled == all);
  BOOST_TEST(ts.sample(Philox{77, 5}, n, 0, n) == all);  // reproducible
  BOOST_TEST(ts.sample(Philox{78, 5}, n, 0, n) != all);
  BOOST_CHECK_THROW(batch_slice(25, 2, 0, 3, 0), duo::Error);
  BOOST_CHECK_THROW(batch_slice(24, 2, 2, 3, 0), duo::Error);
  BOOST_CHECK_THROW(ts.sample(rng, n, 20, 5), duo::Error);
}

BOOST_AUTO_TEST_SUITE_END()
