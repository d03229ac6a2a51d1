// D3PM absorb loss, T = 1000 discrete steps (docs/diffusion.md §10, docs/differences.md §2.1).
//
// Output: log-softmax over all V ids, [MASK] included ("mean" parameterisation, subs_masking = False).
// Time is discrete (schedule.h: discrete_time), log-linear. With m_t = clamp(1 − α_t, 0, 1 − 1e-4) the mask
// probability, α_t = 1 − m_t, Δ = 1/T and x̂_m the predicted mask probability:
//   L_vb = Δ/m_t [log(1 + α_t x̂_m/m_t) − log x̂_x] + (1 − Δ/m_t) [log(1 + α_t x̂_m/m_t) − log(1 + α_s x̂_m/m_s)]
// with m_s = m_t − Δ and α_s = 1 − m_s: the x0-parameterised KL of the absorbing step t → s (the intended maths).
// Per token:  ℓ = −log x̂(x | clean input, s = 0) + T · L_vb · [z_t = m].
// The reconstruction term needs a second forward pass on the clean sequence, so it is a separate function:
// d3pm_recon_row on the clean-input logits, d3pm_vb_row on the noisy-input logits; the caller adds them.
//
// Reference bug (docs/differences.md §2.1, flag reference_bug): the reference stores m_s in the variable it then uses as α_s, so
// the last log becomes log(1 + x̂_m). This changes the D3PM training loss and the D3PM validation NELBO /
// perplexity that the reference prints; nothing else (no other algorithm, no sampler) uses it. Default: the
// intended maths. Needs m_s > 0, i.e. m_t > Δ: discrete_time gives t ≥ 2/T, so m_t ≥ 2(1 − ε)/T > Δ.
#pragma once
#include <cmath>

#include "math/loss_common.h"
#include "core/hd.h"

namespace duo {

// T · L_vb · [z_t = m] from the noisy-input logits. x = clean id, z = z_t, alpha = α_t at the discrete time,
// num_steps = T. d (nullable) receives the exact gradient; all zeros on unmasked positions.
template <class T, class R = SerialRow, class D = T*>
DUO_HD T d3pm_vb_row(const T* o, int V, int mask_id, int x, int z, double alpha, int num_steps, bool reference_bug,
                     std::type_identity_t<D> d, const R& walk = R{}) {
  if (z != mask_id) {
    zero_row<T, R, D>(d, V, walk);
    return T(0);
  }
  const double dt = 1.0 / num_steps;
  double m_t = 1.0 - alpha;
  m_t = m_t < 0.0 ? 0.0 : (m_t > 1.0 - 1e-4 ? 1.0 - 1e-4 : m_t);
  const double a_t = 1.0 - m_t;
  const double m_s = m_t - dt;
  const double a_s = reference_bug ? m_s : 1.0 - m_s;
  const double w1 = dt / m_t, w2 = 1.0 - w1;  // the two bracket weights
  const double c1 = a_t / m_t, k = a_s / m_s;  // log(1 + c1 x̂_m), log(1 + k x̂_m)

  const T lse = row_logsumexp(o, V, -1, MaskLogit::Keep, walk);
  const T log_px = o[x] - lse;
  const T p_m = std::exp(o[mask_id] - lse);
  const T log_nr = std::log1p(T(c1) * p_m);
  const T L_vb = T(w1) * (log_nr - log_px) + T(w2) * (log_nr - std::log1p(T(k) * p_m));
  if (d) {
    // dL_vb/do_j = g_m x̂_m([j=m] − x̂_j) + w1 (x̂_j − [j=x]),  g_m = dL_vb/dx̂_m = c1/(1 + c1 x̂_m) − w2 k/(1 + k x̂_m).
    const T g_m = T(c1) / (T(1) + T(c1) * p_m) - T(w2 * k) / (T(1) + T(k) * p_m);
    for (int j = walk.first(); j < V; j += walk.step()) {
      T p = std::exp(o[j] - lse);
      T g = g_m * p_m * ((j == mask_id ? T(1) : T(0)) - p) + T(w1) * (p - (j == x ? T(1) : T(0)));
      put(d, j, T(num_steps) * g);
    }
  }
  return T(num_steps) * L_vb;
}

// Reconstruction term −log x̂(x | clean input, s = 0): cross-entropy of log-softmax over all V ids.
template <class T, class R = SerialRow, class D = T*>
DUO_HD T d3pm_recon_row(const T* o_clean, int V, int x, std::type_identity_t<D> d, const R& walk = R{}) {
  return weighted_cross_entropy_row<T, R, D>(o_clean, V, x, T(1), -1, MaskLogit::Keep, d, walk);
}

}  // namespace duo
