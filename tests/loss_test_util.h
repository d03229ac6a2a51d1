// Helpers for the `losses` suite: the PyTorch fixture file, relative comparisons, finite differences.
#pragma once
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io_test_util.h"

namespace duo::testing {

// tests/fixtures/losses.json, written by tools/reference/make_loss_fixtures.py.
inline const nlohmann::json& loss_fixtures() {
  static const nlohmann::json j = read_json_fixture("losses.json", "tools/reference/make_loss_fixtures.py");
  return j;
}

// |a − b| ≤ rel · max(|b|, floor): relative, with an absolute floor for values near zero.
inline bool close(double a, double b, double rel, double floor = 1.0) {
  return std::fabs(a - b) <= rel * std::max(std::fabs(b), floor);
}

// Checks one per-token loss function (double and float instantiations) against a fixture case.
// f(logits, d) must return the loss and write the gradient into d.
template <class F>
void check_against_fixture(const nlohmann::json& c, F&& f, const std::string& what) {
  std::vector<double> o = c.at("logits").get<std::vector<double>>();
  std::vector<double> want_g = c.at("grad").get<std::vector<double>>();
  double want = c.at("loss").get<double>();
  // Relative to the row's scale: a gradient entry that is ~0 next to O(100) ones is judged on the row scale.
  double gscale = 1.0;
  for (double g : want_g) gscale = std::max(gscale, std::fabs(g));

  std::vector<double> d(o.size(), NAN);
  double got = f(o.data(), d.data());
  BOOST_TEST(close(got, want, 1e-10), what << " fp64 loss " << got << " vs " << want);
  for (size_t j = 0; j < o.size(); ++j)
    BOOST_TEST(close(d[j], want_g[j], 1e-10, gscale), what << " fp64 grad[" << j << "] " << d[j] << " vs " << want_g[j]);

  std::vector<float> of(o.begin(), o.end()), df(o.size(), NAN);
  float gotf = f(of.data(), df.data());
  BOOST_TEST(close(gotf, want, 1e-5), what << " fp32 loss " << gotf << " vs " << want);
  for (size_t j = 0; j < o.size(); ++j)
    BOOST_TEST(close(df[j], want_g[j], 1e-5, gscale), what << " fp32 grad[" << j << "] " << df[j] << " vs " << want_g[j]);

  double no_grad = f(o.data(), static_cast<double*>(nullptr));  // the loss alone must not depend on d
  BOOST_TEST(no_grad == got, what << " loss without gradient differs");
}

// Five-point central finite differences (error O(h⁴)) of f(logits, nullptr) in double vs the analytic gradient.
template <class F>
void check_finite_differences(std::vector<double> o, F&& f, const std::string& what) {
  std::vector<double> d(o.size());
  const double f0 = f(o.data(), d.data());
  auto at = [&](size_t j, double v) {
    double keep = o[j];
    o[j] = v;
    double r = f(o.data(), static_cast<double*>(nullptr));
    o[j] = keep;
    return r;
  };
  for (size_t j = 0; j < o.size(); ++j) {
    const double h = 1e-3, x = o[j];
    double fd = (-at(j, x + 2 * h) + 8 * at(j, x + h) - 8 * at(j, x - h) + at(j, x - 2 * h)) / (12 * h);
    // Allowance: truncation (relative 1e-7) plus the rounding of f itself, amplified by 1/h.
    double tol = 1e-7 * (1 + std::fabs(d[j])) + 1e-14 * std::fabs(f0) / h;
    BOOST_TEST(std::fabs(fd - d[j]) <= tol,
               what << " d/do[" << j << "] analytic " << d[j] << " vs finite difference " << fd);
  }
}

// A deterministic pseudo-random logits row (no test depends on a global RNG).
inline std::vector<double> test_logits(int V, unsigned seed, double scale = 2.0) {
  std::vector<double> o(V);
  unsigned s = seed * 2654435761u + 12345u;
  for (int j = 0; j < V; ++j) {
    s = s * 1664525u + 1013904223u;
    o[j] = scale * ((s >> 8) / double(1u << 24) * 2.0 - 1.0);
  }
  return o;
}

}  // namespace duo::testing
