// The top-k latent of the efficient curriculum (docs/curriculum.md §5); the steps are numbered as in the header.
#include "algo/curriculum_efficient.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>
#include "core/error.h"
#include "core/gaussian.h"
#include "core/normal_quantile.h"

namespace duo {

namespace {

// R(z) = log Φ(z) + z²/2 for z < −5, where log Φ(z) ≈ −z²/2 would cancel: directly down to −20, below by the
// Mills-ratio series log Φ(z) = −z²/2 − log(−z) − ½log 2π + log(1 − 1/z² + 3/z⁴ − …) (as in gaussian.h).
double log_cdf_plus_half_square(double z) {
  if (z >= -20) return log_normal_cdf(z) + 0.5 * z * z;
  const double inv_z2 = 1.0 / (z * z);
  double term = 1.0, series = 1.0;
  for (int k = 1; k <= 12; ++k) {
    term *= -(2 * k - 1) * inv_z2;
    series += term;
  }
  return -std::log(-z) - kLogSqrt2Pi + std::log(series);
}

}  // namespace

double log_mean_exp_truncated_normal(double c, double s) {
  // log E[e^X | X < c] = s²/2 + log Φ(z) − log Φ(a), a = c/s, z = a − s. With s = β·σ̃ ~ 1e3 both s²/2 and log Φ(z)
  // are ~5e5 and cancel; rewrite with R(z) = log Φ(z) + z²/2 and s²/2 − z²/2 = a·s − a²/2 = c − a²/2:
  //   z, a < −5:  c + R(z) − R(a)
  //   z < −5 ≤ a: c − a²/2 + R(z) − log Φ(a)
  //   z ≥ −5:     the plain form (log Φ(z), log Φ(a) are then small next to s²/2).
  const double a = c / s, z = a - s;
  if (z < -5) {
    if (a < -5) return c + log_cdf_plus_half_square(z) - log_cdf_plus_half_square(a);
    return c - 0.5 * a * a + log_cdf_plus_half_square(z) - log_normal_cdf(a);
  }
  return 0.5 * s * s + log_normal_cdf(z) - log_normal_cdf(a);
}

void topk_order_statistics(const double* u, int64_t N, int k, double sigma_tilde, double* g) {
  // u and g may be the same array: u[j] is read before g[j] is written.
  double S = 0;  // S_j = log U_(j) = Σ_{i≤j} log u_i / (N − i + 1)
  for (int j = 0; j < k; ++j) {
    S += std::log(u[j]) / (double)(N - j);
    g[j] = -sigma_tilde * normal_quantile(-std::expm1(S));  // σ̃·Φ⁻¹(U) = −σ̃·Φ⁻¹(1 − U), 1 − U = −expm1(S)
  }
}

void check_top_k(int64_t k, int64_t V) {
  DUO_CHECK(k >= 2 && k <= V - 1, "algo.curriculum.top_k",
            str("top_k = ", k, " is invalid for V = ", V, ": the efficient curriculum needs 2 <= k <= V - 1 (the tail "
                "threshold is the (k-1)-th largest wrong coordinate when the clean one is in the top k)"),
            "set --algo.curriculum.top_k, e.g. 2 (the reference's default -1 and k = 1 do not run there either)");
}

TopkToken sample_topk_token(const Philox& noise, uint64_t r, int64_t V, int k, int32_t x, double alpha_tilde,
                            double sigma_tilde, double inverse_tau, bool reference_bug, double* g, int32_t* ids,
                            double* omega) {
  const int64_t N = V - 1;  // wrong coordinates
  const double beta = inverse_tau;
  const uint64_t base = r * (uint64_t)(2 * k + 1);
  TopkToken t;

  // 1. g_1 > … > g_k.
  for (int j = 0; j < k; ++j) g[j] = noise.uniform_double(base + (uint64_t)j);
  topk_order_statistics(g, N, k, sigma_tilde, g);

  // 2. The clean coordinate; where it ranks.
  t.e = alpha_tilde + sigma_tilde * normal_quantile(noise.uniform_double(base + (uint64_t)k));
  t.in_topk = t.e > g[k - 1];
  t.clean_max = t.e > g[0];

  // 3. Tail threshold and size (read before g_k is overwritten).
  t.threshold = t.in_topk ? g[k - 2] : g[k - 1];
  t.n_tail = t.in_topk ? V - k : V - k - 1;
  if (t.in_topk) g[k - 1] = t.e;

  // 4. log Z = logsumexp(βg_j, log n_tail + log E[e^{βX} | X < c], βe if e is not among the g).
  const double tail = t.n_tail > 0 ? std::log((double)t.n_tail) +
                                         log_mean_exp_truncated_normal(beta * t.threshold, beta * sigma_tilde)
                                   : -std::numeric_limits<double>::infinity();
  const double clean_term = t.in_topk ? -std::numeric_limits<double>::infinity() : beta * t.e;
  double m = std::max(tail, clean_term);
  for (int j = 0; j < k; ++j) m = std::max(m, beta * g[j]);
  double sum = std::exp(tail - m) + std::exp(clean_term - m);
  for (int j = 0; j < k; ++j) sum += std::exp(beta * g[j] - m);
  t.log_z = m + std::log(sum);

  // 5. Weights, not renormalised; all-underflow fallback.
  double total = 0;
  for (int j = 0; j < k; ++j) total += (omega[j] = std::exp(beta * g[j] - t.log_z));
  if (total == 0) {
    omega[0] = 1;
    for (int j = 1; j < k; ++j) omega[j] = 0;
  }

  // 6. Identities: distinct wrong ids for the order statistics, then x in the clean coordinate's slot.
  floyd_distinct(N, k, [&](int i) { return noise.uniform_double(base + (uint64_t)(k + 1 + i)); }, ids);
  for (int j = 0; j < k; ++j)
    if (ids[j] >= x) ++ids[j];
  if (t.in_topk) ids[k - 1] = x;

  // 7. The discrete latent.
  const bool labelled_clean = reference_bug ? t.in_topk : t.clean_max;
  t.z = labelled_clean ? x : ids[0];
  return t;
}

void efficient_latent_rows(const CurriculumBatch& batch, int k, bool reference_bug, int64_t row0, int64_t row1,
                           int32_t* bag_ids, float* bag_weights, int32_t* z) {
  batch.validate();
  check_top_k(k, batch.V);
  DUO_CHECK(0 <= row0 && row0 <= row1 && row1 <= batch.B * batch.L, "efficient_latent_rows",
            str("rows [", row0, ", ", row1, ") outside the batch's ", batch.B * batch.L, " rows"), "");
#pragma omp parallel
  {
    std::vector<double> g((size_t)k), omega((size_t)k);
    std::vector<int32_t> ids((size_t)k);
#pragma omp for schedule(static)
    for (int64_t r = row0; r < row1; ++r) {
      const CurriculumSequence& q = batch.seq[r / batch.L];
      TopkToken t = sample_topk_token(batch.noise, (uint64_t)r, batch.V, k, batch.x[r], q.alpha_tilde, q.sigma_tilde,
                                      batch.inverse_tau, reference_bug, g.data(), ids.data(), omega.data());
      const int64_t o = (r - row0) * k;
      for (int j = 0; j < k; ++j) {
        if (bag_ids) bag_ids[o + j] = ids[(size_t)j];
        if (bag_weights) bag_weights[o + j] = (float)omega[(size_t)j];
      }
      if (z) z[r - row0] = t.z;
    }
  }
}

}  // namespace duo
