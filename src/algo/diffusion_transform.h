// The Diffusion Transformation operator T of DUO (docs/transform.md §2), evaluated by quadrature in float64.
//
// A Gaussian diffusion on one-hot vectors, w = α̃·e_x + σ̃·ε, discretised by argmax, is exactly a uniform-state
// discrete diffusion whose signal level is
//     α = T(γ) = (V·P − 1)/(V − 1),   P(μ) = ∫ φ(z−μ) Φ(z)^{V−1} dz,   μ = α̃/σ̃ = e^{−γ/2},
// where P is the probability that the clean coordinate (a N(μ,1) variable) beats V−1 independent N(0,1) ones.
// Its derivative, integrated by parts so the integrand is positive (no cancellation, full relative precision
// even where dP/dμ ~ 1e-12):
//     dP/dμ = ∫ φ(z−μ)·(V−1)·φ(z)·Φ(z)^{V−2} dz,     dα/dγ = V/(V−1) · (−μ/2) · dP/dμ.
//
// Why it is fast: both integrands are negligible outside a window of a few units. Above, φ(z−μ) dies beyond
// μ+9 (tail mass < 1e-18); below, Φ(z)^{V−1} = exp((V−1)·log Φ(z)) collapses doubly-exponentially under a point
// z_low that depends only on V (≈ 3.0 for V = 50258, ≈ −3.6 for V = 8), and φ(z−μ) dies below μ−9. So each
// evaluation integrates [max(z_low, μ−9), μ+9] with composite Gauss–Legendre panels: 400–700 integrand calls,
// ~10 µs.
#pragma once
#include <cstdint>
#include <vector>

namespace duo {

// T and its derivatives at one point.
struct TransformPoint {
  double gamma = 0;          // γ: negative log-SNR of the Gaussian diffusion
  double mu = 0;             // μ = e^{−γ/2}, the clean coordinate's mean in units of σ̃
  double prob_clean = 0;     // P(μ) = Pr[argmax w = x]
  double dprob_dmu = 0;      // dP/dμ
  double alpha = 0;          // α = T(γ) = (V·P − 1)/(V − 1)
  double dalpha_dgamma = 0;  // dα/dγ (≤ 0)
};

// How finely the window is cut: panels of at most panel_width, each with an order-point Gauss–Legendre rule.
// The defaults are converged to ~1e-16 (the self-check in duo-integral compares them with a rule twice as fine).
struct QuadratureRule {
  double panel_width = 0.5;
  int order = 20;
};

class DiffusionTransform {
 public:
  // vocab_size V ≥ 2 (T divides by V−1); throws duo::Error otherwise.
  explicit DiffusionTransform(int64_t vocab_size, QuadratureRule rule = {});

  int64_t vocab_size() const { return vocab_; }
  const QuadratureRule& rule() const { return rule_; }
  // Below this z, Φ(z)^{V−1} < e^{−60}: the lower end of every integration window.
  double z_low() const { return z_low_; }

  TransformPoint at_gamma(double gamma) const;
  // The same with μ given directly (γ = −2·log μ; μ > 0).
  TransformPoint at_mu(double mu) const;

 private:
  int64_t vocab_;
  QuadratureRule rule_;
  double z_low_;
  std::vector<double> nodes_, weights_;  // Gauss–Legendre rule on [−1, 1]
};

}  // namespace duo
