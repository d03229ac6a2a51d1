// Validation and zero-shot perplexity (docs/evaluation.md §1–§2): one pass over a loader's blocks with the
// model in evaluation mode. Diffusion models: the NELBO with stratified ("antithetic") times, K·rows strata per
// eval batch for K time samples per sequence (the reference: K = 1), one noise draw per token, and the
// Monte-Carlo standard error from collapsed strata (docs/evaluation.md §1.1). AR: the exact teacher-forced NLL.
#pragma once
#include <cstdint>
#include "algo/algorithm.h"
#include "backend/comm.h"
#include "data/loader.h"

namespace duo {

struct EvalOptions {
  int64_t mc_samples = 1;       // time samples per sequence (diffusion models)
  uint64_t seed = 1;            // noise and times: the same seed gives the same estimate
  int64_t limit_batches = 0;    // 0 = the whole set
  bool antithetic = true;       // training.antithetic_sampling
  double sampling_eps = 1e-3;   // training.sampling_eps
  bool uses_time = true;        // false for AR (then mc_samples is 1)
  int64_t step = 0;             // the optimizer step, for algorithms whose loss depends on it (distillation's δ)
  // Importance sampling of t (docs/evaluation.md §1.2): times drawn with density ∝ t^(−a) on [ε, 1] and each
  // sequence's loss weighted by the exact ratio to the uniform density; 0 = uniform times (the reference's).
  double time_power = 0;
};

struct EvalResult {
  double nll = 0;        // Σ ℓ / Σ mask (nats per token)
  double ppl = 0;        // exp(nll)
  double bpd = 0;        // nll / ln 2
  double tokens = 0;     // Σ mask
  double std_err = 0;      // Monte-Carlo standard error of nll: its spread over seeds, same data (0 for AR)
  double seq_std_err = 0;  // spread of the per-sequence losses: the data's sampling error (docs/evaluation.md §1.1)
  int64_t sequences = 0;
  int64_t batches = 0;
};

// With several ranks, each evaluates the batches its loader reads (batch k·ranks + rank of the pass, with that
// batch's times and noise) and every rank returns the result one process gets from the whole pass, to the last
// digit: the per-sequence values are gathered in pass order before anything is summed. The loader's rank and
// world_size must be the communicator's.
EvalResult evaluate(Algorithm& algo, Loader& loader, const EvalOptions& opt, Comm& comm = single_process());

}  // namespace duo
