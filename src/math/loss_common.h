// Row helpers shared by the per-token losses (loss_*.h): log-softmax pieces over one row of V logits, with the
// reference's treatment of the [MASK] logit. Everything is DUO_HD so CUDA loss heads call the same code.
//
// Every row function takes a row walker R last: which entries of the row this thread visits and how partial
// sums and maxima combine. SerialRow (the default): one thread visits all of them in order — the CPU backend,
// and the summation order of every reference value. The CUDA loss heads pass a block walker (thread t visits
// t, t + blockDim, …; sum/max are block reductions), so one block shares a row and the maths stays one piece
// of code. Rules that keep the block form correct: every thread of the row calls sum/max (the branches
// around them depend only on the row's scalars), an entry of d is never read back (a row function recomputes what
// it needs), and a single-entry write after a pass goes through owns(j).
//
// The gradient goes to d, of type D: an array T* (nullable; the default), or a backend's sink: any type with an
// explicit bool (whether to write at all) and set(j, v) (the CUDA loss head writes the weighted bf16 rounding the
// backward GEMMs read, with no fp32 row). Row functions write through put(d, j, v).
#pragma once
#include <cmath>
#include <type_traits>

#include "core/hd.h"

namespace duo {

template <class T>
DUO_HD void put(T* d, int j, T v) { d[j] = v; }
template <class S, class T>
DUO_HD auto put(const S& d, int j, T v) -> decltype(d.set(j, v)) { d.set(j, v); }

// One thread owns the whole row.
struct SerialRow {
  DUO_HD int first() const { return 0; }
  DUO_HD int step() const { return 1; }
  DUO_HD bool owns(int) const { return true; }
  template <class T>
  DUO_HD T sum(T v) const { return v; }
  template <class T>
  DUO_HD T max(T v) const { return v; }
};

// The reference's "−∞" for logits (`neg_infinity`, docs/model.md §9): finite, so gradients stay finite.
constexpr double kNegInfinity = -1e6;

// What an algorithm does to the [MASK] logit before normalising (docs/model.md §9).
enum class MaskLogit {
  Keep,  // DUO, D3PM: plain log-softmax over all V ids
  Set,   // AR: logit[mask] = −1e6 (overwritten, so no gradient reaches it)
  Add,   // MDLM SUBS: logit[mask] += −1e6 (the gradient still flows, scaled by a zero probability)
};

// Logit j after the mask treatment; mask_id < 0 means "no mask id" (then the row is untouched).
template <class T>
DUO_HD T treated_logit(const T* o, int j, int mask_id, MaskLogit op) {
  if (j != mask_id || op == MaskLogit::Keep) return o[j];
  if (op == MaskLogit::Set) return T(kNegInfinity);
  return o[j] + T(kNegInfinity);
}

// log Σ_j exp(o'_j) of the treated row o' (max-shifted: two reads of the row).
template <class T, class R = SerialRow>
DUO_HD T row_logsumexp(const T* o, int V, int mask_id = -1, MaskLogit op = MaskLogit::Keep,
                       const R& walk = R{}) {
  T mx = T(-INFINITY);
  for (int j = walk.first(); j < V; j += walk.step()) {
    T v = treated_logit(o, j, mask_id, op);
    mx = v > mx ? v : mx;
  }
  mx = walk.max(mx);
  T sum = 0;
  for (int j = walk.first(); j < V; j += walk.step()) sum += std::exp(treated_logit(o, j, mask_id, op) - mx);
  return mx + std::log(walk.sum(sum));
}

// Cross-entropy −log softmax(o')_x of the treated row, times `weight`; d(weight·CE)/do written to d when
// d != nullptr: weight·(p_j − [j=x]) for ids whose logit reaches the softmax, 0 for an overwritten mask logit.
template <class T, class R = SerialRow, class D = T*>
DUO_HD T weighted_cross_entropy_row(const T* o, int V, int x, T weight, int mask_id, MaskLogit op,
                                    std::type_identity_t<D> d, const R& walk = R{}) {
  T lse = row_logsumexp(o, V, mask_id, op, walk);
  T ce = lse - treated_logit(o, x, mask_id, op);
  if (d) {
    for (int j = walk.first(); j < V; j += walk.step()) {
      T p = std::exp(treated_logit(o, j, mask_id, op) - lse);
      put(d, j, weight * (p - (j == x ? T(1) : T(0))));
    }
    if (op == MaskLogit::Set && mask_id >= 0 && walk.owns(mask_id)) put(d, mask_id, T(0));
  }
  return weight * ce;
}

// φ(r) = log(1 + r) − r for r > −1/2, accurate also where φ ≈ −r²/2 is far below r (small r): with
// u = r/(2 + r), log(1 + r) = 2 atanh(u) and 2u − r = −r²/(2 + r), so φ = −r²/(2 + r) + 2(u³/3 + u⁵/5 + …).
template <class T>
DUO_HD T log1p_minus_x(T r) {
  if (r > T(0.5) || r < T(-0.5)) return std::log1p(r) - r;
  T u = r / (T(2) + r), u2 = u * u, term = u * u2, series = 0;
  for (int k = 3; k <= 21; k += 2, term *= u2) series += term / T(k);  // |u| ≤ 1/3: u² ≤ 1/9, 10 terms ≪ ulp
  return -r * r / (T(2) + r) + T(2) * series;
}

// Zeroes a gradient row (positions whose loss is exactly 0, e.g. unmasked tokens under SUBS carry-over).
template <class T, class R = SerialRow, class D = T*>
DUO_HD void zero_row(std::type_identity_t<D> d, int V, const R& walk = R{}) {
  if (d)
    for (int j = walk.first(); j < V; j += walk.step()) put(d, j, T(0));
}

}  // namespace duo
