// Per-token sampling math of uniform-state diffusion (DUO), docs/diffusion.md §2, docs/sampling.md §4 and §7. One definition, compiled for
// host and device (DUO_HD), templated on the probability type T (double = the reference's `use_float64`).
//
// Notation: V categories; z_t = i the current token; x̂ the denoiser's clean-token distribution (a row of
// exp(log-probs), possibly nucleus-filtered); alpha_t < alpha_s the signal levels at the times t > s.
#pragma once
#include <cstdint>
#include "core/hd.h"

namespace duo {

// One entry j of the DUO posterior q(z_s = j | z_t = i, x̂) (docs/sampling.md §4), Bayes' rule q(z_t|z_s) q(z_s|x̂) / q(z_t|x̂)
// multiplied through by V:
//   [V a_t x̂_j [j=i] + (a_{t|s} - a_t)[j=i] + (a_s - a_t) x̂_j + (1 - a_{t|s})(1 - a_s)/V] / [V a_t x̂_i + 1 - a_t]
// with a_{t|s} = a_t / a_s. xhat_i = x̂ at the current token, same = [j == i].
template <class T>
DUO_HD T duo_posterior_entry(T xhat_j, T xhat_i, bool same, int64_t V, T alpha_t, T alpha_s) {
  const T Vt = (T)V;
  const T alpha_ts = alpha_t / alpha_s;
  T num = (alpha_s - alpha_t) * xhat_j + (T(1) - alpha_ts) * (T(1) - alpha_s) / Vt;
  if (same) num += Vt * alpha_t * xhat_j + (alpha_ts - alpha_t);
  const T den = Vt * alpha_t * xhat_i + T(1) - alpha_t;
  return num / den;
}

// The same posterior as a mixture of three draws (docs/sampling.md §4.1), for x̂ in the simplex (Σ x̂ = 1):
//   q(· | z_t = i, x̂) = [stay·δ_i + uniform·U(V) + predict·x̂] / (stay + uniform + predict)
// with the unnormalised masses below (their sum is the denominator V a_t x̂_i + 1 - a_t of duo_posterior_entry).
struct DuoMixture {
  double stay = 0, uniform = 0, predict = 0;
};
DUO_HD DuoMixture duo_posterior_mixture(double xhat_i, int64_t V, double alpha_t, double alpha_s) {
  const double alpha_ts = alpha_t / alpha_s;
  DuoMixture m;
  m.stay = (double)V * alpha_t * xhat_i + (alpha_ts - alpha_t);
  m.uniform = (1 - alpha_ts) * (1 - alpha_s);
  m.predict = alpha_s - alpha_t;
  return m;
}

// The Ψ-posterior kappa P + (1 - kappa) F_{alpha_s}(C) below as the same kind of mixture: P is the mixture above,
// C (alpha_s = 1) has no uniform part, and re-noising C to alpha_s moves 1 - alpha_s of its mass to the uniform
// part. Masses normalised (they sum to 1 for x̂ in the simplex).
DUO_HD DuoMixture duo_psi_posterior_mixture(double xhat_i, int64_t V, double alpha_t, double alpha_s, double kappa) {
  const DuoMixture p = duo_posterior_mixture(xhat_i, V, alpha_t, alpha_s);
  const DuoMixture c = duo_posterior_mixture(xhat_i, V, alpha_t, 1.0);
  const double den = p.stay + p.uniform + p.predict;  // = V a_t x̂_i + 1 - a_t, the same for C
  DuoMixture m;
  m.stay = (kappa * p.stay + (1 - kappa) * alpha_s * c.stay) / den;
  m.uniform = kappa * p.uniform / den + (1 - kappa) * (1 - alpha_s);
  m.predict = (kappa * p.predict + (1 - kappa) * alpha_s * c.predict) / den;
  return m;
}

// q(z_s | z_t = i, x̂) for one position: q[0..V). alpha_s = 1 gives the final (noise-removal) step
// x̂_j (V a_t [j=i] + 1 - a_t) / (V a_t x̂_i + 1 - a_t). Sums to 1 for any x̂ in the simplex.
template <class T>
DUO_HD void duo_posterior(const T* xhat, int64_t V, int32_t i, T alpha_t, T alpha_s, T* q) {
  const T xi = xhat[i];
  for (int64_t j = 0; j < V; ++j) q[j] = duo_posterior_entry(xhat[j], xi, j == i, V, alpha_t, alpha_s);
}

// Forward noising of a distribution p to signal level alpha (docs/diffusion.md §2): F_alpha(p)_j = alpha p_j + (1 - alpha)/V.
template <class T>
DUO_HD T uniform_forward_entry(T p_j, int64_t V, T alpha) {
  return alpha * p_j + (T(1) - alpha) / (T)V;
}

// The Ψ-posterior (docs/sampling.md §7) for one position: kappa P + (1 - kappa) R with the predictor P = q(z_s | z_t, x̂), the
// clean posterior C = q(z_0 | z_t, x̂) (alpha_s := 1, same x̂) and the corrector R = F_{alpha_s}(C).
// kappa = 1 is the ancestral step, kappa = 0 pure predictor-corrector (re-noise the t = 0 prediction).
template <class T>
DUO_HD T duo_psi_posterior_entry(T xhat_j, T xhat_i, bool same, int64_t V, T alpha_t, T alpha_s, T kappa) {
  const T P = duo_posterior_entry(xhat_j, xhat_i, same, V, alpha_t, alpha_s);
  const T C = duo_posterior_entry(xhat_j, xhat_i, same, V, alpha_t, T(1));
  const T R = uniform_forward_entry(C, V, alpha_s);
  return kappa * P + (T(1) - kappa) * R;
}
template <class T>
DUO_HD void duo_psi_posterior(const T* xhat, int64_t V, int32_t i, T alpha_t, T alpha_s, T kappa, T* q) {
  const T xi = xhat[i];
  for (int64_t j = 0; j < V; ++j) q[j] = duo_psi_posterior_entry(xhat[j], xi, j == i, V, alpha_t, alpha_s, kappa);
}

}  // namespace duo
