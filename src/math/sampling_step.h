// One step of the diffusion samplers over rows of the network's output (docs/sampling.md §1): the family's output
// post-processing of each row (docs/model.md §9), then the update of each position's token. Part of the maths
// floor, so that the sampling loop (sample/diffusion_sampler.cpp, rows on the host) and the backends'
// Ops::diffusion_step (the CPU backend: these functions; the CUDA backend: a kernel built from the same entry
// functions of uniform_posterior.h, absorbing_posterior.h and categorical.h) share one definition.
#pragma once
#include <cstdint>
#include "core/hd.h"

namespace duo {

// The diffusion families of the samplers: uniform state (DUO) and the absorbing ones.
enum class DiffusionFamily { uniform /* DUO */, mdlm, d3pm, sedd };

// Probabilities and the categorical race in float64 (the reference's sampling.use_float64, default) or fp32.
enum class SamplePrecision { f64, f32 };

// Everything one update step needs besides the rows: the sampler's configuration and this step's times.
struct DiffusionStepArgs {
  DiffusionFamily family = DiffusionFamily::uniform;
  SamplePrecision precision = SamplePrecision::f64;
  int32_t mask_id = -1;     // the [MASK] id of the absorbing families
  bool psi = false;         // the Ψ-posterior with kappa (not on the final step)
  bool final_step = false;  // noise removal: alpha_s := 1
  bool greedy = false;      // greedy tail: z := the first argmax of the post-processed row, nothing drawn
  int64_t top_k = 0;        // > 0: keep the k most likely ids of x̂ (not SEDD)
  double p_nucleus = 1.0;   // < 1: top-p filter of x̂ (not SEDD)
  double alpha_t = 0, alpha_s = 1, kappa = 1;
  uint64_t seed = 0;            // the sampler's seed
  uint64_t step = 0;            // the step number: the random streams are (seed, step)
  int64_t first_position = 0;   // the position number of row 0 (a chunk of a larger batch): Philox counters
  DUO_HD bool filtered() const { return top_k > 0 || p_nucleus < 1; }
};

// The SUBS parameterisation of one row in place (MDLM): o[mask] -= 1e6, log-normalise; then, when the input
// z is not [MASK], -1e6 everywhere and 0 at z (carry-over).
void subs_row(float* o, int64_t V, int32_t mask_id, int32_t z);
// SEDD absorb's log-score of one row in place: o - log(e^sigma - 1) - log(V - 1), then o[z] := 0.
void sedd_log_score_row(float* o, int64_t V, double sigma, int32_t z);

// The samplers' input from the network's rows (rows = nb · L, V each): log-softmax (DUO, D3PM), SUBS (MDLM) or
// SEDD's log-score, into o. src: the raw rows when they are to be copied into o a row at a time (so that the
// post-processing finds each in cache); null when o already holds them. z: the rows' current tokens; sigma: the nb
// sequences' time inputs (SEDD). A row that is not finite is left as the network gave it; returns the first such
// row, or rows.
int64_t denoiser_output_rows(const float* src, float* o, int64_t rows, int64_t V, int64_t L, const int32_t* z,
                             const double* sigma, DiffusionFamily family, int32_t mask_id);

// One update of every position n < N from the post-processed rows o (N, V) (docs/sampling.md §4–§9), in place
// on z; positions with keep[n] != 0 (keep may be null) are left alone. The random streams are
// (a.seed, a.step); position n draws at counter a.first_position + n, so a chunk of a batch draws what the
// whole batch would. With a.greedy, z[n] becomes the first argmax of row n instead. Returns the tokens changed.
//
// lse (N floats, or null): the rows are log-softmax rows given as the raw rows o and their log-normalisers
// (log_softmax_normalisers), row n's value at v being o[n·V + v] − lse[n], the float log_softmax_row_inplace stores:
// the same draws as from the stored rows, without writing them (DUO's and D3PM's post-processing, never greedy).
int64_t diffusion_update_rows(const DiffusionStepArgs& a, const float* o, int64_t N, int64_t V, const uint8_t* keep,
                              int32_t* z, const float* lse = nullptr);

// Whether a step takes diffusion_update_rows' lse form: DUO's and D3PM's rows (log-softmax), not the greedy tail.
bool updates_from_normalisers(const DiffusionStepArgs& a);

// The log-softmax normaliser of each of the rows (log_softmax_lse) into lse, without changing them: DUO's and D3PM's
// post-processing (denoiser_output_rows) for diffusion_update_rows' lse form. Returns the first row that is not
// finite (its lse unset), or rows.
int64_t log_softmax_normalisers(const float* o, int64_t rows, int64_t V, float* lse);

}  // namespace duo
