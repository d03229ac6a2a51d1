// The efficient curriculum of Duo++ (docs/curriculum.md §5): the top-k latent, O(k) per token instead of O(V).
//
// softmax(w/τ) over V Gaussians is dominated by its largest entries, so only those are simulated. Per token, with
// N = V − 1 wrong coordinates ~ N(0, σ̃²), the clean one e ~ N(α̃, σ̃²), β = 1/τ, all in float64:
//  1. g_1 > … > g_k: the top k of the N wrong coordinates, as order statistics: U_(j) = Π_{i≤j} u_i^{1/(N−i+1)},
//     g_j = σ̃·Φ⁻¹(U_(j)). Computed as S_j = Σ log u_i/(N−i+1) and g_j = −σ̃·Φ⁻¹(−expm1(S_j)), which keeps the upper
//     tail's precision (1 − U_(j) ~ 1e-5 for V = 50258; the reference's ndtri(exp(S)) loses ~5 digits there).
//  2. e = α̃ + σ̃ξ; in_topk := e > g_k, and then g_k ← e (the clean coordinate takes the k-th slot).
//  3. The unsimulated wrong coordinates are i.i.d. N(0, σ̃²) truncated below c = g_{k−1} (in_topk) or g_k; there are
//     n_tail = V − k (in_topk) or V − k − 1 of them.
//  4. log Z = logsumexp(βg_1..βg_k, log n_tail + log E[e^X | X < βc] with X ~ N(0, (βσ̃)²), βe if not in_topk).
//  5. ω_j = exp(βg_j − log Z), NOT renormalised (the tail's and a non-top-k clean coordinate's mass is dropped from
//     the input, as in the reference); if every ω_j underflows to 0, ω = (1, 0, …, 0). (Kept for parity: with the
//     stable log-mean-exp below, log Z ≤ β·max g + log(V + k), so the largest ω_j is at least 1/(V + k).)
//  6. Identities: a uniformly random ordered k-tuple of distinct wrong ids (Floyd's permutation algorithm on
//     {0..V−2}, every id ≥ x shifted up by one); the last becomes x when in_topk. Wrong ids are exchangeable, so
//     giving random identities to the order statistics is exact.
//  7. z_t. Default (exact): x iff the clean coordinate is the maximum (e > g_1), else id_1 (the largest wrong id) —
//     so P(z_t = x) = α + (1−α)/V as T promises. reference_bug: x whenever in_topk (the reference's labelling,
//     docs/curriculum.md §5 / docs/differences.md §3.1), which inflates P(z_t = x), e.g. 0.680 instead of 0.596 at γ = −3, V = 50258, k = 2.
// The network input is the embedding bag h0 = Σ_j ω_j·E[id_j] (EmbeddingLayer with bag input).
//
// Randomness: token r uses the float64 uniforms j = r·(2k+1) + slot of the batch's Philox stream (uniform_double):
// slots 0..k−1 the u_i, slot k the clean coordinate's ξ = Φ⁻¹(u), slots k+1..2k Floyd's draws. Any token can be
// regenerated alone, on any thread or device.
#pragma once
#include <cstdint>
#include "algo/curriculum.h"
#include "core/philox.h"

namespace duo {

// log E[e^X | X < c] for X ~ N(0, s²) (docs/curriculum.md §5) = s²/2 + log Φ(c/s − s) − log Φ(c/s), evaluated without the
// cancellation of s²/2 against log Φ that ruins the naive form at s ~ 1e3..1e10 (1/τ up to 1e10 at step == end).
double log_mean_exp_truncated_normal(double c, double s);

// The k largest of N i.i.d. N(0, σ̃²) draws, descending, into g[0..k−1], from the uniforms u[0..k−1] in (0, 1).
void topk_order_statistics(const double* u, int64_t N, int k, double sigma_tilde, double* g);

// Writes a uniformly random ordered k-tuple of distinct integers in [0, n) into out, drawing one uniform
// (draw(i) in (0, 1), i = 0..k−1) per element: Floyd's permutation algorithm, O(k²) for the small k used here.
template <class Draw>
void floyd_distinct(int64_t n, int k, Draw draw, int32_t* out);

// The outcome of one token (the arrays g, ids, ω are the caller's, k entries each).
struct TopkToken {
  double e = 0;          // the clean coordinate α̃ + σ̃ξ
  bool in_topk = false;  // e > g_k (the k-th largest wrong coordinate)
  bool clean_max = false;  // e > g_1: the clean coordinate is the argmax of w
  double threshold = 0;  // c: the unsimulated wrong coordinates lie below it
  int64_t n_tail = 0;    // how many they are
  double log_z = 0;      // log of the (approximated) normaliser of softmax(βw)
  int32_t z = 0;         // the discrete latent for the loss
};

// One token r of a batch: k ≥ 2, 0 ≤ x < V, k ≤ V − 1. g receives the bag's values (g_k replaced by e when
// in_topk), ids the bag's ids, omega the weights ω_j in float64.
TopkToken sample_topk_token(const Philox& noise, uint64_t r, int64_t V, int k, int32_t x, double alpha_tilde,
                            double sigma_tilde, double inverse_tau, bool reference_bug, double* g, int32_t* ids,
                            double* omega);

// Throws duo::Error unless 2 ≤ k ≤ V − 1 (the reference's default −1 and k = 1 are invalid, docs/differences.md §3.1).
void check_top_k(int64_t k, int64_t V);

// Rows [row0, row1) of the batch: bag ids (rows·k int32, row-major), bag weights (rows·k float) and z_t (rows int32);
// any output may be null.
void efficient_latent_rows(const CurriculumBatch& batch, int k, bool reference_bug, int64_t row0, int64_t row1,
                           int32_t* bag_ids, float* bag_weights, int32_t* z);

// ---- implementation of the template ----

template <class Draw>
void floyd_distinct(int64_t n, int k, Draw draw, int32_t* out) {
  // For j = n−k .. n−1: pick t uniform in [0, j]; if t is new, put it in front, else put j right after t.
  // Every ordered k-tuple of distinct values comes out with probability (n−k)!/n! (Bentley & Floyd, CACM 1987).
  int len = 0;
  for (int64_t j = n - k, i = 0; j < n; ++j, ++i) {
    int64_t t = (int64_t)(draw(i) * (double)(j + 1));
    if (t > j) t = j;  // draw(i) < 1, but guard the product's rounding
    int at = -1;
    for (int q = 0; q < len; ++q)
      if (out[q] == t) { at = q; break; }
    if (at < 0) {
      for (int q = len; q > 0; --q) out[q] = out[q - 1];
      out[0] = (int32_t)t;
    } else {
      for (int q = len; q > at + 1; --q) out[q] = out[q - 1];
      out[at + 1] = (int32_t)j;
    }
    ++len;
  }
}

}  // namespace duo
