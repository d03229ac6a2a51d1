// The model interfaces the samplers call. The samplers know nothing of the network: the DiT (CPU or CUDA
// backend) implements these, and the tests implement them with small doubles whose output is known.
//
// What each sampler expects from Denoiser::log_probs (the algorithm's output post-processing,
// docs/model.md §9, is the implementer's job, not the sampler's):
//   DUO (uniform state)  plain log-softmax over all V ids (including an unused [PAD] id).
//   MDLM                 SUBS log-probs: mask logit at -1e6, log-normalised, and at every position whose input
//                        is not [MASK] the row is -1e6 everywhere except 0 at the input token (carry-over).
//   D3PM absorb          log-softmax over all V ids (no carry-over needed: the sampler copies unmasked tokens).
//   SEDD absorb          log-scores: logits - log(e^sigma - 1) - log(V - 1), the entry at the input token := 0.
// The samplers cast these rows to the sampling precision (float64 by default, like the reference's
// `use_float64`) before any posterior arithmetic.
#pragma once
#include <cstdint>
#include "math/sampling_step.h"

namespace duo {

// A bidirectional denoiser: the network of MDLM / DUO / SEDD / D3PM behind its output post-processing.
class Denoiser {
 public:
  virtual ~Denoiser() = default;
  // V: the width of the model output (every category of the diffusion, the mask id included).
  virtual int64_t vocab_size() const = 0;
  // True when the network reads sigma (DUO, SEDD, D3PM). MDLM is not time-conditioned: its implementer feeds
  // zeros to the network (docs/diffusion.md §3), and only then may the sampler reuse a prediction (`ancestral_cache`).
  virtual bool time_conditioned() const = 0;
  // z: (B, L) token ids; sigma: (B) the time input s_t = -log alpha_t; out: (B, L, V) the post-processed
  // output (see above), row-major.
  virtual void log_probs(const int32_t* z, int64_t B, int64_t L, const double* sigma, float* out) = 0;

  // Optional, for a network whose output lives on a device: the sampling loop's update done there
  // (Ops::diffusion_step), so that only token ids travel. When updates_in_place() is true, the loop calls
  // evaluate_and_update instead of log_probs and its own update: evaluate the network at z (sigma as above) --
  // or, with reuse, take the output of the previous evaluation, made at this same z -- post-process it, and
  // update z in place by `step` (the posterior and its draw, or the greedy tail). Returns the tokens changed.
  // The draws must be the ones diffusion_update_rows (math/sampling_step.h) makes from log_probs' rows.
  virtual bool updates_in_place() const { return false; }
  virtual int64_t evaluate_and_update(int32_t* z, int64_t B, int64_t L, const double* sigma,
                                      const DiffusionStepArgs& step, const uint8_t* keep, bool reuse);
};

// A causal language model (the AR baseline): the distribution of the next token given a prefix.
class CausalLM {
 public:
  virtual ~CausalLM() = default;
  virtual int64_t vocab_size() const = 0;
  // z: (B, L) token ids, row stride L, of which only the prefix z[:, 0:n] (1 <= n < L) is valid and may be
  // read. out: (B, V) logits (or log-probs: any per-row additive constant is fine) of token n. The sampler
  // sets the mask id's logit to -1e6 and takes the log-softmax itself, so the raw logits are enough.
  virtual void next_logits(const int32_t* z, int64_t B, int64_t L, int64_t n, float* out) = 0;
};

}  // namespace duo
