// DUO base loss: the closed-form UDLM continuous-time NELBO integrand (docs/diffusion.md §5.2–§5.5).
//
// With x̂ = softmax(logits) over all V ids (no mask, no carry-over, docs/diffusion.md §5.1) and i = z_t:
//   x̄   = Vα e_x + (1 − α) 1,         x̄θ = Vα x̂ + (1 − α) 1,
//   ℓ   = α'/(Vα) · B,   B = V/x̄_i − V/x̄θ_i − S,   c = (1 − α)/(Vα + 1 − α),  Λ = Σ_j log x̄θ_j,
//   z_t = x:  S = c (V log x̄θ_i − Λ) + (V − 1) c log c,
//   z_t ≠ x:  S = (V log x̄θ_i − Λ) − Vα/(1 − α) (log x̄θ_x − log x̄θ_i) − (1/c) log c.
// ℓ ≥ 0 because α' < 0. The full-vocabulary reduction Λ makes it O(V) per token.
//
// Accuracy. Write β = Vα/(1 − α) (so c = 1/(1 + β)), r_j = β x̂_j, x̄θ_j = (1 − α)(1 + r_j), L_j = log(1 + r_j),
// φ(r) = log(1 + r) − r. The constant log(1 − α) cancels between V log x̄θ_i and Λ, so V log x̄θ_i − Λ =
// V L_i − Σ_j L_j. For β ≥ 1 (every real vocabulary: V = 50258, α ≥ 1e-3 gives β ≥ 50) we evaluate the
// formula above that way. For β < 1 (small vocabularies near t = 1) B is O(β²) while its terms are O(V): as
// written it loses everything in fp32. Using Σ_j r_j = β exactly, the terms that cancel analytically are
// removed and what remains is a sum of O(β²) pieces:
//   z_t ≠ x:  B = (V + β)(ψ_i − φ_i) + Σ_j φ_j + β φ_x − β²(1 − x̂_x) − (1 + β) φ(β),   ψ_i = −r_i²/(1 + r_i)
//   z_t = x:  B (1 + β) = β(1 − x̂_x)((V + β) w_i − β) − V φ_i + Σ_j φ_j + (V − 1) φ(β),    w_i = r_i/(1 + r_i)
// (1 − x̂_x is summed as Σ_{j≠x} x̂_j, so it stays accurate when x̂_x ≈ 1.) For β ≥ 1 this form would cancel
// O(β²) terms instead, hence the switch.
#pragma once
#include <cmath>

#include "math/loss_common.h"
#include "core/hd.h"

namespace duo {

// Per-token DUO NELBO for one row of logits o[0..V); x = clean id, z = noisy id z_t, alpha = α_t, dalpha = α'_t.
// Requires 0 < α < 1 (training times t ∈ [1e-3, 1] give α ∈ [ε, 1 − 1e-3(1 − ε)] for log-linear).
// If d is given it receives dℓ/do (exact; written once, x̂ recomputed from the row). Three reads of the row, four
// with d.
template <class T, class R = SerialRow, class D = T*>
DUO_HD T duo_nelbo_row(const T* o, int V, int x, int z, double alpha, double dalpha, std::type_identity_t<D> d,
                       const R& walk = R{}) {
  // Per-token scalars in double (a handful of flops): they carry the α-dependence with full accuracy.
  const double one_m_a = 1.0 - alpha;
  const double beta_d = V * alpha / one_m_a;
  const T beta = T(beta_d);
  const bool same = (z == x);
  const bool small_beta = beta_d < 1.0;

  const T lse = row_logsumexp(o, V, -1, MaskLogit::Keep, walk);
  // One pass: Σ_j L_j (or Σ_j φ(r_j) when β < 1), Σ_j x̂_j w_j (gradient only), 1 − x̂_x = Σ_{j≠x} x̂_j.
  T sum_L = 0, sum_pw = 0, rest_x = 0;
  for (int j = walk.first(); j < V; j += walk.step()) {
    T p = std::exp(o[j] - lse);
    T r = beta * p;
    sum_L += small_beta ? log1p_minus_x(r) : std::log1p(r);
    if (j != x) rest_x += p;
    if (d) sum_pw += p * r / (T(1) + r);
  }
  sum_L = walk.sum(sum_L);
  rest_x = walk.sum(rest_x);
  if (d) sum_pw = walk.sum(sum_pw);
  const T p_i = std::exp(o[z] - lse), p_x = std::exp(o[x] - lse);
  const T r_i = beta * p_i, r_x = beta * p_x;
  const T w_i = r_i / (T(1) + r_i);
  const T y_i = T(one_m_a) * (T(1) + r_i);  // x̄θ_i

  T B;
  if (!small_beta) {  // the formula as written, with V log x̄θ_i − Λ = V L_i − Σ_j L_j
    const double c = 1.0 / (1.0 + beta_d), log_c = -std::log1p(beta_d);
    const T L_i = std::log1p(r_i);
    if (same) {
      T S = T(c) * (T(V) * L_i - sum_L) + T((V - 1) * c * log_c);
      B = T(V / (one_m_a * (1.0 + beta_d))) - T(V) / y_i - S;
    } else {
      T S = (T(V) * L_i - sum_L) - beta * (std::log1p(r_x) - L_i) - T(log_c / c);
      B = T(V / one_m_a) - T(V) / y_i - S;
    }
  } else {  // the O(β²) form (sum_L holds Σ_j φ_j)
    const T phi_i = log1p_minus_x(r_i), phi_beta = log1p_minus_x(beta);
    if (same) {
      B = (beta * rest_x * ((T(V) + beta) * w_i - beta) - T(V) * phi_i + sum_L + T(V - 1) * phi_beta) / (T(1) + beta);
    } else {
      B = (T(V) + beta) * (-r_i * w_i - phi_i) + sum_L + beta * log1p_minus_x(r_x) - beta * beta * rest_x -
          (T(1) + beta) * phi_beta;
    }
  }
  const T loss = T(dalpha / (V * alpha)) * B;
  if (!d) return loss;

  // Gradient. With y_j = x̄θ_j, differentiating −V/y_i and −S gives dℓ/dy_j = K (a_i [j=i] + a_x [j=x] + s/y_j),
  // K = α'/(Vα):
  //   z_t = x: a_i = V/y_i² − cV/y_i = V α (1 + V(1 − x̂_x) + β) / (y_i² (1 + β)),  a_x = 0,        s = c
  //   z_t ≠ x: a_i = V/y_i² − (V + β)/y_i = −V w_i / (y_i (1 − α)),                a_x = β/y_x,    s = 1
  // and through y_j = Vα x̂_j + 1 − α, x̂ = softmax(o), with Σ_j x̂_j = 1:
  //   dℓ/do_k = α' x̂_k [ a_i([k=i] − x̂_i) + a_x([k=x] − x̂_x) + s/(1 − α) (Σ_j x̂_j w_j − w_k) ].
  T a_i, a_x = 0, s;
  if (same) {
    a_i = T(V * alpha) * (T(1) + T(V) * rest_x + beta) / (y_i * y_i * (T(1) + beta));
    s = T(1.0 / (1.0 + beta_d));
  } else {
    a_i = -T(V) * w_i / (y_i * T(one_m_a));
    a_x = beta / (T(one_m_a) * (T(1) + r_x));
    s = 1;
  }
  const T s_scaled = s / T(one_m_a);
  for (int k = walk.first(); k < V; k += walk.step()) {
    T p = std::exp(o[k] - lse), r = beta * p;  // pass 1's x̂_k, the same bits
    T g = a_i * ((k == z ? T(1) : T(0)) - p_i) + a_x * ((k == x ? T(1) : T(0)) - p_x) +
          s_scaled * (sum_pw - r / (T(1) + r));
    put(d, k, T(dalpha) * p * g);
  }
  return loss;
}

}  // namespace duo
