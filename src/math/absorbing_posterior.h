// Per-token sampling math of absorbing-state (masked) diffusion: the MDLM / D3PM ancestral posterior (docs/sampling.md §8), its
// Ψ variant (docs/sampling.md §7), and SEDD's analytic "Tweedie" update (docs/sampling.md §9). DUO_HD: host and device; T = probability type.
//
// m is the mask id. The weights written are what the categorical primitive needs; they sum to 1 whenever the
// clean-token row x̂ puts no mass on m (SUBS output), and are otherwise unnormalised weights (D3PM's
// log-softmax may give [MASK] some mass; like the reference we overwrite that entry instead of renormalising,
// which the exponential race does not need).
#pragma once
#include <cmath>
#include <cstdint>
#include "core/hd.h"

namespace duo {

// q(z_s | z_t, x̂) for one position (docs/sampling.md §8):
//   z_t = m:  q_v = (a_s - a_t)/(1 - a_t) x̂_v  (v != m),   q_m = (1 - a_s)/(1 - a_t);
//   z_t != m: one-hot on z_t (carry-over: an unmasked token never changes).
// The reference copies the SUBS row at unmasked positions, which is this one-hot; writing the one-hot directly
// also gives D3PM the ch-1 carry-over (HEAD's D3PM would resample unmasked tokens, docs/differences.md §4.2: not reproduced).
// alpha_s = 1 is the final step: every masked token is unmasked.
template <class T>
DUO_HD T absorbing_posterior_entry(T xhat_v, int64_t v, int32_t z_t, int32_t m, T alpha_t, T alpha_s) {
  if (z_t != m) return (v == z_t) ? T(1) : T(0);
  if (v == m) return (T(1) - alpha_s) / (T(1) - alpha_t);
  const T unmask = (alpha_s - alpha_t) / (T(1) - alpha_t);
  return unmask * xhat_v;
}
template <class T>
DUO_HD void absorbing_posterior(const T* xhat, int64_t V, int32_t z_t, int32_t m, T alpha_t, T alpha_s, T* q) {
  for (int64_t v = 0; v < V; ++v) q[v] = absorbing_posterior_entry(xhat[v], v, z_t, m, alpha_t, alpha_s);
}

// Ψ-posterior for absorbing states (docs/sampling.md §7): kappa P + (1 - kappa) R, with P = q(z_s | z_t, x̂), C = the same at
// alpha_s = 1, and the absorbing forward process R = alpha_s C with the mask entry set to 1 - alpha_s.
// An unmasked token is thus re-masked with probability (1 - kappa)(1 - alpha_s): ReMDM's remasking sigma.
template <class T>
DUO_HD T absorbing_psi_posterior_entry(T xhat_v, int64_t v, int32_t z_t, int32_t m, T alpha_t, T alpha_s, T kappa) {
  const bool masked = (z_t == m);
  const T unmask = (alpha_s - alpha_t) / (T(1) - alpha_t);
  T P, C;
  if (masked) {
    P = (v == m) ? (T(1) - alpha_s) / (T(1) - alpha_t) : unmask * xhat_v;
    C = (v == m) ? T(0) : xhat_v;  // alpha_s = 1: (1 - a_t)/(1 - a_t) x̂_v, mask weight 0
  } else {
    P = C = (v == z_t) ? T(1) : T(0);
  }
  const T R = (v == m) ? T(1) - alpha_s : alpha_s * C;
  return kappa * P + (T(1) - kappa) * R;
}
template <class T>
DUO_HD void absorbing_psi_posterior(const T* xhat, int64_t V, int32_t z_t, int32_t m, T alpha_t, T alpha_s, T kappa,
                                    T* q) {
  for (int64_t v = 0; v < V; ++v) q[v] = absorbing_psi_posterior_entry(xhat[v], v, z_t, m, alpha_t, alpha_s, kappa);
}

// SEDD absorb analytic update (docs/sampling.md §9) for one position. logscore: the row of log-scores (log r_y; the entry
// at z_t is 0 by the output processing); dsigma = sigma_t - sigma_s with sigma = -log alpha.
//   staggered score  r~_y = e^{dsigma} r_y (y != m),  r~_m = e^{dsigma} r_m + (1 - e^{dsigma}) sum_y r_y
//   transition       P_y  = e^{-dsigma} [y = z_t] + (1 - e^{-dsigma}) [z_t = m]
//   weights          w_y  = r~_y P_y   (an unmasked z_t keeps its token: only P_{z_t} is non-zero).
// final_step: the "denoiser update" (dsigma = sigma_{t_S}, and the mask weight set to 0).
// The step's constants, once per row: e^{dsigma}, e^{-dsigma}, 1 - e^{-dsigma}, 1 - e^{dsigma}.
template <class T>
struct SeddStep {
  T e, keep, jump, stagger;
};
template <class T>
DUO_HD SeddStep<T> sedd_step(T dsigma) {
  return {std::exp(dsigma), std::exp(-dsigma), -std::expm1(-dsigma), -std::expm1(dsigma)};
}
// Weight w_y from the log-score ls_y and sum_r = sum_y exp(ls_y) over the row.
template <class T>
DUO_HD T sedd_analytic_entry(const SeddStep<T>& k, T ls_y, int64_t y, int32_t z_t, int32_t m, bool final_step,
                             T sum_r) {
  if (final_step && y == m) return T(0);
  T stag = k.e * std::exp(ls_y);
  if (y == m) stag += k.stagger * sum_r;  // (1 - e^{dsigma}) sum_y r_y
  const T P = (y == z_t ? k.keep : T(0)) + (z_t == m ? k.jump : T(0));
  return stag * P;
}
template <class T>
DUO_HD void sedd_analytic_weights(const T* logscore, int64_t V, int32_t z_t, int32_t m, T dsigma, bool final_step,
                                  T* w) {
  const SeddStep<T> k = sedd_step(dsigma);
  T sum_r = 0;
  for (int64_t y = 0; y < V; ++y) sum_r += std::exp(logscore[y]);
  for (int64_t y = 0; y < V; ++y) w[y] = sedd_analytic_entry(k, logscore[y], y, z_t, m, final_step, sum_r);
}

}  // namespace duo
