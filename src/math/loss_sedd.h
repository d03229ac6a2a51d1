// SEDD absorb loss: score entropy (DWDSE) for absorbing noise (docs/diffusion.md §9, docs/test_vectors.md §8).
//
// The network output o ∈ R^V becomes a log-score (SEDDAbsorb._process_model_output):
//   log r_y = o_y − log(e^σ̄ − 1) − log(V − 1),  then  log r_{z_t} := 0,
// with σ̄ = −log α_t (also the time input) and e^σ̄ − 1 computed by expm1 when σ̄ < 0.5, as the reference does.
// Loss on masked positions only (z_t = m), with ρ = 1/(e^σ̄ − 1) and dσ̄ = −α'/α:
//   ℓ = dσ̄ [ Σ_{y≠m} r_y − ρ log r_x + ρ(log ρ − 1) ],     ℓ = 0 (no gradient) on z_t ≠ m.
#pragma once
#include <cmath>

#include "math/loss_common.h"
#include "core/hd.h"

namespace duo {

// log(e^σ̄ − 1) − the shift between the network output and the log-score (reference rounding: expm1 below 0.5).
DUO_HD double sedd_log_expm1(double sigma) {
  return std::log(sigma < 0.5 ? std::expm1(sigma) : std::exp(sigma) - 1.0);
}

// The bracket Σ_{y≠m} r_y − ρ log r_x + ρ(log ρ − 1) from finished log-scores (log r at m already 0), σ̄ given.
// This is what docs/test_vectors.md §8 tabulates.
template <class T>
DUO_HD T sedd_score_entropy(const T* log_score, int V, int mask_id, int x, double sigma) {
  const double rho = 1.0 / std::expm1(sigma);  // the loss uses expm1 for every σ̄ (reference `_score_entropy`)
  T pos = 0;
  for (int y = 0; y < V; ++y)
    if (y != mask_id) pos += std::exp(log_score[y]);
  return pos - T(rho) * log_score[x] + T(rho * (std::log(rho) - 1.0));
}

// Per-token SEDD loss from raw logits. x = clean id, z = z_t, alpha = α_t ∈ (0, 1), dalpha = α'_t; V ≥ 2.
// d (nullable) receives dℓ/do_y = dσ̄ (r_y − ρ [y=x]) for y ∉ {m, z_t}, 0 at the entry overwritten by 0
// (y = z_t = m), and all zeros on unmasked positions. One read of the row (two with d).
template <class T, class R = SerialRow, class D = T*>
DUO_HD T sedd_loss_row(const T* o, int V, int mask_id, int x, int z, double alpha, double dalpha,
                       std::type_identity_t<D> d, const R& walk = R{}) {
  if (z != mask_id) {
    zero_row<T, R, D>(d, V, walk);
    return T(0);
  }
  const double sigma = -std::log(alpha);
  const T shift = T(sedd_log_expm1(sigma) + std::log(double(V - 1)));
  const double rho = 1.0 / std::expm1(sigma);
  const double dsigma = -dalpha / alpha;
  // log r_y = o_y − shift for y ≠ z_t; log r_{z_t} = 0 and, z_t being m, it is left out of Σ_{y≠m} r_y.
  T pos = 0;
  for (int y = walk.first(); y < V; y += walk.step()) {
    if (y == mask_id) continue;
    T ratio = std::exp(o[y] - shift);
    pos += ratio;
    if (d) put(d, y, T(dsigma) * (ratio - (y == x ? T(rho) : T(0))));
  }
  pos = walk.sum(pos);
  if (d && walk.owns(mask_id)) put(d, mask_id, T(0));
  const T log_r_x = (x == mask_id) ? T(0) : o[x] - shift;
  return T(dsigma) * (pos - T(rho) * log_r_x + T(rho * (std::log(rho) - 1.0)));
}

}  // namespace duo
