#include "algo/diffusion_transform.h"
#include <algorithm>
#include <cmath>
#include <numbers>
#include "core/error.h"
#include "core/gaussian.h"

namespace duo {
namespace {

// Beyond ±kTailSigmas from μ the Gaussian factor φ(z−μ) carries < 1e-18 of mass.
constexpr double kTailSigmas = 9.0;
// Where (V−1)·log Φ(z) drops under this, Φ(z)^{V−1} < 1e-26 and the window starts.
constexpr double kLogNegligible = -60.0;

// Gauss–Legendre nodes and weights on [−1, 1]: Newton's method on the Legendre polynomial P_n from the
// classical initial guesses cos(π(i−¼)/(n+½)); the three-term recurrence gives P_n and P_n'.
void gauss_legendre(int n, std::vector<double>& nodes, std::vector<double>& weights) {
  nodes.assign(n, 0.0);
  weights.assign(n, 0.0);
  for (int i = 0; i < n; ++i) {
    double x = std::cos(std::numbers::pi * (i + 0.75) / (n + 0.5));
    double dp = 1.0;
    for (int iter = 0; iter < 100; ++iter) {
      double p0 = 1.0, p1 = x;
      for (int k = 2; k <= n; ++k) {
        const double pk = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
        p0 = p1;
        p1 = pk;
      }
      dp = n * (x * p1 - p0) / (x * x - 1.0);
      const double step = p1 / dp;
      x -= step;
      if (std::abs(step) < 1e-16) break;
    }
    nodes[i] = x;
    weights[i] = 2.0 / ((1.0 - x * x) * dp * dp);
  }
}

// Solves (V−1)·log Φ(z) = kLogNegligible by bisection (log Φ is increasing).
double window_low_end(double v_minus_1) {
  double lo = -60.0, hi = 60.0;
  for (int iter = 0; iter < 200 && hi - lo > 1e-12; ++iter) {
    const double mid = 0.5 * (lo + hi);
    if (v_minus_1 * log_normal_cdf(mid) < kLogNegligible) lo = mid; else hi = mid;
  }
  return lo;
}

}  // namespace

DiffusionTransform::DiffusionTransform(int64_t vocab_size, QuadratureRule rule) : vocab_(vocab_size), rule_(rule) {
  DUO_CHECK(vocab_size >= 2, "diffusion transform", str("vocabulary size ", vocab_size, " is below 2"),
            "T(γ) = (V·P − 1)/(V − 1) needs V ≥ 2; pass the model's vocabulary size");
  DUO_CHECK(rule.panel_width > 0 && rule.order >= 2 && rule.order <= 200, "diffusion transform",
            str("bad quadrature rule (panel width ", rule.panel_width, ", order ", rule.order, ")"),
            "use a positive panel width and an order between 2 and 200");
  gauss_legendre(rule.order, nodes_, weights_);
  z_low_ = window_low_end(static_cast<double>(vocab_size - 1));
}

TransformPoint DiffusionTransform::at_gamma(double gamma) const {
  TransformPoint p = at_mu(std::exp(-0.5 * gamma));
  p.gamma = gamma;
  return p;
}

TransformPoint DiffusionTransform::at_mu(double mu) const {
  DUO_CHECK(mu > 0 && std::isfinite(mu), "diffusion transform", str("μ = ", mu, " is not a positive number"),
            "μ = e^{−γ/2}: pass a finite γ");
  const double V = static_cast<double>(vocab_);
  const double a = std::max(z_low_, mu - kTailSigmas);
  const double b = mu + kTailSigmas;

  double prob = 0, dprob = 0;
  if (b > a) {
    const int panels = std::max(1, static_cast<int>(std::ceil((b - a) / rule_.panel_width)));
    const double half = 0.5 * (b - a) / panels;
    for (int j = 0; j < panels; ++j) {
      const double centre = a + (2 * j + 1) * half;
      for (size_t i = 0; i < nodes_.size(); ++i) {
        const double z = centre + half * nodes_[i];
        const double log_cdf = log_normal_cdf(z);
        const double log_gauss = -0.5 * (z - mu) * (z - mu) - kLogSqrt2Pi;  // log φ(z−μ)
        // φ(z−μ)·Φ(z)^{V−1}
        prob += weights_[i] * std::exp(log_gauss + (V - 1) * log_cdf);
        // φ(z−μ)·(V−1)·φ(z)·Φ(z)^{V−2}
        dprob += weights_[i] * (V - 1) * std::exp(log_gauss - 0.5 * z * z - kLogSqrt2Pi + (V - 2) * log_cdf);
      }
    }
    prob *= half;
    dprob *= half;
  }

  TransformPoint p;
  p.gamma = -2.0 * std::log(mu);
  p.mu = mu;
  p.prob_clean = prob;
  p.dprob_dmu = dprob;
  p.alpha = (V * prob - 1.0) / (V - 1.0);
  p.dalpha_dgamma = V / (V - 1.0) * (-0.5 * mu) * dprob;
  return p;
}

}  // namespace duo
