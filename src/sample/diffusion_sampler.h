// The diffusion sampling loop (docs/sampling.md §1, docs/sampling.md §1) for every bidirectional family: DUO (uniform
// state), MDLM and D3PM (absorbing, ancestral / ancestral_cache / Ψ), SEDD absorb (analytic).
//
//   z <- prior (uniform ids over all V for DUO; all [MASK] for absorbing), prompt positions set and kept
//   grid t_0 = 1 > ... > t_S = t_min (linear, or the Ψ profile)
//   for i in 0..S-1: one update from t = t_i to s = t_{i+1} (one network call, unless ancestral_cache may reuse)
//   final, at t_S: ancestral (alpha_s := 1; SEDD: the denoiser update) | none |
//                  greedy: z <- argmax of the model output at t_S (for SEDD the argmax of its log-scores, as the
//                  reference does; under ancestral_cache the network is still called, also as the reference)
//
// The greedy final step is Paper I's greedy-tail sampler. Prompt (prefix) conditioning: positions with keep = 1
// hold the given id throughout -- set in the prior, fed to the model at every call, never resampled.
#pragma once
#include <cstdint>
#include "math/sampling_step.h"  // DiffusionFamily
#include "sample/denoiser.h"
#include "sample/psi_schedule.h"
#include "sample/sampling_types.h"

namespace duo {

enum class Predictor { ancestral, ancestral_cache, psi, analytic };
enum class NoiseRemoval { ancestral, greedy, none };

struct DiffusionSamplerConfig {
  DiffusionFamily family = DiffusionFamily::uniform;
  // MDLM (not time-conditioned) should use ancestral_cache; SEDD requires analytic; psi = Ψ-samplers.
  Predictor predictor = Predictor::ancestral;
  NoiseRemoval noise_removal = NoiseRemoval::ancestral;
  int64_t steps = 1000;   // S
  double t_min = 1e-5;    // the last grid time t_S
  double p_nucleus = 1.0; // < 1: top-p filter log x̂ before the posterior (not for SEDD's scores)
  int64_t top_k = 0;      // > 0: keep the k most likely ids of x̂ before the posterior (1 = greedy prediction:
                          // x̂ := one-hot of its argmax, the posterior still drawn); 0 = off; not for SEDD
  // Probabilities and the race in float64 (the reference's use_float64, default) or fp32. The absorbing
  // posterior requires float64, as the reference asserts (fp32 keys truncate and lose diversity).
  SamplePrecision precision = SamplePrecision::f64;
  int32_t mask_id = -1;   // the [MASK] id of the absorbing families
  PsiConfig psi;          // predictor = psi only
  uint64_t seed = 0;
};

// Draws B sequences of length L into z (B, L). The returned nfe is S + 1 (S with `none`), fewer when
// ancestral_cache reuses a prediction.
SamplerStats sample_diffusion(Denoiser& net, const AlphaSchedule& schedule, const DiffusionSamplerConfig& cfg,
                              int64_t B, int64_t L, const Prompt& prompt, int32_t* z);

// One update of the loop, in place, from the model output `out` (B, L, V) at z: the step from alpha_t to
// alpha_s (final_step: the noise-removal update, alpha_s = 1). kappa is used by predictor = psi only. The
// random stream is (cfg.seed, step). Returns whether any token changed. Exposed for tests and custom loops.
struct StepArgs {
  double alpha_t = 0, alpha_s = 1, kappa = 1;
  bool final_step = false;
  uint64_t step = 0;
};
bool diffusion_update(const DiffusionSamplerConfig& cfg, const float* out, int64_t B, int64_t L, int64_t V,
                      const StepArgs& args, const uint8_t* keep, int32_t* z);

}  // namespace duo
