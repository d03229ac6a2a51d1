// Helpers of the CPU backend tests: seeded random vectors, tensor views of host vectors, norm-based errors,
// the central finite-difference gradient check, and the float32-vs-float64 forward comparison.
#pragma once
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>
#include "core/philox.h"
#include "core/tensor.h"

namespace duo::test {

// n values uniform in [lo, hi), replayable from the seed.
inline std::vector<double> random_vec(size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Philox rng{seed, 0};
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * rng.uniform_double(i);
  return v;
}

// A contiguous tensor view of a host vector (float, double or int32). The vector must outlive the view and
// must not be resized, so tests can perturb its elements in place and re-run an op through the same view.
template <class T> Tensor tv(std::vector<T>& v, std::initializer_list<int64_t> dims) {
  Tensor t(v.data(), dtype_of<T>(), dims);
  BOOST_REQUIRE(t.numel() == (int64_t)v.size());
  return t;
}

template <class T> std::vector<T> cast_vec(const std::vector<double>& v) { return std::vector<T>(v.begin(), v.end()); }
template <class T> std::vector<double> to_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// ||a - b|| / max(||a||, ||b||); 0 when both are zero.
inline double rel_err(const std::vector<double>& a, const std::vector<double>& b) {
  BOOST_REQUIRE(a.size() == b.size());
  double diff = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  double scale = std::sqrt(std::max(na, nb));
  return scale == 0 ? 0 : std::sqrt(diff) / scale;
}

inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  BOOST_REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

// Compares `analytic` with central differences (loss(x + h e_i) - loss(x - h e_i)) / 2h for every element i
// of x; x is perturbed in place and restored. loss() re-runs the forward through views of x.
inline void check_gradient(const std::string& what, std::vector<double>& x, const std::vector<double>& analytic,
                           const std::function<double()>& loss, double h = 1e-6, double tol = 1e-6) {
  BOOST_REQUIRE(x.size() == analytic.size());
  std::vector<double> numeric(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = loss();
    x[i] = saved - h;
    const double down = loss();
    x[i] = saved;
    numeric[i] = (up - down) / (2 * h);
  }
  loss();  // leave every output as computed at the unperturbed x
  const double err = rel_err(analytic, numeric);
  BOOST_TEST_CONTEXT("gradient " << what) {
    BOOST_TEST(err <= tol);
    double norm = 0;
    for (double g : numeric) norm += g * g;
    BOOST_TEST(norm > 0.0, "the numeric gradient is zero: the check would prove nothing");
  }
}

// "+=" gradients: after a second backward call, every element must be twice what the first call gave.
inline void check_doubled(const std::string& what, const std::vector<double>& once, const std::vector<double>& twice) {
  std::vector<double> expect(once.size());
  for (size_t i = 0; i < once.size(); ++i) expect[i] = 2 * once[i];
  BOOST_TEST_CONTEXT("accumulation of " << what) { BOOST_TEST(rel_err(expect, twice) <= 1e-14); }
}

// Runs a forward case in float32 and float64 (run is a lambda template returning the outputs as doubles)
// and checks that they agree.
template <class Run> void compare_precisions(const std::string& what, Run run, double tol = 1e-5) {
  std::vector<double> lo = run.template operator()<float>();
  std::vector<double> hi = run.template operator()<double>();
  BOOST_TEST_CONTEXT("float32 vs float64: " << what) { BOOST_TEST(rel_err(lo, hi) <= tol); }
}

}  // namespace duo::test
