// The diffusion sampling loop: see diffusion_sampler.h. The rows' update lives in math/sampling_step.h (shared with
// the backends' Ops::diffusion_step); this file owns the loop, the cache and validation.
#include "sample/diffusion_sampler.h"

#include <cmath>
#include <vector>
#include "core/error.h"
#include "core/philox.h"
#include "core/rng_streams.h"

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

// The step's settings from the sampler's configuration and the step's times.
DiffusionStepArgs step_args(const DiffusionSamplerConfig& cfg, const StepArgs& s) {
  DiffusionStepArgs a;
  a.family = cfg.family;
  a.precision = cfg.precision;
  a.mask_id = cfg.mask_id;
  a.psi = cfg.predictor == Predictor::psi;
  a.top_k = cfg.top_k;
  a.p_nucleus = cfg.p_nucleus;
  a.seed = cfg.seed;
  a.alpha_t = s.alpha_t;
  a.alpha_s = s.alpha_s;
  a.kappa = s.kappa;
  a.final_step = s.final_step;
  a.step = s.step;
  return a;
}

}  // namespace

bool diffusion_update(const DiffusionSamplerConfig& cfg, const float* out, int64_t B, int64_t L, int64_t V,
                      const StepArgs& args, const uint8_t* keep, int32_t* z) {
  return diffusion_update_rows(step_args(cfg, args), out, B * L, V, keep, z) > 0;
}

int64_t Denoiser::evaluate_and_update(int32_t*, int64_t, int64_t, const double*, const DiffusionStepArgs&,
                                      const uint8_t*, bool) {
  fail("sampling", "this denoiser does not update in place (updates_in_place() is false)",
       "call log_probs and diffusion_update");
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
  // The network's output post-processed on the host (log_probs), or where it lives (evaluate_and_update): then only
  // ids travel.
  const bool in_place = net.updates_in_place();
  std::vector<float> out(in_place ? 0 : (size_t)(N * V));
  std::vector<double> sigma((size_t)B);
  // One update from the network's output at z: a new evaluation at alpha_t, or (reuse) the last one's.
  auto update = [&](const StepArgs& s, bool greedy, bool reuse) {
    DiffusionStepArgs a = step_args(cfg, s);
    a.greedy = greedy;
    if (!reuse) {
      for (auto& v : sigma) v = -std::log(s.alpha_t);  // the network's time input s_t = -log alpha_t
      ++stats.nfe;
    }
    if (in_place) return net.evaluate_and_update(z, B, L, sigma.data(), a, prompt.keep, reuse) > 0;
    if (!reuse) net.log_probs(z, B, L, sigma.data(), out.data());
    return diffusion_update_rows(a, out.data(), N, V, prompt.keep, z) > 0;
  };

  // ancestral_cache: when no token changed, the (time-independent) prediction at z is still valid.
  bool cached = false;
  for (int64_t i = 0; i < cfg.steps; ++i) {
    StepArgs args;
    args.alpha_t = schedule.alpha(grid[(size_t)i]);
    args.alpha_s = schedule.alpha(grid[(size_t)i + 1]);
    args.kappa = psi ? kappa[(size_t)i] : 1.0;
    args.step = (uint64_t)i;
    const bool changed = update(args, /*greedy=*/false, /*reuse=*/cached);
    cached = cfg.predictor == Predictor::ancestral_cache && !changed;
  }

  StepArgs last;
  last.alpha_t = schedule.alpha(grid.back());
  last.final_step = true;
  last.step = (uint64_t)cfg.steps;
  if (cfg.noise_removal == NoiseRemoval::ancestral) {
    update(last, /*greedy=*/false, /*reuse=*/cached);
  } else if (cfg.noise_removal == NoiseRemoval::greedy) {
    // Greedy tail: z <- argmax of the model output at t_S (the reference always calls the network here).
    update(last, /*greedy=*/true, /*reuse=*/false);
  }
  return stats;
}

}  // namespace duo
