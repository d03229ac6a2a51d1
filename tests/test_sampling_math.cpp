// Per-token sampling math: the DUO / absorbing / SEDD posteriors against the test vectors (docs/test_vectors.md §6) and an
// independent brute-force Bayes computation, the Ψ mixture, nucleus filtering, and the κ schedules (docs/test_vectors.md §7).
#include <boost/test/unit_test.hpp>
#include <limits>
#include <cmath>
#include <numeric>
#include <vector>
#include "core/error.h"
#include "core/philox.h"
#include "math/absorbing_posterior.h"
#include "math/categorical.h"
#include "sample/psi_schedule.h"
#include "math/uniform_posterior.h"

using namespace duo;

namespace {

std::vector<double> random_simplex(int64_t V, uint64_t seed, int64_t zero_at = -1) {
  Philox rng{seed, 1};
  std::vector<double> x((size_t)V);
  for (int64_t v = 0; v < V; ++v) x[(size_t)v] = v == zero_at ? 0.0 : -std::log(rng.uniform_double((uint64_t)v));
  const double s = std::accumulate(x.begin(), x.end(), 0.0);
  for (auto& e : x) e /= s;
  return x;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  BOOST_REQUIRE_EQUAL(got.size(), want.size());
  for (size_t j = 0; j < got.size(); ++j)
    BOOST_TEST(std::abs(got[j] - want[j]) <= tol, "entry " << j << ": " << got[j] << " vs " << want[j]);
}

double sum(const std::vector<double>& x) { return std::accumulate(x.begin(), x.end(), 0.0); }

AlphaSchedule log_linear() {
  return {[](double t) { return 1.0 - (1.0 - 1e-3) * t; }, [](double a) { return 1.0 - a; }};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sampling)

// docs/test_vectors.md §6: V = 4, x̂ = (0.1, 0.2, 0.3, 0.4), alpha_t = 0.5, alpha_s = 0.8.
BOOST_AUTO_TEST_CASE(duo_posterior_spec_vectors) {
  const std::vector<double> xhat = {0.1, 0.2, 0.3, 0.4};
  std::vector<double> q(4);
  duo_posterior(xhat.data(), 4, 0, 0.5, 0.8, q.data());
  check_close(q, {0.533928571429, 0.112500000000, 0.155357142857, 0.198214285714}, 1e-12);
  duo_posterior(xhat.data(), 4, 0, 0.5, 1.0, q.data());
  check_close(q, {0.357142857143, 0.142857142857, 0.214285714286, 0.285714285714}, 1e-12);
  duo_posterior(xhat.data(), 4, 3, 0.5, 0.8, q.data());
  check_close(q, {0.037500000000, 0.060576923077, 0.083653846154, 0.818269230769}, 1e-12);
  duo_posterior(xhat.data(), 4, 3, 0.5, 1.0, q.data());
  check_close(q, {0.038461538462, 0.076923076923, 0.115384615385, 0.769230769231}, 1e-12);
}

BOOST_AUTO_TEST_CASE(psi_mixture_spec_vectors) {
  const std::vector<double> xhat = {0.1, 0.2, 0.3, 0.4};
  std::vector<double> C(4), R(4), mix(4);
  duo_posterior(xhat.data(), 4, 3, 0.5, 1.0, C.data());
  for (int j = 0; j < 4; ++j) R[j] = uniform_forward_entry(C[j], 4, 0.8);
  check_close(R, {0.080769230769, 0.111538461538, 0.142307692308, 0.665384615385}, 1e-12);
  duo_psi_posterior(xhat.data(), 4, 3, 0.5, 0.8, 0.9, mix.data());
  check_close(mix, {0.041826923077, 0.065673076923, 0.089519230769, 0.802980769231}, 1e-12);
  // kappa = 1 is the ancestral posterior.
  std::vector<double> P(4);
  duo_psi_posterior(xhat.data(), 4, 3, 0.5, 0.8, 1.0, mix.data());
  duo_posterior(xhat.data(), 4, 3, 0.5, 0.8, P.data());
  check_close(mix, P, 1e-15);
}

// Bayes' rule written out: q(z_s=j | z_t=i, x̂) = q(z_t=i | z_s=j) q(z_s=j | x̂) / q(z_t=i | x̂), with the marginal
// q(z_t | x̂) computed as sum_j of the numerators (checks the closed-form denominator too).
BOOST_AUTO_TEST_CASE(duo_posterior_matches_brute_force_bayes) {
  for (int64_t V : {2, 3, 7, 50}) {
    for (uint64_t seed = 0; seed < 4; ++seed) {
      const std::vector<double> xhat = random_simplex(V, 100 * (uint64_t)V + seed);
      const double pairs[3][2] = {{0.2, 0.6}, {0.01, 0.999}, {0.7, 1.0}};
      for (auto& pr : pairs) {
        const double a_t = pr[0], a_s = pr[1], a_ts = a_t / a_s;
        for (int32_t i : {0, (int32_t)(V - 1), (int32_t)(V / 2)}) {
          std::vector<double> num((size_t)V), q((size_t)V);
          for (int64_t j = 0; j < V; ++j) {
            const double t_given_s = a_ts * (i == j) + (1 - a_ts) / V;  // q(z_t=i | z_s=j)
            const double s_given_x = a_s * xhat[(size_t)j] + (1 - a_s) / V;  // q(z_s=j | x̂)
            num[(size_t)j] = t_given_s * s_given_x;
          }
          const double marginal = sum(num);
          BOOST_TEST(std::abs(marginal - (a_t * xhat[(size_t)i] + (1 - a_t) / V)) < 1e-14);
          for (auto& e : num) e /= marginal;
          duo_posterior(xhat.data(), V, i, a_t, a_s, q.data());
          check_close(q, num, 1e-13);
          BOOST_TEST(std::abs(sum(q) - 1) < 1e-13);
          // The mixture the sampler draws from (docs/sampling.md §4.1) is the same distribution.
          const DuoMixture m = duo_posterior_mixture(xhat[(size_t)i], V, a_t, a_s);
          const double total = m.stay + m.uniform + m.predict;
          BOOST_TEST(std::abs(total - (V * a_t * xhat[(size_t)i] + 1 - a_t)) < 1e-13 * total);
          std::vector<double> mixed((size_t)V);
          for (int64_t j = 0; j < V; ++j)
            mixed[(size_t)j] = (m.stay * (j == i) + m.uniform / V + m.predict * xhat[(size_t)j]) / total;
          check_close(mixed, num, 1e-13);
          for (double kappa : {0.0, 0.3, 1.0}) {  // and the Ψ-posterior's mixture is the Ψ-posterior
            std::vector<double> psi((size_t)V);
            duo_psi_posterior(xhat.data(), V, i, a_t, a_s, kappa, psi.data());
            const DuoMixture k = duo_psi_posterior_mixture(xhat[(size_t)i], V, a_t, a_s, kappa);
            BOOST_TEST(std::abs(k.stay + k.uniform + k.predict - 1) < 1e-13);
            for (int64_t j = 0; j < V; ++j)
              mixed[(size_t)j] = k.stay * (j == i) + k.uniform / V + k.predict * xhat[(size_t)j];
            check_close(mixed, psi, 1e-13);
          }
        }
      }
    }
  }
}

// Absorbing posterior against Bayes with q(z_t=m | z_s=j) = 1 if j = m else 1 - a_t/a_s,
// q(z_s | x̂) = a_s x̂ (+ mass 1 - a_s on m), q(z_t=m | x̂) = 1 - a_t.
BOOST_AUTO_TEST_CASE(absorbing_posterior_matches_brute_force_bayes) {
  const int64_t V = 9;
  const int32_t m = 8;
  const std::vector<double> xhat = random_simplex(V, 7, m);  // SUBS: no mass on [MASK]
  const double a_t = 0.3, a_s = 0.75;
  std::vector<double> want((size_t)V), q((size_t)V);
  for (int64_t j = 0; j < V; ++j) {
    const double t_given_s = j == m ? 1.0 : 1 - a_t / a_s;
    const double s_given_x = j == m ? 1 - a_s : a_s * xhat[(size_t)j];
    want[(size_t)j] = t_given_s * s_given_x / (1 - a_t);
  }
  absorbing_posterior(xhat.data(), V, m, m, a_t, a_s, q.data());
  check_close(q, want, 1e-14);
  BOOST_TEST(std::abs(sum(q) - 1) < 1e-14);
  // Final step: everything unmasked, q = x̂.
  absorbing_posterior(xhat.data(), V, m, m, a_t, 1.0, q.data());
  check_close(q, xhat, 1e-15);
  // Carry-over: an unmasked token stays, whatever x̂ says.
  absorbing_posterior(xhat.data(), V, 3, m, a_t, a_s, q.data());
  for (int64_t v = 0; v < V; ++v) BOOST_TEST(q[(size_t)v] == (v == 3 ? 1.0 : 0.0));
}

BOOST_AUTO_TEST_CASE(absorbing_psi_remasks_with_probability_sigma) {
  const int64_t V = 6;
  const int32_t m = 5;
  const std::vector<double> xhat = random_simplex(V, 11, m);
  const double a_t = 0.4, a_s = 0.7, kappa = 0.6;
  std::vector<double> q((size_t)V), P((size_t)V);
  // Unmasked token: re-masked with (1 - kappa)(1 - a_s), kept otherwise.
  absorbing_psi_posterior(xhat.data(), V, 2, m, a_t, a_s, kappa, q.data());
  BOOST_TEST(std::abs(q[m] - (1 - kappa) * (1 - a_s)) < 1e-15);
  BOOST_TEST(std::abs(q[2] - (1 - (1 - kappa) * (1 - a_s))) < 1e-15);
  BOOST_TEST(std::abs(sum(q) - 1) < 1e-15);
  // Masked token: kappa P + (1 - kappa)(a_s x̂, 1 - a_s).
  absorbing_psi_posterior(xhat.data(), V, m, m, a_t, a_s, kappa, q.data());
  absorbing_posterior(xhat.data(), V, m, m, a_t, a_s, P.data());
  for (int64_t v = 0; v < V; ++v) {
    const double R = v == m ? 1 - a_s : a_s * xhat[(size_t)v];
    BOOST_TEST(std::abs(q[(size_t)v] - (kappa * P[(size_t)v] + (1 - kappa) * R)) < 1e-15);
  }
  BOOST_TEST(std::abs(sum(q) - 1) < 1e-14);
}

// With the exact absorbing score r_y = a_t x̂_y / (1 - a_t) (r_m = 1), SEDD's analytic update is the exact
// posterior, and the denoiser update is proportional to x̂.
BOOST_AUTO_TEST_CASE(sedd_analytic_with_exact_score_is_the_posterior) {
  const int64_t V = 7;
  const int32_t m = 6;
  const std::vector<double> xhat = random_simplex(V, 5, m);
  const double a_t = 0.35, a_s = 0.8;
  std::vector<double> logscore((size_t)V), w((size_t)V), q((size_t)V);
  for (int64_t y = 0; y < V; ++y) logscore[(size_t)y] = y == m ? 0.0 : std::log(a_t * xhat[(size_t)y] / (1 - a_t));
  sedd_analytic_weights(logscore.data(), V, m, m, std::log(a_s / a_t), false, w.data());
  absorbing_posterior(xhat.data(), V, m, m, a_t, a_s, q.data());
  check_close(w, q, 1e-14);
  sedd_analytic_weights(logscore.data(), V, m, m, -std::log(a_t), true, w.data());
  BOOST_TEST(w[m] == 0.0);
  const double total = sum(w);
  for (auto& e : w) e /= total;
  check_close(w, xhat, 1e-14);
  // An unmasked token stays.
  logscore[2] = 0.0;
  sedd_analytic_weights(logscore.data(), V, 2, m, std::log(a_s / a_t), false, w.data());
  for (int64_t y = 0; y < V; ++y) BOOST_TEST((w[(size_t)y] > 0) == (y == 2));
}

BOOST_AUTO_TEST_CASE(top_k_filter_hand_example) {
  // probabilities (0.15, 0.5, 0.05, 0.3, 0.0): the two largest are ids 1 and 3.
  const std::vector<double> p = {0.15, 0.5, 0.05, 0.3, 0.0};
  std::vector<int32_t> order;
  auto filtered = [&](int64_t k, int32_t exclude) {
    std::vector<double> l(5);
    for (int v = 0; v < 5; ++v) l[v] = p[v] > 0 ? std::log(p[v]) : -1e6;
    top_k_filter(l.data(), 5, k, exclude, order);
    for (auto& e : l) e = std::exp(e);
    return l;
  };
  check_close(filtered(2, -1), {0, 0.625, 0, 0.375, 0}, 1e-15);
  check_close(filtered(1, -1), {0, 1, 0, 0, 0}, 1e-15);  // greedy: the one-hot of the argmax
  check_close(filtered(1, 1), {0, 0, 0, 1, 0}, 1e-15);   // an excluded id (an absorbing [MASK]) is never kept
  check_close(filtered(3, 3), {0.15 / 0.7, 0.5 / 0.7, 0.05 / 0.7, 0, 0}, 1e-15);
  check_close(filtered(9, -1), {0.15, 0.5, 0.05, 0.3, 0}, 1e-15);
  // Ties: the lower id wins (deterministic), as torch.argmax's first maximum.
  std::vector<double> tie = {std::log(0.4), std::log(0.2), std::log(0.4)};
  top_k_filter(tie.data(), 3, 1, -1, order);
  BOOST_TEST(tie[0] == 0.0);
}

BOOST_AUTO_TEST_CASE(nucleus_filter_hand_example) {
  // probabilities (0.15, 0.5, 0.05, 0.3): sorted 0.5, 0.3, 0.15, 0.05 with cumulative 0.5, 0.8, 0.95, 1.
  const std::vector<double> p = {0.15, 0.5, 0.05, 0.3};
  std::vector<int32_t> order;
  auto filtered = [&](double top_p) {
    std::vector<double> l(4);
    for (int v = 0; v < 4; ++v) l[v] = std::log(p[v]);
    nucleus_filter(l.data(), 4, top_p, order);
    for (auto& e : l) e = std::exp(e);
    return l;
  };
  check_close(filtered(0.7), {0, 0.625, 0, 0.375}, 1e-15);  // 0.3 crosses 0.7 and is kept
  check_close(filtered(0.5), {0, 0.625, 0, 0.375}, 1e-15);  // 0.5 is not > 0.5: the next token is kept too
  check_close(filtered(0.4), {0, 1, 0, 0}, 1e-15);          // the top token is always kept
  check_close(filtered(0.9), {0.15 / 0.95, 0.5 / 0.95, 0, 0.3 / 0.95}, 1e-15);
  check_close(filtered(1.0), p, 1e-15);
}

BOOST_AUTO_TEST_CASE(categorical_primitive_is_deterministic_and_respects_zeros) {
  const std::vector<double> w = {0.0, 2.0, 0.0, 1.0, 0.0};
  const Philox rng{123, 4};
  int counts[5] = {0, 0, 0, 0, 0};
  for (uint64_t pos = 0; pos < 3000; ++pos) {
    const int32_t a = sample_categorical(w.data(), 5, rng, pos);
    BOOST_TEST(a == sample_categorical(w.data(), 5, rng, pos));
    ++counts[a];
  }
  BOOST_TEST(counts[0] + counts[2] + counts[4] == 0);
  BOOST_TEST(std::abs(counts[1] / 3000.0 - 2.0 / 3.0) < 0.04);  // ~4.5 standard deviations
}

// The full exponential race, every entry's key computed from philox_uniform: what sample_categorical must equal.
template <class T>
int32_t full_race(const std::vector<T>& w, const Philox& rng, uint64_t pos) {
  const int64_t V = (int64_t)w.size();
  int32_t best = 0;
  T best_key = -std::numeric_limits<T>::infinity();
  for (int64_t v = 0; v < V; ++v) {
    const T key = exp_race_key(w[(size_t)v], philox_uniform<T>(rng, (uint64_t)(pos * V + v)));
    if (key > best_key) { best_key = key; best = (int32_t)v; }
  }
  return best;
}

// The skipped logarithms and the shared Philox blocks change no draw: flat, peaked, sparse and tiny-weight rows, odd
// and even V (counters that start mid-block), float64 and float32.
template <class T>
void check_race_is_exact() {
  const Philox weights_rng{99, 1}, rng{2024, 7};
  int64_t draws = 0;
  for (int64_t V : {1, 2, 5, 64, 257, 4099}) {
    for (int shape = 0; shape < 4; ++shape) {
      std::vector<T> w((size_t)V);
      for (int64_t v = 0; v < V; ++v) {
        const double u = weights_rng.uniform_double((uint64_t)(V * 16 + shape * V + v));
        w[(size_t)v] = shape == 0 ? T(1)                                             // flat
                       : shape == 1 ? (T)std::exp(-30.0 * u)                          // peaked, many near zero
                       : shape == 2 ? (v % 7 == 0 ? (T)u : T(0))                      // sparse
                                    : (T)(1e-30 * u);                                 // tiny everywhere
      }
      for (uint64_t pos = 0; pos < 40; ++pos, ++draws)
        BOOST_TEST(sample_categorical(w.data(), V, rng, pos) == full_race(w, rng, pos),
                   "V " << V << " shape " << shape << " pos " << pos);
    }
  }
  BOOST_TEST(draws == 6 * 4 * 40);
}

BOOST_AUTO_TEST_CASE(pruned_race_draws_what_the_full_race_draws) {
  check_race_is_exact<double>();
  check_race_is_exact<float>();
}

BOOST_AUTO_TEST_CASE(python_round_and_linspace) {
  BOOST_TEST(python_round(128.5) == 128);
  BOOST_TEST(python_round(115.65) == 116);
  BOOST_TEST(python_round(2.5) == 2);
  BOOST_TEST(python_round(3.5) == 4);
  BOOST_TEST(python_round(0.49) == 0);
  const std::vector<double> g = linspace(1.0, 1e-5, 5);
  check_close(g, {1, 0.7500025, 0.500005, 0.2500075, 1e-5}, 1e-15);
  BOOST_TEST(g.back() == 1e-5);
  BOOST_TEST(linspace(0.3, 0.9, 1).size() == 1u);
}

// docs/test_vectors.md §7: log-linear, S = 4, one segment, eta = 0.05.
BOOST_AUTO_TEST_CASE(kappa_schedules_spec_vectors) {
  const AlphaSchedule sch = log_linear();
  const std::vector<double> grid = linspace(1.0, 1e-5, 5);
  check_close(segment_kappas("max-capped-0.05", grid.data(), 5, sch, false),
              {0.933266822377, 0.899900900891, 0.799805805626, 0, 1}, 1e-11);
  check_close(segment_kappas("max-rescale-0.05", grid.data(), 5, sch, true),
              {0.996663341119, 0.994995045045, 0.989990290281, 0.933354882588, 1}, 1e-11);
  // Default max-rescale: ReMDM's sigma = eta min(1, (1 - a_s)/a_t); the first three steps have the ratio >= 1.
  std::vector<double> want;
  for (int j = 0; j < 4; ++j) {
    const double a_t = sch.alpha(grid[j]), a_s = sch.alpha(grid[j + 1]);
    want.push_back(std::clamp(1 - 0.05 * std::min(1.0, (1 - a_s) / a_t) / (1 - a_s), 0.0, 1.0));
  }
  want.push_back(1);
  check_close(segment_kappas("max-rescale-0.05", grid.data(), 5, sch, false), want, 1e-15);
  BOOST_TEST(std::abs(want[0] - (1 - 0.05 / (1 - sch.alpha(grid[1])))) < 1e-15);
  check_close(segment_kappas("constant-remdm-0.05", grid.data(), 3, sch, false),
              {1 - 0.05 / (1 - sch.alpha(grid[1])), 1 - 0.05 / (1 - sch.alpha(grid[2])), 1}, 1e-15);
  check_close(segment_kappas("constant-0.3", grid.data(), 5, sch, false), {0.3, 0.3, 0.3, 0.3, 0.3}, 0);
  check_close(segment_kappas("pure-pc", grid.data(), 2, sch, false), {0, 0}, 0);
  BOOST_CHECK_THROW(segment_kappas("max-wobble-0.1", grid.data(), 5, sch, false), duo::Error);
  BOOST_CHECK_THROW(segment_kappas("max-capped-x", grid.data(), 5, sch, false), duo::Error);
}

BOOST_AUTO_TEST_CASE(linear_constant_linear_profile_spec_vectors) {
  const AlphaSchedule sch = log_linear();
  PsiConfig cfg;
  cfg.time_profile = "linear-constant-linear-0.9-inv";
  cfg.high_frac = 0.45;
  cfg.middle_frac = 0.5;
  cfg.high_mode = "pure-posterior";
  cfg.middle_mode = "constant-remdm-0.01";
  cfg.low_mode = "pure-posterior";
  const std::vector<double> grid = sampling_time_grid(256, 1e-5, true, cfg, sch);
  BOOST_REQUIRE_EQUAL(grid.size(), 257u);
  const double c = 1 - 0.9;  // get_t_for_alpha(0.9), ignoring eps like the reference
  // n_hi = 116 points from 1 to c, then 128 copies of c, then 13 points from c to 1e-5.
  BOOST_TEST(grid[0] == 1.0);
  BOOST_TEST(std::abs(grid[115] - c) < 1e-15);
  BOOST_TEST(grid[114] > c + 1e-6);
  for (int k = 116; k < 244; ++k) BOOST_TEST(grid[k] == c);
  BOOST_TEST(std::abs(grid[244] - c) < 1e-15);
  BOOST_TEST(grid[245] < c - 1e-6);
  BOOST_TEST(grid[256] == 1e-5);
  const std::vector<double> kappa = psi_kappas(grid, cfg, sch);
  BOOST_REQUIRE_EQUAL(kappa.size(), 257u);
  for (int k = 0; k < 116; ++k) BOOST_TEST(kappa[k] == 1.0);
  BOOST_TEST(std::abs(kappa[116] - 0.89990) < 1e-5);  // 1 - 0.01 / (1 - alpha(0.1)), alpha(0.1) = 0.9001
  BOOST_TEST(std::abs(kappa[116] - (1 - 0.01 / (1 - 0.9001))) < 1e-12);
  BOOST_TEST(kappa[242] == kappa[116]);
  BOOST_TEST(kappa[243] == 1.0);  // the last middle kappa
  for (int k = 244; k < 257; ++k) BOOST_TEST(kappa[k] == 1.0);
  // Non-Ψ predictors ignore the profile.
  const std::vector<double> lin = sampling_time_grid(256, 1e-5, false, cfg, sch);
  check_close(lin, linspace(1, 1e-5, 257), 0);
}

BOOST_AUTO_TEST_CASE(kappa_schedule_errors) {
  const AlphaSchedule sch = log_linear();
  PsiConfig cfg;
  cfg.time_profile = "linear";
  cfg.high_frac = 0.5;   // S = 1: n = 2, n_hi = 1 (round(1.0)), a one-point ReMDM segment
  cfg.middle_frac = 0.0;
  cfg.high_mode = "max-capped-0.01";
  const std::vector<double> grid = sampling_time_grid(1, 1e-5, true, cfg, sch);
  BOOST_CHECK_THROW(psi_kappas(grid, cfg, sch), duo::Error);
  cfg.high_mode = "constant-1.5";
  BOOST_CHECK_THROW(psi_kappas(grid, cfg, sch), duo::Error);
  cfg.time_profile = "cosine-ish";
  BOOST_CHECK_THROW(sampling_time_grid(4, 1e-5, true, cfg, sch), duo::Error);
  cfg.time_profile = "linear";
  cfg.high_frac = 0.8;
  cfg.middle_frac = 0.5;
  BOOST_CHECK_THROW(psi_kappas(linspace(1, 1e-5, 9), cfg, sch), duo::Error);
}

BOOST_AUTO_TEST_SUITE_END()
