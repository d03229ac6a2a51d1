// The diffusion sampling loop over denoiser doubles with known output: one step's empirical distribution vs the
// exact posterior (chi-square; and that the test rejects a wrong posterior), greedy tail, ancestral_cache,
// prompt positions, determinism, end-to-end marginals of MDLM and SEDD, and configuration errors.
#include <boost/test/unit_test.hpp>
#include <omp.h>
#include <cmath>
#include <vector>
#include "core/error.h"
#include "math/absorbing_posterior.h"
#include "math/categorical.h"
#include "sample/diffusion_sampler.h"
#include "math/uniform_posterior.h"
#include "sampling_doubles.h"

using namespace duo;
using duo::testing::chi_square_p;
using duo::testing::random_simplex;
using duo::testing::TableDenoiser;

namespace {

AlphaSchedule log_linear() {
  return {[](double t) { return 1.0 - (1.0 - 1e-3) * t; }, [](double a) { return 1.0 - a; }};
}

// N copies of the row log x̂ (as the model would give them, in fp32).
std::vector<float> repeated_log_row(const std::vector<double>& xhat, int64_t N) {
  std::vector<float> out;
  for (int64_t n = 0; n < N; ++n)
    for (double p : xhat) out.push_back(p > 0 ? (float)std::log(p) : -1e6f);
  return out;
}

// x̂ as the sampler sees it: the fp32 log-probs cast back, exponentiated.
std::vector<double> as_sampled(const std::vector<double>& xhat) {
  std::vector<double> x;
  for (double p : xhat) x.push_back(p > 0 ? std::exp((double)(float)std::log(p)) : 0.0);
  return x;
}

std::vector<int64_t> histogram(const std::vector<int32_t>& z, int64_t V) {
  std::vector<int64_t> c((size_t)V, 0);
  for (int32_t t : z) {
    BOOST_REQUIRE(t >= 0);
    BOOST_REQUIRE(t < V);
    ++c[(size_t)t];
  }
  return c;
}

constexpr double kAccept = 1e-4;  // p-value threshold: a correct sampler fails with probability 1e-4 per seed

}  // namespace

BOOST_AUTO_TEST_SUITE(sampling)

BOOST_AUTO_TEST_CASE(duo_step_matches_posterior_chi_square) {
  const int64_t V = 5, N = 20000;
  const int32_t i = 2;
  const std::vector<double> xhat = random_simplex(V, 3);
  const std::vector<float> out = repeated_log_row(xhat, N);
  const double a_t = 0.5, a_s = 0.8;
  for (SamplePrecision prec : {SamplePrecision::f64, SamplePrecision::f32}) {
    DiffusionSamplerConfig cfg;
    cfg.precision = prec;
    cfg.seed = 2024;
    std::vector<int32_t> z((size_t)N, i);
    diffusion_update(cfg, out.data(), 1, N, V, {a_t, a_s, 1.0, false, 0}, nullptr, z.data());
    const std::vector<int64_t> counts = histogram(z, V);
    const std::vector<double> x = as_sampled(xhat);
    std::vector<double> exact((size_t)V), forward((size_t)V), no_self((size_t)V);
    duo_posterior(x.data(), V, i, a_t, a_s, exact.data());
    const double p_exact = chi_square_p(counts, exact);
    BOOST_TEST_MESSAGE("DUO step chi-square p = " << p_exact);
    BOOST_TEST(p_exact > kAccept, "p = " << p_exact);
    // Wrong posteriors are rejected: the forward marginal q(z_s | x̂) (ignores z_t), and the posterior without
    // the V a_t x̂_i [j = i] term.
    for (int64_t j = 0; j < V; ++j) {
      forward[(size_t)j] = a_s * x[(size_t)j] + (1 - a_s) / V;
      const double self_term = V * a_t * x[(size_t)i] / (V * a_t * x[(size_t)i] + 1 - a_t);
      no_self[(size_t)j] = exact[(size_t)j] - (j == i ? self_term : 0);
    }
    BOOST_TEST(chi_square_p(counts, forward) < kAccept);
    BOOST_TEST(chi_square_p(counts, no_self) < kAccept);
  }
}

// Top-k and greedy act on x̂ before the posterior (docs/sampling.md §6.1): the step draws from the posterior of
// the truncated x̂ (greedy: of the one-hot of its argmax), not from a truncated posterior, and not the argmax.
BOOST_AUTO_TEST_CASE(top_k_and_greedy_truncate_the_prediction) {
  const int64_t V = 6, N = 20000;
  const int32_t i = 4, m = 5;
  const std::vector<double> xhat = random_simplex(V, 21, m);  // no mass on m, so the same row serves both families
  const std::vector<float> out = repeated_log_row(xhat, N);
  const std::vector<double> x = as_sampled(xhat);
  std::vector<int32_t> order;
  for (DiffusionFamily fam : {DiffusionFamily::uniform, DiffusionFamily::mdlm})
    for (int64_t k : {1, 2}) {
      DiffusionSamplerConfig cfg;
      cfg.family = fam;
      cfg.mask_id = m;
      cfg.top_k = k;
      cfg.seed = 31 + (uint64_t)k;
      const int32_t start = fam == DiffusionFamily::uniform ? i : m;
      std::vector<int32_t> z((size_t)N, start);
      const double a_t = 0.4, a_s = 0.7;
      diffusion_update(cfg, out.data(), 1, N, V, {a_t, a_s, 1.0, false, 0}, nullptr, z.data());
      const std::vector<int64_t> counts = histogram(z, V);
      std::vector<double> lt((size_t)V), xt((size_t)V), exact((size_t)V), plain((size_t)V);
      for (int64_t v = 0; v < V; ++v) lt[(size_t)v] = x[(size_t)v] > 0 ? std::log(x[(size_t)v]) : -1e6;
      top_k_filter(lt.data(), V, k, fam == DiffusionFamily::uniform ? -1 : m, order);
      for (int64_t v = 0; v < V; ++v) xt[(size_t)v] = std::exp(lt[(size_t)v]);
      if (fam == DiffusionFamily::uniform) {
        duo_posterior(xt.data(), V, i, a_t, a_s, exact.data());
        duo_posterior(x.data(), V, i, a_t, a_s, plain.data());
      } else {
        absorbing_posterior(xt.data(), V, m, m, a_t, a_s, exact.data());
        absorbing_posterior(x.data(), V, m, m, a_t, a_s, plain.data());
      }
      const double p_ok = chi_square_p(counts, exact);
      BOOST_TEST(p_ok > kAccept, "k = " << k << ": p = " << p_ok);
      BOOST_TEST(chi_square_p(counts, plain) < kAccept);  // the truncation changed the draw
      // Not the argmax: with greedy the posterior still leaves other ids (the current one, the mask, noise).
      const int32_t top = argmax_row(x.data(), V);
      BOOST_TEST(counts[(size_t)top] < N);
    }
}

BOOST_AUTO_TEST_CASE(psi_step_matches_mixture_chi_square) {
  const int64_t V = 4, N = 20000;
  const std::vector<double> xhat = random_simplex(V, 8);
  const std::vector<float> out = repeated_log_row(xhat, N);
  DiffusionSamplerConfig cfg;
  cfg.predictor = Predictor::psi;
  cfg.seed = 99;
  std::vector<int32_t> z((size_t)N, 3);
  diffusion_update(cfg, out.data(), 1, N, V, {0.5, 0.8, 0.3, false, 5}, nullptr, z.data());
  const std::vector<int64_t> counts = histogram(z, V);
  const std::vector<double> x = as_sampled(xhat);
  std::vector<double> mix((size_t)V), plain((size_t)V);
  duo_psi_posterior(x.data(), V, 3, 0.5, 0.8, 0.3, mix.data());
  duo_posterior(x.data(), V, 3, 0.5, 0.8, plain.data());
  const double p_ok = chi_square_p(counts, mix);
  BOOST_TEST_MESSAGE("chi-square p = " << p_ok);
  BOOST_TEST(p_ok > kAccept);
  BOOST_TEST(chi_square_p(counts, plain) < kAccept);  // kappa = 0.3 is not the ancestral step
}

BOOST_AUTO_TEST_CASE(mdlm_step_matches_posterior_chi_square) {
  const int64_t V = 6, N = 20000;
  const int32_t m = 5;
  const std::vector<double> xhat = random_simplex(V, 4, m);
  const std::vector<float> out = repeated_log_row(xhat, N);
  DiffusionSamplerConfig cfg;
  cfg.family = DiffusionFamily::mdlm;
  cfg.mask_id = m;
  cfg.seed = 7;
  std::vector<int32_t> z((size_t)N, m);
  const double a_t = 0.3, a_s = 0.6;
  diffusion_update(cfg, out.data(), 1, N, V, {a_t, a_s, 1.0, false, 1}, nullptr, z.data());
  const std::vector<int64_t> counts = histogram(z, V);
  const std::vector<double> x = as_sampled(xhat);
  std::vector<double> exact((size_t)V), wrong((size_t)V);
  absorbing_posterior(x.data(), V, m, m, a_t, a_s, exact.data());
  const double p_ok = chi_square_p(counts, exact);
  BOOST_TEST_MESSAGE("chi-square p = " << p_ok);
  BOOST_TEST(p_ok > kAccept);
  // Wrong: unmasking probability a_s - a_t instead of (a_s - a_t)/(1 - a_t).
  for (int64_t v = 0; v < V; ++v) wrong[(size_t)v] = v == m ? 1 - (a_s - a_t) : (a_s - a_t) * x[(size_t)v];
  BOOST_TEST(chi_square_p(counts, wrong) < kAccept);
}

BOOST_AUTO_TEST_CASE(greedy_tail_is_the_argmax) {
  const int64_t V = 11, L = 40;
  std::vector<std::vector<double>> rows;
  for (int64_t l = 0; l < L; ++l) rows.push_back(random_simplex(V, 1000 + (uint64_t)l));
  TableDenoiser net(V, rows);
  DiffusionSamplerConfig cfg;
  cfg.steps = 3;
  cfg.noise_removal = NoiseRemoval::greedy;
  std::vector<int32_t> z((size_t)(2 * L));
  const SamplerStats st = sample_diffusion(net, log_linear(), cfg, 2, L, {}, z.data());
  BOOST_TEST(st.nfe == 4);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t l = 0; l < L; ++l) {
      const auto& r = rows[(size_t)l];
      const int32_t want = (int32_t)(std::max_element(r.begin(), r.end()) - r.begin());
      BOOST_TEST(z[(size_t)(b * L + l)] == want);
    }
}

BOOST_AUTO_TEST_CASE(all_families_give_valid_ids_and_are_deterministic) {
  const int64_t V = 9, B = 3, L = 17;
  const int32_t m = 8;
  std::vector<std::vector<double>> rows, rows_subs;
  for (int64_t l = 0; l < L; ++l) {
    rows.push_back(random_simplex(V, 50 + (uint64_t)l));
    rows_subs.push_back(random_simplex(V, 50 + (uint64_t)l, m));
  }
  struct Case { DiffusionFamily family; Predictor predictor; bool time_cond, sedd; double top_p; };
  const Case cases[] = {{DiffusionFamily::uniform, Predictor::ancestral, true, false, 1.0},
                        {DiffusionFamily::uniform, Predictor::ancestral, true, false, 0.8},
                        {DiffusionFamily::uniform, Predictor::psi, true, false, 1.0},
                        {DiffusionFamily::mdlm, Predictor::ancestral_cache, false, false, 1.0},
                        {DiffusionFamily::mdlm, Predictor::psi, false, false, 0.9},
                        {DiffusionFamily::d3pm, Predictor::ancestral, true, false, 1.0},
                        {DiffusionFamily::sedd, Predictor::analytic, true, true, 1.0}};
  for (const Case& c : cases) {
    const bool absorbing = c.family != DiffusionFamily::uniform;
    DiffusionSamplerConfig cfg;
    cfg.family = c.family;
    cfg.predictor = c.predictor;
    cfg.p_nucleus = c.top_p;
    cfg.steps = 12;
    cfg.mask_id = absorbing ? m : -1;
    cfg.psi.time_profile = "linear-constant-linear-0.5";
    cfg.psi.middle_mode = "constant-remdm-0.05";
    auto run = [&](uint64_t seed, int threads) {
      const bool subs = c.family == DiffusionFamily::mdlm;
      TableDenoiser net(V, subs ? rows_subs : rows, subs ? m : -1, c.time_cond, c.sedd);
      cfg.seed = seed;
      std::vector<int32_t> z((size_t)(B * L));
      const int saved = omp_get_max_threads();
      omp_set_num_threads(threads);
      sample_diffusion(net, log_linear(), cfg, B, L, {}, z.data());
      omp_set_num_threads(saved);
      return z;
    };
    const std::vector<int32_t> a = run(1, 2), b = run(1, 1), other = run(2, 2);
    BOOST_TEST(a == b);      // same seed: identical, on any thread count
    BOOST_TEST(a != other);  // another seed: other samples
    for (int32_t t : a) {
      BOOST_TEST(t >= 0);
      BOOST_TEST(t < V);
      if (absorbing) BOOST_TEST(t != m);  // the final ancestral step unmasks everything
    }
  }
}

BOOST_AUTO_TEST_CASE(mdlm_cache_saves_calls_and_keeps_samples) {
  const int64_t V = 6, L = 5;
  const int32_t m = 5;
  std::vector<std::vector<double>> rows;
  for (int64_t l = 0; l < L; ++l) rows.push_back(random_simplex(V, 70 + (uint64_t)l, m));
  DiffusionSamplerConfig cfg;
  cfg.family = DiffusionFamily::mdlm;
  cfg.mask_id = m;
  cfg.steps = 64;  // 5 tokens over 64 steps: most steps change nothing
  cfg.seed = 31;
  TableDenoiser plain_net(V, rows, m, false), cached_net(V, rows, m, false);
  std::vector<int32_t> plain(2 * L), cached(2 * L);
  cfg.predictor = Predictor::ancestral;
  const SamplerStats s_plain = sample_diffusion(plain_net, log_linear(), cfg, 2, L, {}, plain.data());
  cfg.predictor = Predictor::ancestral_cache;
  const SamplerStats s_cached = sample_diffusion(cached_net, log_linear(), cfg, 2, L, {}, cached.data());
  BOOST_TEST(s_plain.nfe == 65);
  BOOST_TEST(s_cached.nfe < 30);
  BOOST_TEST(s_cached.nfe >= 2);
  BOOST_TEST(s_cached.nfe == cached_net.calls);
  BOOST_TEST(plain == cached);
  // With `none` the final network call is skipped.
  cfg.predictor = Predictor::ancestral;
  cfg.noise_removal = NoiseRemoval::none;
  TableDenoiser none_net(V, rows, m, false);
  BOOST_TEST(sample_diffusion(none_net, log_linear(), cfg, 2, L, {}, plain.data()).nfe == 64);
}

BOOST_AUTO_TEST_CASE(prompt_positions_never_change) {
  const int64_t V = 7, B = 2, L = 12;
  const int32_t m = 6;
  std::vector<std::vector<double>> rows;
  for (int64_t l = 0; l < L; ++l) rows.push_back(random_simplex(V, 90 + (uint64_t)l, m));
  std::vector<int32_t> ids((size_t)(B * L), 0);
  std::vector<uint8_t> keep((size_t)(B * L), 0);
  for (int64_t l = 0; l < 4; ++l) { keep[(size_t)l] = 1; ids[(size_t)l] = (int32_t)(l % 3); }  // row 0: a prefix
  keep[(size_t)(L + 7)] = 1; ids[(size_t)(L + 7)] = 4;                                   // row 1: one infill position
  for (DiffusionFamily fam : {DiffusionFamily::uniform, DiffusionFamily::mdlm}) {
    for (Predictor pred : {Predictor::ancestral, Predictor::psi}) {
      DiffusionSamplerConfig cfg;
      cfg.family = fam;
      cfg.predictor = fam == DiffusionFamily::mdlm && pred == Predictor::ancestral ? Predictor::ancestral_cache : pred;
      cfg.mask_id = m;
      cfg.steps = 10;
      cfg.psi.high_mode = cfg.psi.middle_mode = cfg.psi.low_mode = "pure-pc";  // re-noises everything else
      cfg.noise_removal = NoiseRemoval::greedy;
      TableDenoiser net(V, rows, fam == DiffusionFamily::mdlm ? m : -1, fam != DiffusionFamily::mdlm);
      std::vector<int32_t> z((size_t)(B * L));
      sample_diffusion(net, log_linear(), cfg, B, L, {ids.data(), keep.data()}, z.data());
      BOOST_TEST(net.calls >= 2);
      for (const auto& in : net.inputs)  // fed to the model at every call
        for (size_t p = 0; p < in.size(); ++p)
          if (keep[p]) BOOST_TEST(in[p] == ids[p]);
      for (size_t p = 0; p < z.size(); ++p)
        if (keep[p]) BOOST_TEST(z[p] == ids[p]);
    }
  }
}

// Infill: with a denoiser whose output at a position depends only on that position's own input (TableDenoiser),
// the free positions of a run with a template (prefix, middle span, suffix) take exactly the values of the run
// without it, for every family and predictor: the template changes nothing but the fixed positions, which are
// fed to the model and never change. (The draws at a position depend only on (seed, step, position), so this
// holds bitwise by construction.)
BOOST_AUTO_TEST_CASE(template_leaves_the_free_positions_chain_unchanged) {
  const int64_t V = 7, B = 2, L = 16;
  const int32_t m = 6;
  std::vector<std::vector<double>> rows;
  for (int64_t l = 0; l < L; ++l) rows.push_back(random_simplex(V, 300 + (uint64_t)l, m));
  std::vector<int32_t> ids((size_t)(B * L), 0);
  std::vector<uint8_t> keep((size_t)(B * L), 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t l : {0, 1, 7, 8, 9, 14, 15}) {  // prefix, a middle span, a suffix
      keep[(size_t)(b * L + l)] = 1;
      ids[(size_t)(b * L + l)] = (int32_t)((l + b) % 6);
    }
  struct Case { DiffusionFamily fam; Predictor pred; NoiseRemoval tail; };
  for (const Case c : {Case{DiffusionFamily::uniform, Predictor::ancestral, NoiseRemoval::ancestral},
                       Case{DiffusionFamily::uniform, Predictor::psi, NoiseRemoval::greedy},
                       Case{DiffusionFamily::mdlm, Predictor::ancestral_cache, NoiseRemoval::ancestral},
                       Case{DiffusionFamily::d3pm, Predictor::ancestral, NoiseRemoval::ancestral},
                       Case{DiffusionFamily::sedd, Predictor::analytic, NoiseRemoval::ancestral}}) {
    DiffusionSamplerConfig cfg;
    cfg.family = c.fam;
    cfg.predictor = c.pred;
    cfg.noise_removal = c.tail;
    cfg.mask_id = m;
    cfg.steps = 12;
    cfg.seed = 5;
    const bool sedd = c.fam == DiffusionFamily::sedd;
    const int32_t carry = c.fam == DiffusionFamily::mdlm ? m : -1;
    TableDenoiser free_net(V, rows, carry, c.fam != DiffusionFamily::mdlm, sedd);
    TableDenoiser fixed_net(V, rows, carry, c.fam != DiffusionFamily::mdlm, sedd);
    std::vector<int32_t> z_free((size_t)(B * L)), z_fixed((size_t)(B * L));
    sample_diffusion(free_net, log_linear(), cfg, B, L, {}, z_free.data());
    sample_diffusion(fixed_net, log_linear(), cfg, B, L, {ids.data(), keep.data()}, z_fixed.data());
    int64_t differ_from_template = 0;
    for (size_t p = 0; p < z_free.size(); ++p) {
      if (keep[p]) {
        BOOST_TEST(z_fixed[p] == ids[p]);
        differ_from_template += z_free[p] != ids[p];
      } else {
        BOOST_TEST(z_fixed[p] == z_free[p], "family " << (int)c.fam << " position " << p);
      }
    }
    BOOST_TEST(differ_from_template > 0);  // the template really changed something
    for (const auto& in : fixed_net.inputs)
      for (size_t p = 0; p < in.size(); ++p)
        if (keep[p]) BOOST_TEST(in[p] == ids[p]);
  }
}

// With a denoiser that is exact for a product distribution x̂ (MDLM: SUBS rows; SEDD: the exact score), every
// step is the exact reverse posterior, so the final samples are distributed as x̂, for any number of steps.
BOOST_AUTO_TEST_CASE(absorbing_samplers_end_at_the_data_distribution) {
  const int64_t V = 5, B = 4, L = 1000;
  const int32_t m = 4;
  const std::vector<double> xhat = random_simplex(V, 12, m);
  std::vector<int32_t> mdlm_samples;
  for (DiffusionFamily fam : {DiffusionFamily::mdlm, DiffusionFamily::sedd}) {
    const bool sedd = fam == DiffusionFamily::sedd;
    TableDenoiser net(V, {xhat}, sedd ? -1 : m, sedd, sedd);
    DiffusionSamplerConfig cfg;
    cfg.family = fam;
    cfg.predictor = sedd ? Predictor::analytic : Predictor::ancestral_cache;
    cfg.mask_id = m;
    cfg.steps = 7;
    cfg.seed = 5;
    std::vector<int32_t> z((size_t)(B * L));
    sample_diffusion(net, log_linear(), cfg, B, L, {}, z.data());
    const std::vector<int64_t> counts = histogram(z, V);
    BOOST_TEST(counts[m] == 0);
    const double p_ok = chi_square_p(counts, as_sampled(xhat));
    BOOST_TEST_MESSAGE("chi-square p = " << p_ok);
    BOOST_TEST(p_ok > kAccept);
    std::vector<double> skewed = as_sampled(xhat);
    skewed[0] *= 1.15;
    BOOST_TEST(chi_square_p(counts, skewed) < kAccept);
    // Same seed and (up to fp32 rounding of the model output) the same weights at every step: the exact-score
    // SEDD chain draws the very samples of the MDLM chain.
    if (!sedd) mdlm_samples = z;
    else BOOST_TEST(z == mdlm_samples);
  }
}

// D3PM's output is a plain log-softmax (no carry-over; it even gives [MASK] mass): the sampler still keeps every
// unmasked token (the ch-1 behaviour), so along the chain a token, once unmasked, never changes.
BOOST_AUTO_TEST_CASE(d3pm_carries_over_unmasked_tokens) {
  const int64_t V = 6, B = 3, L = 30;
  const int32_t m = 5;
  TableDenoiser net(V, {random_simplex(V, 21)}, -1, true);  // x̂_m > 0
  DiffusionSamplerConfig cfg;
  cfg.family = DiffusionFamily::d3pm;
  cfg.mask_id = m;
  cfg.steps = 20;
  cfg.seed = 8;
  std::vector<int32_t> z((size_t)(B * L));
  sample_diffusion(net, log_linear(), cfg, B, L, {}, z.data());
  net.inputs.push_back(z);
  int64_t unmasked_midway = 0;
  for (size_t k = 1; k < net.inputs.size(); ++k)
    for (size_t p = 0; p < z.size(); ++p)
      if (net.inputs[k - 1][p] != m) BOOST_TEST(net.inputs[k][p] == net.inputs[k - 1][p]);
  for (int32_t t : net.inputs[net.inputs.size() / 2]) unmasked_midway += t != m;
  BOOST_TEST(unmasked_midway > 0);  // the check above had tokens to look at
  BOOST_TEST(unmasked_midway < B * L);
}

BOOST_AUTO_TEST_CASE(configuration_errors) {
  const int64_t V = 5;
  TableDenoiser duo_net(V, {random_simplex(V, 1)});
  std::vector<int32_t> z(8);
  DiffusionSamplerConfig cfg;
  cfg.steps = 2;
  cfg.predictor = Predictor::ancestral_cache;  // DUO is time-conditioned
  BOOST_CHECK_THROW(sample_diffusion(duo_net, log_linear(), cfg, 2, 4, {}, z.data()), duo::Error);
  cfg.predictor = Predictor::analytic;  // SEDD's only
  BOOST_CHECK_THROW(sample_diffusion(duo_net, log_linear(), cfg, 2, 4, {}, z.data()), duo::Error);
  cfg.predictor = Predictor::ancestral;
  cfg.p_nucleus = 0;
  BOOST_CHECK_THROW(sample_diffusion(duo_net, log_linear(), cfg, 2, 4, {}, z.data()), duo::Error);
  cfg.p_nucleus = 1;
  cfg.family = DiffusionFamily::mdlm;
  cfg.mask_id = 5;  // out of range
  BOOST_CHECK_THROW(sample_diffusion(duo_net, log_linear(), cfg, 2, 4, {}, z.data()), duo::Error);
  cfg.mask_id = 4;
  cfg.precision = SamplePrecision::f32;
  BOOST_CHECK_THROW(sample_diffusion(duo_net, log_linear(), cfg, 2, 4, {}, z.data()), duo::Error);
  cfg.precision = SamplePrecision::f64;
  cfg.family = DiffusionFamily::sedd;  // needs the analytic predictor
  BOOST_CHECK_THROW(sample_diffusion(duo_net, log_linear(), cfg, 2, 4, {}, z.data()), duo::Error);
  cfg.family = DiffusionFamily::uniform;
  std::vector<int32_t> ids(8, 9);
  std::vector<uint8_t> keep(8, 1);  // prompt id 9 is out of range
  const Prompt bad{ids.data(), keep.data()};
  BOOST_CHECK_THROW(sample_diffusion(duo_net, log_linear(), cfg, 2, 4, bad, z.data()), duo::Error);
}

BOOST_AUTO_TEST_SUITE_END()
