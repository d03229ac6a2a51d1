// Curriculum learning (docs/curriculum.md): τ schedule, per-sequence scalars, the dense latent (its z_t marginal
// is the Diffusion Duality itself), the top-k sampler of Duo++ and its helpers (Φ⁻¹, truncated-normal log-mean-exp).
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <vector>
#include "algo/curriculum.h"
#include "algo/curriculum_efficient.h"
#include "algo/diffusion_transform.h"
#include "algo/integral_table.h"
#include "algo/transform_lookup.h"
#include "backend/cpu/cpu_ops.h"
#include "core/error.h"
#include "core/gaussian.h"
#include "core/normal_quantile.h"
#include "core/philox.h"

using namespace duo;

namespace {

void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    BOOST_ERROR("expected a duo::Error mentioning '" << needle << "'");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find(needle) != std::string::npos, "message: " << e.what());
    BOOST_TEST(!e.hint().empty(), "no HINT in: " << e.what());
  }
}

// A batch of one sequence per γ, L tokens each, random clean tokens.
struct TestBatch {
  std::vector<int32_t> x;
  std::vector<CurriculumSequence> seq;
  CurriculumBatch batch;
  TestBatch(const std::vector<double>& gammas, int64_t L, int64_t V, double inverse_tau, uint64_t seed) {
    const int64_t B = (int64_t)gammas.size();
    Philox tokens{seed, 99};
    for (int64_t r = 0; r < B * L; ++r) x.push_back((int32_t)(tokens.bits((uint64_t)r) % (uint32_t)V));
    for (double g : gammas) {
      CurriculumSequence q;
      q.gamma = g;
      gaussian_scales(g, &q.alpha_tilde, &q.sigma_tilde);
      seq.push_back(q);
    }
    batch.x = x.data();
    batch.seq = seq.data();
    batch.B = B; batch.L = L; batch.V = V;
    batch.inverse_tau = inverse_tau;
    batch.noise = Philox{seed, stream_id(7, 1)};
  }
};

// P(the clean coordinate is among the top k of V) = ∫ φ(z−μ) Σ_{m<k} C(N,m) Φ^{N−m}(1−Φ)^m dz, N = V−1, μ = e^{−γ/2}:
// composite Simpson in float64, the binomial terms in log space.
double prob_clean_in_top(int k, double gamma, int64_t V) {
  const double mu = std::exp(-gamma / 2), N = (double)(V - 1);
  const double lo = mu - 12, hi = mu + 12;
  const int n = 20000;
  const double h = (hi - lo) / n;
  std::vector<double> log_binom(k);
  for (int m = 0; m < k; ++m) log_binom[m] = std::lgamma(N + 1) - std::lgamma(m + 1.0) - std::lgamma(N - m + 1);
  double sum = 0;
  for (int i = 0; i <= n; ++i) {
    const double z = lo + i * h;
    const double lp = log_normal_cdf(z), lq = log_normal_cdf(-z);
    double f = 0;
    for (int m = 0; m < k; ++m) f += std::exp(log_binom[m] + (N - m) * lp + m * lq);
    f *= normal_pdf(z - mu);
    sum += f * ((i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2));
  }
  return sum * h / 3;
}

// Pearson's χ² of counts against a uniform expectation.
double chi_square_uniform(const std::vector<int64_t>& counts) {
  const double total = (double)std::accumulate(counts.begin(), counts.end(), int64_t{0});
  const double expect = total / (double)counts.size();
  double chi2 = 0;
  for (int64_t c : counts) chi2 += (c - expect) * (c - expect) / expect;
  return chi2;
}

// A binomial proportion check: |hits/n − p| within 4.5 standard deviations (+ slack for rounded p).
void check_proportion(int64_t hits, int64_t n, double p, double slack, const std::string& what) {
  const double phat = (double)hits / (double)n, sd = std::sqrt(p * (1 - p) / (double)n);
  BOOST_TEST(std::fabs(phat - p) <= 4.5 * sd + slack, what << ": observed " << phat << ", expected " << p
                                                           << " ± " << 4.5 * sd + slack);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(curriculum)

BOOST_AUTO_TEST_CASE(temperature_schedule) {
  CurriculumSettings s;
  s.tau_log10_start = -1; s.tau_log10_end = -2; s.start = 100; s.end = 200;  // the yaml defaults, scaled down
  BOOST_TEST(inverse_temperature(s, 0) == 10.0, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(inverse_temperature(s, 99) == 10.0, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(inverse_temperature(s, 100) == 10.0, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(inverse_temperature(s, 150) == std::pow(10.0, 1.5), boost::test_tools::tolerance(1e-14));
  BOOST_TEST(inverse_temperature(s, 199) == std::pow(10.0, 1.99), boost::test_tools::tolerance(1e-14));
  BOOST_TEST(inverse_temperature(s, 200) == 1e10, boost::test_tools::tolerance(1e-14));  // step == end quirk
  BOOST_TEST(inverse_temperature(s, 5000) == 1e10, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(curriculum_active(s, 0, true));
  BOOST_TEST(curriculum_active(s, 200, true));  // still the curriculum branch, with 1/τ = 1e10
  BOOST_TEST(!curriculum_active(s, 201, true));
  BOOST_TEST(!curriculum_active(s, 5, false));  // validation is always the true NELBO

  CurriculumSettings script;  // train_owt_duo.sh: τ = 1e-3 throughout, start 0, end 500k
  BOOST_TEST(inverse_temperature(script, 0) == 1000.0, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(inverse_temperature(script, 499999) == 1000.0, boost::test_tools::tolerance(1e-14));
  BOOST_TEST(inverse_temperature(script, 500000) == 1e10, boost::test_tools::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(bad_settings_are_errors) {
  CurriculumSettings s;
  s.gamma_min = -1; s.gamma_max = -2;
  expect_error([&] { s.validate(); }, "gamma_min");
  s.gamma_min = -2; s.gamma_max = -2;
  expect_error([&] { s.validate(); }, "gamma_min");
  s.gamma_min = NAN; s.gamma_max = -1;
  expect_error([&] { s.validate(); }, "finite");
  s = CurriculumSettings{};
  s.start = 10; s.end = 5;
  expect_error([&] { s.validate(); }, "start <= end");
  s = CurriculumSettings{};
  BOOST_CHECK_NO_THROW(s.validate());

  expect_error([] { check_top_k(1, 50258); }, "top_k = 1");
  expect_error([] { check_top_k(-1, 50258); }, "top_k = -1");
  expect_error([] { check_top_k(8, 8); }, "top_k = 8");
  BOOST_CHECK_NO_THROW(check_top_k(2, 50258));
  BOOST_CHECK_NO_THROW(check_top_k(7, 8));
  TestBatch tb({-2.0}, 4, 8, 1000, 1);
  std::vector<int32_t> z(4);
  expect_error([&] { efficient_latent_rows(tb.batch, 1, false, 0, 4, nullptr, nullptr, z.data()); }, "top_k");
  tb.x[2] = 8;  // out of the vocabulary
  expect_error([&] { simple_latent_rows(tb.batch, 0, 4, nullptr, z.data()); }, "outside [0, 8)");
}

BOOST_AUTO_TEST_CASE(sequence_scalars_from_the_table) {
  const DiffusionTransform T(8);
  const TransformLookup lookup(IntegralTable::compute(T, -4, 2, 601), 8);
  CurriculumSettings s;
  s.gamma_min = -3.5; s.gamma_max = -1.0;
  const CurriculumSequence q = curriculum_sequence(lookup, s, 0.4);
  BOOST_TEST(q.gamma == -2.5, boost::test_tools::tolerance(1e-15));
  const TransformPoint p = T.at_gamma(-2.5);
  BOOST_TEST(q.alpha == p.alpha, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(q.dalpha == 2.5 * p.dalpha_dgamma, boost::test_tools::tolerance(1e-7));
  BOOST_TEST(q.alpha_tilde == std::sqrt(1 / (1 + std::exp(-2.5))), boost::test_tools::tolerance(1e-15));
  BOOST_TEST(q.sigma_tilde == std::sqrt(1 / (1 + std::exp(2.5))), boost::test_tools::tolerance(1e-15));
  BOOST_TEST(q.sigma == -std::log(q.alpha), boost::test_tools::tolerance(1e-15));
  s.gamma_min = -5;  // below the table's grid: the reference would clip silently
  expect_error([&] { curriculum_sequence(lookup, s, 0.4); }, "not inside the integral table");
  s.gamma_min = -3.5;
  expect_error([&] { curriculum_sequence(lookup, s, 1.5); }, "outside [0, 1]");
}

// The Diffusion Duality: argmax of α̃e_x + σ̃ε is a USDM latent with P(z_t = x) = α + (1−α)/V, α = T(γ), and the
// wrong ids are uniform.
BOOST_AUTO_TEST_CASE(simple_latent_marginal_is_the_duality) {
  struct Case { int64_t V; std::vector<double> gammas; };
  for (const Case& c : {Case{8, {-3, -2, -1, 0, 1}}, Case{67, {-3, -2.5, -2, -1}}}) {
    const int64_t L = 20000, V = c.V;
    TestBatch tb(c.gammas, L, V, 1000, 11 + (uint64_t)V);
    std::vector<int32_t> z((size_t)(tb.batch.B * L));
    simple_latent_rows(tb.batch, 0, tb.batch.B * L, nullptr, z.data());
    const DiffusionTransform T(V);
    std::vector<int64_t> wrong((size_t)V - 1, 0);
    for (int64_t b = 0; b < tb.batch.B; ++b) {
      int64_t hits = 0;
      for (int64_t l = 0; l < L; ++l) {
        const int64_t r = b * L + l;
        if (z[r] == tb.x[r]) ++hits;
        else ++wrong[(size_t)((z[r] - tb.x[r] + V) % V - 1)];
      }
      const double alpha = T.at_gamma(c.gammas[b]).alpha;
      check_proportion(hits, L, alpha + (1 - alpha) / V, 0, str("V = ", V, ", γ = ", c.gammas[b], ": P(z_t = x)"));
    }
    // χ² with V−2 degrees of freedom; the bound is about the 1e-4 upper quantile.
    const double bound = V == 8 ? 27.9 : 120.0;
    BOOST_TEST(chi_square_uniform(wrong) < bound, "wrong ids not uniform at V = " << V);
  }
}

BOOST_AUTO_TEST_CASE(simple_soft_input_is_one_hot_for_tiny_tau) {
  const int64_t L = 500, V = 67;
  TestBatch tb({-3, -1.5}, L, V, 1e10, 5);  // 1/τ at step == end
  std::vector<float> y((size_t)(2 * L * V));
  std::vector<int32_t> z((size_t)(2 * L));
  simple_latent_rows(tb.batch, 0, 2 * L, y.data(), z.data());
  for (int64_t r = 0; r < 2 * L; ++r) {
    const float* row = y.data() + r * V;
    const float m = *std::max_element(row, row + V);
    double sum = 0;
    for (int64_t j = 0; j < V; ++j) sum += std::exp((double)row[j] - m);
    BOOST_REQUIRE(row[z[r]] == m);
    BOOST_REQUIRE(1.0 / sum > 1 - 1e-12);  // softmax(w/τ)[z_t]
  }
  // A moderate τ is genuinely soft: the soft input is not one-hot everywhere.
  tb.batch.inverse_tau = 3.0;
  simple_latent_rows(tb.batch, 0, 1, y.data(), nullptr);
  const float m = *std::max_element(y.begin(), y.begin() + V);
  double sum = 0;
  for (int64_t j = 0; j < V; ++j) sum += std::exp((double)y[j] - m);
  BOOST_TEST(1.0 / sum < 0.99);
}

BOOST_AUTO_TEST_CASE(simple_latent_is_reproducible_and_chunkable) {
  const int64_t L = 7, V = 13, B = 3;
  TestBatch tb({-3, -2, -1}, L, V, 20, 3);
  std::vector<float> y((size_t)(B * L * V)), y2(y.size()), chunk;
  std::vector<int32_t> z((size_t)(B * L)), z2(z.size());
  simple_latent_rows(tb.batch, 0, B * L, y.data(), z.data());
  // Rows filled in chunks, in reverse order, give the same numbers (the backward regenerates chunks).
  for (int64_t r1 = B * L; r1 > 0; r1 -= 5) {
    const int64_t r0 = std::max<int64_t>(0, r1 - 5);
    simple_latent_rows(tb.batch, r0, r1, y2.data() + r0 * V, z2.data() + r0);
  }
  BOOST_TEST(y == y2);
  BOOST_TEST(z == z2);
  // ε_{r,j} is normal number r·V + j of the stream.
  const int64_t r = 10;
  std::vector<float> eps((size_t)V), row((size_t)V);
  for (int64_t j = 0; j < V; ++j) eps[(size_t)j] = tb.batch.noise.normal((uint64_t)(r * V + j));
  const CurriculumSequence& q = tb.seq[(size_t)(r / L)];
  const int32_t zr = simple_latent_row(eps.data(), V, tb.x[r], (float)q.alpha_tilde, (float)q.sigma_tilde, 20.0f,
                                       row.data());
  BOOST_TEST(zr == z[r]);
  BOOST_TEST(std::equal(row.begin(), row.end(), y.begin() + r * V));
  // Another stream gives other noise.
  tb.batch.noise.subsequence += 1;
  simple_latent_rows(tb.batch, 0, B * L, y2.data(), z2.data());
  BOOST_TEST(y != y2);
}

// Ops::gaussian_relaxation on the CPU backend is the batch's dense latent (what DUO's training feeds the DiT), in
// float32 and, widened, in float64; with an empty soft_logits (distillation) only z, the same ids; bad ids and
// scales are errors.
BOOST_AUTO_TEST_CASE(backend_relaxation_is_the_simple_latent) {
  const int64_t L = 7, V = 13, B = 3, N = B * L;
  TestBatch tb({-3, -2, -1}, L, V, 20, 4);
  std::vector<float> y((size_t)(N * V)), y_op(y.size());
  std::vector<double> y64(y.size()), scales;
  std::vector<int32_t> z((size_t)N), z_op(z.size()), z64(z.size());
  simple_latent_rows(tb.batch, 0, N, y.data(), z.data());
  for (const CurriculumSequence& q : tb.seq) scales.insert(scales.end(), {q.alpha_tilde, q.sigma_tilde});
  CpuOps ops;
  Tensor x_t(tb.x.data(), DType::I32, {B, L}), sc_t(scales.data(), DType::F64, {B, 2});
  Tensor y_t(y_op.data(), DType::F32, {B, L, V}), z_t(z_op.data(), DType::I32, {N});
  Tensor y64_t(y64.data(), DType::F64, {B, L, V}), z64_t(z64.data(), DType::I32, {N});
  ops.gaussian_relaxation(y_t, z_t, x_t, sc_t, 20.0, tb.batch.noise);
  ops.gaussian_relaxation(y64_t, z64_t, x_t, sc_t, 20.0, tb.batch.noise);
  BOOST_TEST(y_op == y);
  BOOST_TEST(z_op == z);
  BOOST_TEST(z64 == z);
  BOOST_TEST(std::equal(y.begin(), y.end(), y64.begin(), [](float a, double b) { return double(a) == b; }));
  std::vector<int32_t> z_only(z.size(), -1);
  Tensor no_soft(nullptr, DType::F32, {B, L, V}), z_only_t(z_only.data(), DType::I32, {N});
  ops.gaussian_relaxation(no_soft, z_only_t, x_t, sc_t, 1.0, tb.batch.noise);
  BOOST_TEST(z_only == z);
  expect_error([&] { ops.gaussian_relaxation(y_t, z_t, x_t, sc_t, 0.0, tb.batch.noise); }, "1/τ");
  scales[2] = 0;
  expect_error([&] { ops.gaussian_relaxation(y_t, z_t, x_t, sc_t, 20.0, tb.batch.noise); }, "must be positive");
  scales[2] = 0.5;
  tb.x[5] = (int32_t)V;
  expect_error([&] { ops.gaussian_relaxation(y_t, z_t, x_t, sc_t, 20.0, tb.batch.noise); }, "outside [0, 13)");
  Tensor wrong(z_op.data(), DType::I32, {N - 1});
  BOOST_CHECK_THROW(ops.gaussian_relaxation(y_t, wrong, x_t, sc_t, 20.0, tb.batch.noise), Error);
}

BOOST_AUTO_TEST_CASE(simple_memory_plan) {
  const SimpleMemory m = simple_memory(32, 1024, 50258, 2048);
  BOOST_TEST(m.soft_logits == size_t{2048} * 50258 * 4);
  BOOST_TEST(m.latents == size_t{32} * 1024 * 4);
  BOOST_TEST(m.total == m.soft_logits + m.latents);
  BOOST_TEST(m.reference == size_t{4} * 32 * 1024 * 50258 * 4);  // 26.3 GB
  BOOST_TEST(simple_memory(2, 3, 10, 100).soft_logits == size_t{6} * 10 * 4);  // chunk capped at the batch
}

BOOST_AUTO_TEST_CASE(inverse_normal_cdf_round_trip) {
  // Known values.
  BOOST_TEST(normal_quantile(0.975) == 1.959963984540054, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(normal_quantile(0.5) == 0.0);
  BOOST_TEST(normal_quantile(0.0) == -INFINITY);
  BOOST_TEST(std::isnan(normal_quantile(1.5)));
  // Φ⁻¹(Φ(x)) = x to 1e-14 relative (Φ⁻¹ is well conditioned: dx/x = (Φ/(xφ))·dp/p ≈ dp/(x²p) in the tail).
  // x ≤ 0 only: above, p = Φ(x) itself is known only to 1e-16 absolute, and Φ⁻¹ works from 1 − p, the same code.
  for (double x = -37.5; x <= 0; x += 0.0173) {
    const double back = normal_quantile(normal_cdf(x));
    BOOST_REQUIRE_MESSAGE(std::fabs(back - x) <= 1e-14 * std::fabs(x) + 1e-16, "x = " << x << ": " << back);
  }
  // Φ(Φ⁻¹(p)) = p. This direction carries Φ's condition number |x·φ(x)/Φ(x)| ≈ x² in the tail, so beyond
  // |x| ≈ 3 the tolerance grows with x² (a few ulps of x become x² ulps of p).
  for (double lp = -300; lp <= std::log10(0.5); lp += 0.037) {
    const double p = std::pow(10.0, lp), x = normal_quantile(p);
    const double tol = std::max(1e-14, 1.5e-15 * (1 + x * x));
    BOOST_REQUIRE_MESSAGE(std::fabs(normal_cdf(x) - p) <= tol * p, "p = " << p << ": Φ(Φ⁻¹(p)) = " << normal_cdf(x));
  }
  for (double p = 0.001; p < 1; p += 0.00731) {  // the centre and both sides
    const double x = normal_quantile(p);
    BOOST_REQUIRE_MESSAGE(std::fabs(normal_cdf(x) - p) <= 1e-14 * std::min(p, 1 - p) + 2e-16,
                          "p = " << p << ": Φ(Φ⁻¹(p)) = " << normal_cdf(x));
  }
}

BOOST_AUTO_TEST_CASE(truncated_normal_log_mean_exp) {
  BOOST_TEST(log_mean_exp_truncated_normal(2, 1) == 0.350259130306, boost::test_tools::tolerance(3e-12));   // docs/test_vectors.md §8
  BOOST_TEST(log_mean_exp_truncated_normal(0.5, 0.3) == 0.004193137848, boost::test_tools::tolerance(3e-10));
  // Every branch against a direct quadrature of log ∫_{−∞}^{c} e^{x} φ(x/s) dx − log ∫_{−∞}^{c} φ(x/s) dx.
  auto quadrature = [](double c, double s) {  // composite Simpson on [c − 60s, c]
    const int n = 400000;
    const double lo = c - 60 * s, h = (c - lo) / n;
      auto logsum = [&](bool with_exp) {  // log Σ w_i f(x_i) in log space
      double m = -INFINITY;
      std::vector<double> v(n + 1);
      for (int i = 0; i <= n; ++i) {
        const double x = lo + i * h;
        v[i] = (with_exp ? x : 0.0) - 0.5 * (x / s) * (x / s) + std::log((i == 0 || i == n) ? 1.0 : (i % 2 ? 4.0 : 2.0));
        m = std::max(m, v[i]);
      }
      double sum = 0;
      for (double e : v) sum += std::exp(e - m);
      return m + std::log(sum);
    };
    return logsum(true) - logsum(false);
  };
  for (auto [c, s] : {std::pair{2.0, 1.0}, {1.0, 10.0}, {-60.0, 10.0}, {-3.0, 0.5}, {40.0, 3.0}})
    BOOST_TEST(log_mean_exp_truncated_normal(c, s) == quadrature(c, s), boost::test_tools::tolerance(1e-8));
  // 1/τ = 1e10 (step == end): s ~ 1e10; finite and just below c (E[e^X | X < c] < e^c).
  const double s = 0.93e10, c = 2e10, v = log_mean_exp_truncated_normal(c, s);
  BOOST_TEST(std::isfinite(v));
  BOOST_TEST(v < c);
  BOOST_TEST(v > c - 30);
}

BOOST_AUTO_TEST_CASE(order_statistics_match_brute_force) {
  const int64_t N = 19;
  const int k = 4, M = 40000;
  const double sigma = 0.8;
  const Philox a{21, 1}, b{21, 2};
  double s1 = 0, s1s = 0, sk = 0, sks = 0, b1 = 0, b1s = 0, bk = 0, bks = 0;
  std::vector<double> g(k), normals(N);
  for (int m = 0; m < M; ++m) {
    for (int j = 0; j < k; ++j) g[j] = a.uniform_double((uint64_t)(m * k + j));
    topk_order_statistics(g.data(), N, k, sigma, g.data());
    for (int j = 1; j < k; ++j) BOOST_REQUIRE(g[j] < g[j - 1]);
    s1 += g[0]; s1s += g[0] * g[0]; sk += g[k - 1]; sks += g[k - 1] * g[k - 1];
    for (int64_t j = 0; j < N; ++j) normals[j] = sigma * normal_quantile(b.uniform_double((uint64_t)(m * N + j)));
    std::sort(normals.begin(), normals.end(), std::greater<>());
    b1 += normals[0]; b1s += normals[0] * normals[0]; bk += normals[k - 1]; bks += normals[k - 1] * normals[k - 1];
  }
  auto check = [&](double sa, double sas, double sb, double sbs, const char* what) {
    const double ma = sa / M, mb = sb / M, va = sas / M - ma * ma, vb = sbs / M - mb * mb;
    BOOST_TEST(std::fabs(ma - mb) < 4.5 * std::sqrt((va + vb) / M), what << ": " << ma << " vs brute force " << mb);
    BOOST_TEST(std::fabs(va - vb) < 0.05 * vb, what << " variance: " << va << " vs " << vb);
  };
  check(s1, s1s, b1, b1s, "g_1");
  check(sk, sks, bk, bks, "g_k");
}

BOOST_AUTO_TEST_CASE(floyd_gives_uniform_ordered_tuples) {
  const int64_t n = 6;
  const int k = 3, M = 120000;
  const Philox rng{3, 4};
  std::vector<int64_t> counts(216, 0);
  int32_t out[3];
  for (int m = 0; m < M; ++m) {
    floyd_distinct(n, k, [&](int i) { return rng.uniform_double((uint64_t)(m * k + i)); }, out);
    BOOST_REQUIRE(out[0] != out[1]);
    BOOST_REQUIRE(out[0] != out[2]);
    BOOST_REQUIRE(out[1] != out[2]);
    for (int i = 0; i < k; ++i) BOOST_REQUIRE(out[i] >= 0 && out[i] < n);
    ++counts[(size_t)(out[0] * 36 + out[1] * 6 + out[2])];
  }
  std::vector<int64_t> seen;
  for (int64_t c : counts)
    if (c) seen.push_back(c);
  BOOST_TEST(seen.size() == 120u);  // every ordered triple occurs
  BOOST_TEST(chi_square_uniform(seen) < 200.0);  // 119 degrees of freedom; ~1e-4 upper quantile
}

// Exact labelling: P(z_t = x) = α + (1−α)/V; P(in_topk) as the order statistics say; the bag is well formed.
BOOST_AUTO_TEST_CASE(efficient_latent_marginals_and_bag) {
  struct Case { int64_t V; int k; std::vector<double> gammas; double chi2_bound; };  // bound: ~1e-4 quantile, V−2 dof
  for (const Case& c : {Case{8, 2, {-2, -1, 0}, 27.9}, Case{67, 3, {-3, -2.5, -2}, 120.0}}) {
    const int64_t L = 30000, V = c.V;
    const int k = c.k;
    TestBatch tb(c.gammas, L, V, 1000, 8 + (uint64_t)V);
    const DiffusionTransform T(V);
    std::vector<double> g(k), omega(k);
    std::vector<int32_t> ids(k);
    std::vector<int64_t> wrong((size_t)V - 1, 0), first((size_t)V - 1, 0);
    for (int64_t b = 0; b < tb.batch.B; ++b) {
      int64_t clean = 0, top = 0;
      for (int64_t l = 0; l < L; ++l) {
        const int64_t r = b * L + l;
        const int32_t x = tb.x[r];
        const TopkToken t = sample_topk_token(tb.batch.noise, (uint64_t)r, V, k, x, tb.seq[b].alpha_tilde,
                                              tb.seq[b].sigma_tilde, 1000, false, g.data(), ids.data(), omega.data());
        clean += t.z == x;
        top += t.in_topk;
        double sum = 0, largest = 0;
        for (int j = 0; j < k; ++j) {
          BOOST_REQUIRE(ids[j] >= 0 && ids[j] < V);
          BOOST_REQUIRE((ids[j] != x) == (j < k - 1 || !t.in_topk));
          for (int i = 0; i < j; ++i) BOOST_REQUIRE(ids[i] != ids[j]);
          BOOST_REQUIRE(omega[j] >= 0);
          sum += omega[j];
          largest = std::max(largest, omega[j]);
        }
        BOOST_REQUIRE(sum <= 1 + 1e-12);  // not renormalised: never more than the whole mass...
        BOOST_REQUIRE(largest >= 1.0 / (double)(V + k));  // ...and the largest term is at least its share of Z
        BOOST_REQUIRE(t.z == (t.clean_max ? x : ids[0]));
        BOOST_REQUIRE(t.in_topk || !t.clean_max);
        ++first[(size_t)((ids[0] - x + V) % V - 1)];
        if (t.z != x) ++wrong[(size_t)((t.z - x + V) % V - 1)];
      }
      const double alpha = T.at_gamma(c.gammas[b]).alpha;
      check_proportion(clean, L, alpha + (1 - alpha) / V, 0, str("V = ", V, ", γ = ", c.gammas[b], ": P(z_t = x)"));
      check_proportion(top, L, prob_clean_in_top(k, c.gammas[b], V), 0,
                       str("V = ", V, ", k = ", k, ", γ = ", c.gammas[b], ": P(in_topk)"));
    }
    BOOST_TEST(chi_square_uniform(wrong) < c.chi2_bound, "wrong latents not uniform at V = " << V);
    BOOST_TEST(chi_square_uniform(first) < c.chi2_bound, "the identity of g_1 is not uniform at V = " << V);
  }
}

// The reference's labelling (z_t = x whenever in_topk) inflates P(z_t = x): docs/curriculum.md §5's numbers at GPT-2 size.
BOOST_AUTO_TEST_CASE(efficient_reference_bug_at_gpt2_size) {
  const int64_t L = 40000, V = 50258;
  const std::vector<double> gammas = {-3, -2.5, -2};
  const double exact_spec[] = {0.596, 0.238, 0.072}, bug_spec[] = {0.680, 0.306, 0.103};
  const double alpha_spec[] = {5.962511764009e-01, 2.379638979467e-01, 7.202931965033e-02};  // docs/test_vectors.md §4, V = 50258
  TestBatch tb(gammas, L, V, 1000, 50);
  std::vector<int32_t> z_exact((size_t)(3 * L)), z_bug((size_t)(3 * L));
  efficient_latent_rows(tb.batch, 2, false, 0, 3 * L, nullptr, nullptr, z_exact.data());
  efficient_latent_rows(tb.batch, 2, true, 0, 3 * L, nullptr, nullptr, z_bug.data());
  for (int b = 0; b < 3; ++b) {
    int64_t ce = 0, cb = 0;
    for (int64_t l = 0; l < L; ++l) {
      const int64_t r = b * L + l;
      ce += z_exact[r] == tb.x[r];
      cb += z_bug[r] == tb.x[r];
      BOOST_REQUIRE(z_exact[r] == z_bug[r] || z_bug[r] == tb.x[r]);  // same draws, only the label differs
    }
    const double p_exact = alpha_spec[b] + (1 - alpha_spec[b]) / V, p_top2 = prob_clean_in_top(2, gammas[b], V);
    BOOST_TEST(std::fabs(p_exact - exact_spec[b]) < 5e-4);
    BOOST_TEST(std::fabs(p_top2 - bug_spec[b]) < 5e-4, "P(clean in top 2) = " << p_top2);
    check_proportion(ce, L, p_exact, 0, str("exact, γ = ", gammas[b]));
    check_proportion(cb, L, p_top2, 0, str("reference_bug, γ = ", gammas[b]));
  }
}

BOOST_AUTO_TEST_CASE(efficient_rows_are_reproducible_and_chunkable) {
  const int64_t L = 9, V = 67;
  const int k = 4;
  TestBatch tb({-3, -1.5}, L, V, 1000, 77);
  std::vector<int32_t> ids((size_t)(2 * L * k)), ids2(ids.size()), z((size_t)(2 * L)), z2(z.size());
  std::vector<float> w(ids.size()), w2(ids.size());
  efficient_latent_rows(tb.batch, k, false, 0, 2 * L, ids.data(), w.data(), z.data());
  for (int64_t r0 = 0; r0 < 2 * L; r0 += 4) {
    const int64_t r1 = std::min<int64_t>(2 * L, r0 + 4);
    efficient_latent_rows(tb.batch, k, false, r0, r1, ids2.data() + r0 * k, w2.data() + r0 * k, z2.data() + r0);
  }
  BOOST_TEST(ids == ids2);
  BOOST_TEST(w == w2);
  BOOST_TEST(z == z2);
  // The weights are ω_j = exp(βg_j − log Z) of the token's own draws.
  std::vector<double> g(k), omega(k);
  std::vector<int32_t> one(k);
  const TopkToken t = sample_topk_token(tb.batch.noise, 11, V, k, tb.x[11], tb.seq[1].alpha_tilde, tb.seq[1].sigma_tilde,
                                        1000, false, g.data(), one.data(), omega.data());
  for (int j = 0; j < k; ++j) {
    BOOST_TEST(one[j] == ids[11 * k + j]);
    BOOST_TEST(w[11 * k + j] == (float)std::exp(1000 * g[j] - t.log_z));
  }
}

BOOST_AUTO_TEST_SUITE_END()
