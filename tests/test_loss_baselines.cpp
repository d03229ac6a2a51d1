// AR, MDLM (SUBS), SEDD absorb and D3PM absorb per-token losses (docs/diffusion.md §6–§10): PyTorch fixtures, the documented SEDD
// test vector (docs/test_vectors.md §8), finite differences, MDLM as the limit of its discrete KL sum (absorbing posterior docs/sampling.md §8),
// D3PM's L_vb as the KL of its normalised x0-parameterised posterior, and the docs/differences.md §2.1 reference bug.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <vector>

#include "math/loss_ar.h"
#include "math/loss_d3pm.h"
#include "math/loss_mdlm.h"
#include "math/loss_sedd.h"
#include "algo/schedule.h"
#include "loss_test_util.h"

using namespace duo;
using namespace duo::testing;

namespace {

std::vector<double> softmax(std::vector<double> o) {
  double mx = o[0];
  for (double v : o) mx = std::max(mx, v);
  double s = 0;
  for (double& v : o) s += (v = std::exp(v - mx));
  for (double& v : o) v /= s;
  return o;
}

double kl(const std::vector<double>& q, const std::vector<double>& p) {
  double s = 0;
  for (size_t j = 0; j < q.size(); ++j)
    if (q[j] > 0) s += q[j] * std::log(q[j] / p[j]);
  return s;
}

// q(z_s | z_t = m, x̂) of docs/sampling.md §8 for a masked position: (α_s − α_t)/(1 − α_t) x̂_v off the mask,
// (1 − α_s)/(1 − α_t) on it (x̂_m = 0 under SUBS).
std::vector<double> absorbing_posterior(const std::vector<double>& xhat, int m, double a_t, double a_s) {
  std::vector<double> q(xhat.size());
  for (size_t v = 0; v < q.size(); ++v) q[v] = (int)v == m ? (1 - a_s) / (1 - a_t) : (a_s - a_t) / (1 - a_t) * xhat[v];
  return q;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(losses)

BOOST_AUTO_TEST_CASE(baselines_match_pytorch_fixtures) {
  const auto& fx = loss_fixtures();
  for (const auto& c : fx.at("ar")) {
    int V = c.at("V"), m = c.at("mask_id"), x = c.at("x");
    check_against_fixture(c, [&](auto* o, auto* d) { return ar_loss_row(o, V, m, x, d); }, str("ar x=", x, " m=", m));
  }
  for (const char* algo : {"mdlm", "sedd"})
    for (const auto& c : fx.at(algo)) {
      int V = c.at("V"), m = c.at("mask_id"), x = c.at("x"), z = c.at("z");
      double a = c.at("alpha"), da = c.at("dalpha");
      bool mdlm = std::string(algo) == "mdlm";
      check_against_fixture(c, [&](auto* o, auto* d) {
        return mdlm ? mdlm_loss_row(o, V, m, x, z, a, da, d) : sedd_loss_row(o, V, m, x, z, a, da, d);
      }, str(algo, " x=", x, " z=", z, " t=", c.at("t").get<double>()));
    }
  int n_vb = 0, n_recon = 0;
  for (const auto& c : fx.at("d3pm")) {
    int V = c.at("V"), x = c.at("x");
    if (c.at("part") == "recon") {
      ++n_recon;
      check_against_fixture(c, [&](auto* o, auto* d) { return d3pm_recon_row(o, V, x, d); }, str("d3pm recon x=", x));
      continue;
    }
    ++n_vb;
    int m = c.at("mask_id"), z = c.at("z"), T = c.at("T");
    double a = c.at("alpha");
    bool bug = c.at("reference_bug");
    check_against_fixture(c, [&](auto* o, auto* d) { return d3pm_vb_row(o, V, m, x, z, a, T, bug, d); },
                          str("d3pm vb x=", x, " z=", z, " bug=", bug));
  }
  BOOST_TEST(n_vb >= 8);
  BOOST_TEST(n_recon >= 2);
}

BOOST_AUTO_TEST_CASE(sedd_spec_test_vector) {
  // docs/test_vectors.md §8: σ̄ = 0.7, non-mask log-scores (−0.3, 0.1, 0.4, −1.0), x = 2 → bracket 2.311212171109.
  const double ls[5] = {-0.3, 0.1, 0.4, -1.0, 0.0};  // mask id 4, its log-score already 0
  BOOST_TEST(close(sedd_score_entropy(ls, 5, 4, 2, 0.7), 2.311212171109, 1e-11));
  // The same through the full loss: logits o = log r + log(e^σ̄ − 1) + log(V − 1), α = e^−σ̄, weight dσ̄ = −α'/α.
  const double alpha = std::exp(-0.7), dalpha = -0.999;
  double o[5];
  for (int y = 0; y < 5; ++y) o[y] = ls[y] + std::log(std::exp(0.7) - 1.0) + std::log(4.0);
  o[4] = 123.0;  // the mask logit is overwritten by the carry of log r_{z_t} = 0: its value must not matter
  double l = sedd_loss_row(o, 5, 4, 2, 4, alpha, dalpha, (double*)nullptr);
  BOOST_TEST(close(l, -dalpha / alpha * 2.311212171109, 1e-11), "loss " << l);
}

BOOST_AUTO_TEST_CASE(baseline_gradients_finite_differences) {
  Schedule sch;
  const int V = 10, m = 9;
  int k = 0;
  for (int x : {0, 4, 7}) {
    check_finite_differences(test_logits(V, ++k), [&](auto* o, auto* d) { return ar_loss_row(o, V, m, x, d); },
                             str("ar x=", x));
    check_finite_differences(test_logits(V, ++k), [&](auto* o, auto* d) { return d3pm_recon_row(o, V, x, d); },
                             str("d3pm recon x=", x));
    for (double t : {0.01, 0.5, 0.97}) {
      double a = sch.alpha(t), da = sch.dalpha(t), td = discrete_time(t, 1000), ad = sch.alpha(td);
      check_finite_differences(test_logits(V, ++k), [&](auto* o, auto* d) { return mdlm_loss_row(o, V, m, x, m, a, da, d); },
                               str("mdlm x=", x, " t=", t));
      check_finite_differences(test_logits(V, ++k), [&](auto* o, auto* d) { return sedd_loss_row(o, V, m, x, m, a, da, d); },
                               str("sedd x=", x, " t=", t));
      for (bool bug : {false, true})
        check_finite_differences(test_logits(V, ++k, 3.0),
                                 [&](auto* o, auto* d) { return d3pm_vb_row(o, V, m, x, m, ad, 1000, bug, d); },
                                 str("d3pm vb x=", x, " t=", td, " bug=", bug));
    }
  }
}

BOOST_AUTO_TEST_CASE(unmasked_positions_have_zero_loss_and_gradient) {
  const int V = 8, m = 3;
  std::vector<double> o = test_logits(V, 42), d(V, 7.0);
  BOOST_TEST(mdlm_loss_row(o.data(), V, m, 5, 5, 0.4, -0.999, d.data()) == 0.0);
  for (double g : d) BOOST_TEST(g == 0.0);
  d.assign(V, 7.0);
  BOOST_TEST(sedd_loss_row(o.data(), V, m, 5, 5, 0.4, -0.999, d.data()) == 0.0);
  for (double g : d) BOOST_TEST(g == 0.0);
  d.assign(V, 7.0);
  BOOST_TEST(d3pm_vb_row(o.data(), V, m, 5, 5, 0.4, 1000, false, d.data()) == 0.0);
  for (double g : d) BOOST_TEST(g == 0.0);
  // AR: the mask logit is overwritten, so its gradient is exactly 0 and its value does not matter.
  d.assign(V, 7.0);
  double l1 = ar_loss_row(o.data(), V, m, 1, d.data());
  BOOST_TEST(d[m] == 0.0);
  o[m] = 50.0;
  BOOST_TEST(ar_loss_row(o.data(), V, m, 1, (double*)nullptr) == l1);
}

BOOST_AUTO_TEST_CASE(mdlm_is_the_limit_of_the_discrete_kl) {
  // Masked position: KL(q(z_s|z_t=m, x) ‖ q(z_s|z_t=m, x̂))/Δ → ℓ, x̂ the SUBS output (mask probability 0).
  const int V = 9, m = 8;
  std::vector<double> o = test_logits(V, 5, 2.0);
  std::vector<double> sub = o;
  sub[m] += kNegInfinity;
  std::vector<double> xhat = softmax(sub);
  for (const char* name : {"log-linear", "cosine"}) {
    Schedule sch = Schedule::from_name(name);
    for (int x : {0, 6}) {
      std::vector<double> onehot(V, 0.0);
      onehot[x] = 1.0;
      auto step_kl = [&](double t, double dt) {
        double a_t = sch.alpha(t), a_s = sch.alpha(t - dt);
        return kl(absorbing_posterior(onehot, m, a_t, a_s), absorbing_posterior(xhat, m, a_t, a_s));
      };
      for (double t : {0.05, 0.5, 0.95}) {
        double l = mdlm_loss_row(o.data(), V, m, x, m, sch.alpha(t), sch.dalpha(t), (double*)nullptr);
        const double dt = 1e-3;
        double limit = 2 * step_kl(t, dt / 2) / (dt / 2) - step_kl(t, dt) / dt;  // Richardson
        BOOST_TEST(close(limit, l, 1e-5), name << " x=" << x << " t=" << t << " KL limit " << limit << " loss " << l);
      }
      const int T = 20000;  // Σ over a fine grid on [0.1, 0.9] → ∫ ℓ dt
      const double t0 = 0.1, dt = 0.8 / T;
      double sum_kl = 0, integral = 0;
      for (int k = 1; k <= T; ++k) {
        double t = t0 + k * dt, tm = t - dt / 2;
        sum_kl += step_kl(t, dt);
        integral += dt * mdlm_loss_row(o.data(), V, m, x, m, sch.alpha(tm), sch.dalpha(tm), (double*)nullptr);
      }
      BOOST_TEST(close(sum_kl, integral, 1e-4), name << " Σ KL " << sum_kl << " vs ∫ loss " << integral);
    }
  }
  // log-linear: the weight −α'/(1 − α) is exactly 1/t.
  Schedule ll;
  double ce = mdlm_loss_row(o.data(), V, m, 2, m, ll.alpha(1.0), ll.dalpha(1.0), (double*)nullptr);
  BOOST_TEST(close(mdlm_loss_row(o.data(), V, m, 2, m, ll.alpha(0.25), ll.dalpha(0.25), (double*)nullptr), 4 * ce, 1e-13));
}

BOOST_AUTO_TEST_CASE(d3pm_vb_is_the_kl_of_its_posterior) {
  // Intended maths: L_vb = KL(q(z_s|z_t=m, x) ‖ p(z_s|z_t=m)) with D3PM's normalised x0-parameterised posterior
  //   p(z_s) ∝ Σ_u q(z_t|z_s) q(z_s|x0=u) x̂_u:  p(v) ∝ Δ x̂_v (v ≠ m),  p(m) ∝ m_s + α_s x̂_m.
  const int V = 7, m = 6, T = 1000;
  std::vector<double> o = test_logits(V, 11, 2.0), xhat = softmax(o);
  Schedule sch;
  for (double t0 : {0.001, 0.3, 0.999}) {
    double t = discrete_time(t0, T), a = sch.alpha(t), m_t = 1 - a, dt = 1.0 / T, m_s = m_t - dt;
    for (int x : {0, 3}) {
      std::vector<double> q(V, 0.0), p(V);
      q[x] = dt / m_t;
      q[m] = m_s / m_t;
      double Z = 0;
      for (int v = 0; v < V; ++v) Z += (p[v] = v == m ? m_s + (1 - m_s) * xhat[m] : dt * xhat[v]);
      for (double& v : p) v /= Z;
      double want = T * kl(q, p);
      double got = d3pm_vb_row(o.data(), V, m, x, m, a, T, false, (double*)nullptr);
      BOOST_TEST(close(got, want, 1e-9), "t=" << t << " x=" << x << " L_vb·T " << got << " vs KL·T " << want);
      // The reference's last bracket is log(1 + x̂_m) instead (docs/differences.md §2.1); it differs whenever x̂_m > 0.
      double bug = d3pm_vb_row(o.data(), V, m, x, m, a, T, true, (double*)nullptr);
      double w2 = 1 - dt / m_t;
      double shift = w2 * (std::log1p((1 - m_s) / m_s * xhat[m]) - std::log1p(xhat[m]));
      BOOST_TEST(close(bug, got + T * shift, 1e-9), "t=" << t << " bug " << bug << " intended " << got);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
