// The diffusion sampling loop: see diffusion_sampler.h. Per-token math lives in uniform_posterior.h and
// absorbing_posterior.h (shared with the CUDA kernels); this file owns the loop, the cache and validation.
#include "sample/diffusion_sampler.h"

#include <cmath>
#include <vector>
#include "core/error.h"
#include "core/philox.h"
#include "core/rng_streams.h"
#include "core/simd.h"
#include "math/absorbing_posterior.h"
#include "math/categorical.h"
#include "math/exp_f64.h"
#include "math/uniform_posterior.h"

namespace duo {

namespace {


bool absorbing(DiffusionFamily f) { return f != DiffusionFamily::uniform; }

void validate(const DiffusionSamplerConfig& cfg, int64_t V, bool time_conditioned) {
  const char* where = "sampling";
  DUO_CHECK(V >= 2, where, str("the model has ", V, " categories"), "the denoiser's vocab_size() must be >= 2");
  if (absorbing(cfg.family))
    DUO_CHECK(cfg.mask_id >= 0 && cfg.mask_id < V, "sampling.mask_id",
              str("mask id ", cfg.mask_id, " is not in [0, ", V, ")"), "set the tokenizer's [MASK] id");
  const bool sedd = cfg.family == DiffusionFamily::sedd;
  DUO_CHECK(sedd == (cfg.predictor == Predictor::analytic), "sampling.predictor",
            sedd ? "SEDD samples with the analytic predictor only" : "the analytic predictor is SEDD's",
            sedd ? "use --sampling.predictor analytic" : "use ancestral, ancestral_cache or psi");
  DUO_CHECK(!(cfg.predictor == Predictor::ancestral_cache && time_conditioned), "sampling.predictor",
            "ancestral_cache reuses the prediction of an unchanged sequence, which is wrong for a time-conditioned "
            "model",
            "use --sampling.predictor ancestral (ancestral_cache is for MDLM)");
  DUO_CHECK(cfg.p_nucleus > 0 && cfg.p_nucleus <= 1, "sampling.p_nucleus", str("got ", cfg.p_nucleus),
            "use a value in (0, 1]; 1 disables top-p");
  DUO_CHECK(!(sedd && cfg.p_nucleus < 1), "sampling.p_nucleus", "SEDD's model output is a score, not log-probs",
            "set p_nucleus = 1 for SEDD");
  DUO_CHECK(cfg.top_k >= 0, "sampling.top_k", str("got ", cfg.top_k), "use 0 (off) or a positive k");
  DUO_CHECK(!(sedd && cfg.top_k > 0), "sampling.top_k", "SEDD's model output is a score, not log-probs",
            "set top_k = 0 for SEDD");
  DUO_CHECK(!(cfg.precision == SamplePrecision::f32 && (cfg.family == DiffusionFamily::mdlm ||
                                                         cfg.family == DiffusionFamily::d3pm)),
            "sampling.use_float64", "the absorbing posterior requires float64 (as in the reference)",
            "sample MDLM / D3PM in float64");
  DUO_CHECK(cfg.steps >= 1, "sampling.steps", str("got ", cfg.steps), "use at least one step");
}

// One step's update of every position. Its loops run over rows of V (50k) entries: the clones let them vectorise
// at the CPU's width (core/simd.h), which is most of the sampler's speed.
template <class T>
DUO_SIMD_CLONES bool update_impl(const DiffusionSamplerConfig& cfg, const float* out, int64_t B, int64_t L, int64_t V,
                 const StepArgs& args, const uint8_t* keep, int32_t* z) {
  const Philox rng{cfg.seed, stream_id(streams::kSamplerStep, args.step)};
  const Philox mixture_rng{cfg.seed, stream_id(streams::kSamplerMixture, args.step)};
  const bool psi = cfg.predictor == Predictor::psi && !args.final_step;
  const int32_t m = cfg.mask_id;
  const T a_t = (T)args.alpha_t, a_s = args.final_step ? T(1) : (T)args.alpha_s, kappa = (T)args.kappa;
  const int64_t N = B * L;
  int64_t changed = 0;
#pragma omp parallel reduction(+ : changed)
  {
    std::vector<T> row((size_t)V), w((size_t)V), u((size_t)V);
    std::vector<int32_t> order;
#pragma omp for schedule(static)
    for (int64_t pos = 0; pos < N; ++pos) {
      if (keep && keep[pos]) continue;
      const int32_t zt = z[pos];
      // An unmasked token of an absorbing chain cannot change (carry-over), except under Ψ's re-masking.
      if (absorbing(cfg.family) && zt != m && !psi) continue;
      const float* o = out + pos * V;
      const bool filtered = cfg.top_k > 0 || cfg.p_nucleus < 1;
      int32_t next = zt;
      if (cfg.family == DiffusionFamily::uniform && !filtered) {
        // DUO's step (ancestral or Ψ) as the mixture it is (docs/sampling.md §4.1): stay at z_t, a uniform id, or
        // a draw from x̂. Only the last needs the row (x̂_j = exp(log p_j), then the race); the others cost O(1).
        const double xi = exp_f64((double)(T)o[zt]);
        const DuoMixture mix = psi ? duo_psi_posterior_mixture(xi, V, (double)a_t, (double)a_s, (double)kappa)
                                   : duo_posterior_mixture(xi, V, (double)a_t, (double)a_s);
        const double r = mixture_rng.uniform_double(2 * (uint64_t)pos) * (mix.stay + mix.uniform + mix.predict);
        if (r >= mix.stay && r < mix.stay + mix.uniform) {
          next = (int32_t)std::min<int64_t>(V - 1, (int64_t)(mixture_rng.uniform_double(2 * (uint64_t)pos + 1) * (double)V));
        } else if (r >= mix.stay + mix.uniform) {
          for (int64_t v = 0; v < V; ++v) w[(size_t)v] = (T)exp_f64((double)(T)o[v]);
          next = sample_categorical(w.data(), V, rng, (uint64_t)pos, u);
        }
      } else {  // the posterior's V weights, then the race
        if (cfg.family == DiffusionFamily::sedd) {
          for (int64_t v = 0; v < V; ++v) row[(size_t)v] = (T)o[v];
          // dsigma = sigma_t - sigma_s with sigma = -log alpha; the final step has alpha_s = 1.
          const T dsigma = std::log(a_s) - std::log(a_t);
          sedd_analytic_weights(row.data(), V, zt, m, dsigma, args.final_step, w.data());
        } else {
          for (int64_t v = 0; v < V; ++v) row[(size_t)v] = (T)o[v];
          // Truncations act on the prediction x̂, before the posterior (docs/sampling.md §6): top-k, then top-p.
          if (cfg.top_k > 0) top_k_filter(row.data(), V, cfg.top_k, absorbing(cfg.family) ? m : -1, order);
          if (cfg.p_nucleus < 1) nucleus_filter(row.data(), V, cfg.p_nucleus, order);
          for (int64_t v = 0; v < V; ++v) row[(size_t)v] = (T)exp_f64((double)row[(size_t)v]);  // x̂
          if (cfg.family == DiffusionFamily::uniform) {  // filtered x̂
            if (psi) duo_psi_posterior(row.data(), V, zt, a_t, a_s, kappa, w.data());
            else duo_posterior(row.data(), V, zt, a_t, a_s, w.data());
          } else {
            if (psi) absorbing_psi_posterior(row.data(), V, zt, m, a_t, a_s, kappa, w.data());
            else absorbing_posterior(row.data(), V, zt, m, a_t, a_s, w.data());
          }
        }
        next = sample_categorical(w.data(), V, rng, (uint64_t)pos, u);
      }
      if (next != zt) {
        z[pos] = next;
        ++changed;
      }
    }
  }
  return changed > 0;
}

}  // namespace

bool diffusion_update(const DiffusionSamplerConfig& cfg, const float* out, int64_t B, int64_t L, int64_t V,
                      const StepArgs& args, const uint8_t* keep, int32_t* z) {
  if (cfg.precision == SamplePrecision::f32) return update_impl<float>(cfg, out, B, L, V, args, keep, z);
  return update_impl<double>(cfg, out, B, L, V, args, keep, z);
}

SamplerStats sample_diffusion(Denoiser& net, const AlphaSchedule& schedule, const DiffusionSamplerConfig& cfg,
                              int64_t B, int64_t L, const Prompt& prompt, int32_t* z) {
  const int64_t V = net.vocab_size();
  validate(cfg, V, net.time_conditioned());
  DUO_CHECK(B >= 1 && L >= 1, "sampling", str("asked for ", B, " sequences of length ", L),
            "use a positive batch size and sequence length");
  DUO_CHECK(bool(schedule.alpha), "sampling", "no noise schedule given", "set AlphaSchedule::alpha");
  DUO_CHECK((prompt.ids == nullptr) == (prompt.keep == nullptr), "sampling prompt",
            "a prompt needs both its ids and its keep mask", "pass both or neither");
  const int64_t N = B * L;

  const bool psi = cfg.predictor == Predictor::psi;
  const std::vector<double> grid = sampling_time_grid(cfg.steps, cfg.t_min, psi, cfg.psi, schedule);
  const std::vector<double> kappa = psi ? psi_kappas(grid, cfg.psi, schedule) : std::vector<double>();

  // Prior: uniform over all V ids (uniform state) or all [MASK]; then the prompt.
  const Philox prior{cfg.seed, stream_id(streams::kSamplerPrior)};
  for (int64_t p = 0; p < N; ++p) {
    if (absorbing(cfg.family)) {
      z[p] = cfg.mask_id;
    } else {
      const int64_t id = (int64_t)(prior.uniform_double((uint64_t)p) * (double)V);
      z[p] = (int32_t)(id < V ? id : V - 1);
    }
    prompt.apply(p, V, z);
  }

  SamplerStats stats;
  std::vector<float> out((size_t)(N * V));
  std::vector<double> sigma((size_t)B);
  auto evaluate = [&](double alpha_t) {
    for (auto& s : sigma) s = -std::log(alpha_t);  // the network's time input s_t = -log alpha_t
    net.log_probs(z, B, L, sigma.data(), out.data());
    ++stats.nfe;
  };

  // ancestral_cache: when no token changed, the (time-independent) prediction at z is still valid.
  bool cached = false;
  for (int64_t i = 0; i < cfg.steps; ++i) {
    StepArgs args;
    args.alpha_t = schedule.alpha(grid[(size_t)i]);
    args.alpha_s = schedule.alpha(grid[(size_t)i + 1]);
    args.kappa = psi ? kappa[(size_t)i] : 1.0;
    args.step = (uint64_t)i;
    if (!cached) evaluate(args.alpha_t);
    const bool changed = diffusion_update(cfg, out.data(), B, L, V, args, prompt.keep, z);
    cached = cfg.predictor == Predictor::ancestral_cache && !changed;
  }

  const double alpha_last = schedule.alpha(grid.back());
  if (cfg.noise_removal == NoiseRemoval::ancestral) {
    StepArgs args;
    args.alpha_t = alpha_last;
    args.final_step = true;
    args.step = (uint64_t)cfg.steps;
    if (!cached) evaluate(alpha_last);
    diffusion_update(cfg, out.data(), B, L, V, args, prompt.keep, z);
  } else if (cfg.noise_removal == NoiseRemoval::greedy) {
    // Greedy tail: z <- argmax of the model output at t_S (the reference always calls the network here).
    evaluate(alpha_last);
    for (int64_t p = 0; p < N; ++p)
      if (!(prompt.keep && prompt.keep[p])) z[p] = argmax_row(out.data() + p * V, V);
  }
  return stats;
}

}  // namespace duo
