// DUO base loss (docs/diffusion.md §5.2–§5.5): PyTorch fixtures (explicit-sum form), the test vectors (docs/test_vectors.md §5), finite
// differences, and the continuous-time limit of the discrete KL sum with the uniform posterior (docs/sampling.md §4).
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <vector>

#include "math/loss_duo.h"
#include "algo/schedule.h"
#include "loss_test_util.h"

using namespace duo;
using namespace duo::testing;

namespace {

// q(z_s = · | z_t = i, x̂) of docs/sampling.md §4 (exact for one-hot x̂ = e_x), for α_s > α_t.
std::vector<double> uniform_posterior(const std::vector<double>& xhat, int i, double a_t, double a_s) {
  const int V = (int)xhat.size();
  const double a_ts = a_t / a_s;
  std::vector<double> q(V);
  double den = V * a_t * xhat[i] + 1 - a_t;
  for (int j = 0; j < V; ++j)
    q[j] = ((j == i ? V * a_t * xhat[j] + (a_ts - a_t) : 0.0) + (a_s - a_t) * xhat[j] + (1 - a_ts) * (1 - a_s) / V) / den;
  return q;
}

double kl(const std::vector<double>& q, const std::vector<double>& p) {
  double s = 0;
  for (size_t j = 0; j < q.size(); ++j)
    if (q[j] > 0) s += q[j] * std::log(q[j] / p[j]);
  return s;
}

std::vector<double> softmax(const std::vector<double>& o) {
  double mx = o[0];
  for (double v : o) mx = std::max(mx, v);
  std::vector<double> p(o.size());
  double s = 0;
  for (size_t j = 0; j < o.size(); ++j) s += (p[j] = std::exp(o[j] - mx));
  for (double& v : p) v /= s;
  return p;
}

// KL(q(z_s | z_t, x) ‖ q(z_s | z_t, x̂)) for the step t → s = t − Δ.
double duo_step_kl(const Schedule& sch, const std::vector<double>& xhat, int x, int z, double t, double dt) {
  std::vector<double> onehot(xhat.size(), 0.0);
  onehot[x] = 1.0;
  double a_t = sch.alpha(t), a_s = sch.alpha(t - dt);
  return kl(uniform_posterior(onehot, z, a_t, a_s), uniform_posterior(xhat, z, a_t, a_s));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(losses)

BOOST_AUTO_TEST_CASE(duo_matches_pytorch_fixtures) {
  const auto& cases = loss_fixtures().at("duo");
  BOOST_TEST(cases.size() >= 8u);
  for (const auto& c : cases) {
    int V = c.at("V"), x = c.at("x"), z = c.at("z");
    double a = c.at("alpha"), da = c.at("dalpha");
    check_against_fixture(c, [&](auto* o, auto* d) { return duo_nelbo_row(o, V, x, z, a, da, d); },
                          str("duo x=", x, " z=", z, " alpha=", a));
  }
}

BOOST_AUTO_TEST_CASE(duo_spec_test_vectors) {
  // docs/test_vectors.md §5: V = 4, x̂ = (0.1, 0.2, 0.3, 0.4), log-linear, t = 0.4 ⇒ α = 0.6004, α' = −0.999.
  std::vector<double> o = {std::log(0.1), std::log(0.2), std::log(0.3), std::log(0.4)};
  struct Row { int x, z; double want; } rows[] = {
      {2, 2, 0.580881000336}, {2, 0, 2.035811073223}, {3, 3, 0.364713241176}, {0, 1, 4.053308779276}};
  for (const Row& r : rows) {
    double got = duo_nelbo_row(o.data(), 4, r.x, r.z, 0.6004, -0.999, (double*)nullptr);
    BOOST_TEST(close(got, r.want, 1e-11), "x=" << r.x << " z=" << r.z << " got " << got);
    float gotf = duo_nelbo_row(std::vector<float>(o.begin(), o.end()).data(), 4, r.x, r.z, 0.6004, -0.999, (float*)nullptr);
    BOOST_TEST(close(gotf, r.want, 1e-5), "fp32 x=" << r.x << " z=" << r.z << " got " << gotf);
  }
}

BOOST_AUTO_TEST_CASE(duo_gradient_finite_differences) {
  Schedule sch;
  int k = 0;
  for (double t : {0.002, 0.3, 0.7, 0.999})
    for (auto [x, z] : {std::pair{1, 1}, std::pair{1, 6}, std::pair{6, 0}}) {
      double a = sch.alpha(t), da = sch.dalpha(t);
      check_finite_differences(test_logits(9, ++k, 3.0),
                               [&](auto* o, auto* d) { return duo_nelbo_row(o, 9, x, z, a, da, d); },
                               str("duo t=", t, " x=", x, " z=", z));
    }
}

BOOST_AUTO_TEST_CASE(duo_both_evaluation_forms_agree_at_the_switch) {
  // The loss switches from the O(β²) form to the direct form at β = Vα/(1 − α) = 1; both are exact maths.
  const int V = 9;
  std::vector<double> o = test_logits(V, 3, 2.0);
  const double a_switch = 1.0 / (V + 1.0);  // β = 1
  for (auto [x, z] : {std::pair{4, 4}, std::pair{4, 2}}) {
    double lo = duo_nelbo_row(o.data(), V, x, z, a_switch * (1 - 1e-9), -1.0, (double*)nullptr);
    double hi = duo_nelbo_row(o.data(), V, x, z, a_switch * (1 + 1e-9), -1.0, (double*)nullptr);
    BOOST_TEST(close(lo, hi, 1e-7), "x=" << x << " z=" << z << " below " << lo << " above " << hi);
  }
}

BOOST_AUTO_TEST_CASE(duo_loss_is_nonnegative) {
  Schedule sch = Schedule::from_name("cosine");
  for (int k = 0; k < 60; ++k) {
    std::vector<double> o = test_logits(13, 100 + k, 4.0);
    double t = 0.001 + 0.998 * (k % 10) / 9.0;
    int x = k % 13, z = (k * 7) % 13;
    double l = duo_nelbo_row(o.data(), 13, x, z, sch.alpha(t), sch.dalpha(t), (double*)nullptr);
    BOOST_TEST(l >= 0.0, "k=" << k << " loss " << l);
  }
}

BOOST_AUTO_TEST_CASE(duo_is_the_limit_of_the_discrete_kl) {
  // Pointwise: KL(t → t−Δ)/Δ → ℓ(t) (Richardson with Δ and Δ/2 removes the O(Δ) term).
  const int V = 7;
  std::vector<double> o = test_logits(V, 7, 2.0), xhat = softmax(o);
  for (const char* name : {"log-linear", "cosine"}) {
    Schedule sch = Schedule::from_name(name);
    for (double t : {0.1, 0.45, 0.9})
      for (auto [x, z] : {std::pair{2, 2}, std::pair{2, 5}, std::pair{4, 0}}) {
        double l = duo_nelbo_row(o.data(), V, x, z, sch.alpha(t), sch.dalpha(t), (double*)nullptr);
        const double dt = 1e-3;
        double r1 = duo_step_kl(sch, xhat, x, z, t, dt) / dt, r2 = duo_step_kl(sch, xhat, x, z, t, dt / 2) / (dt / 2);
        double limit = 2 * r2 - r1;
        BOOST_TEST(close(limit, l, 1e-5), name << " t=" << t << " x=" << x << " z=" << z << " KL limit " << limit
                                                << " vs loss " << l);
      }
    // Summed: Σ_k KL over a grid of T = 20000 steps on [0.2, 0.8] → ∫ ℓ dt (midpoint rule).
    const int T = 20000;
    const double t0 = 0.2, t1 = 0.8, dt = (t1 - t0) / T;
    double sum_kl = 0, integral = 0;
    for (int k = 1; k <= T; ++k) {
      double t = t0 + k * dt;
      sum_kl += duo_step_kl(sch, xhat, 3, 1, t, dt);
      double tm = t - dt / 2;
      integral += dt * duo_nelbo_row(o.data(), V, 3, 1, sch.alpha(tm), sch.dalpha(tm), (double*)nullptr);
    }
    BOOST_TEST(close(sum_kl, integral, 1e-4), name << " Σ KL " << sum_kl << " vs ∫ loss " << integral);
  }
}

BOOST_AUTO_TEST_SUITE_END()
