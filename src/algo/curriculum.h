// DUO curriculum learning (docs/curriculum.md): the inputs of the Gaussian-relaxed loss, backend-agnostic.
//
// While training and step ≤ end, DUO does not feed the network discrete noisy tokens: per sequence b with time t_b
//     γ_b = γmin + t_b(γmax − γmin),  (α_b, α'_b) = T(γ_b) from the integral table,  α̃ = √sigmoid(−γ), σ̃ = √sigmoid(γ),
// and per token, with ε ~ N(0, I_V),
//     w = α̃·e_x + σ̃·ε,   z_t = argmax_j w_j   (a USDM latent with exactly q(z_t = x) = α + (1−α)/V: the Duality),
//     network input = softmax(w/τ)·E           (a soft one-hot of z_t; time input σ = −log α_b),
// and the loss is the DUO NELBO ℓ(x, z_t; θ) of docs/diffusion.md §5.2 with (α_b, α'_b) (loss_duo.h, not here).
// This file: the τ schedule, the per-sequence scalars, and the dense ("simple") latent. The top-k latent of Duo++
// is in curriculum_efficient.h.
//
// Memory (simple mode). The reference materialises B·L·V fp32 tensors at once — ε, w, w/τ and the softmax that
// autograd keeps for the embedding's backward (≥ 4·B·L·V·4 bytes, 26 GB per GPU at B = 32, L = 1024, V = 50258).
// Here ε is counter-based (Philox counter = token·V + j): the backend draws w/τ straight into the soft-input
// buffer (Ops::gaussian_relaxation, on the device for CUDA), so ε and w never exist as tensors; what remains is
// w/τ and the DiT's softmax of it (2·B·L·V·4 bytes). Any row can be regenerated on its own, which would let a
// chunked embedding drop even those (not done yet).
#pragma once
#include <cstddef>
#include <cstdint>
#include "core/philox.h"
#include "math/relaxation.h"

namespace duo {

class TransformLookup;

// The curriculum's hyper-parameters (algo.curriculum.*, docs/curriculum.md §1); the trainer copies them from its TrainConfig.
struct CurriculumSettings {
  double tau_log10_start = -3.0;  // log10 τ before `start`
  double tau_log10_end = -3.0;    // log10 τ reached at `end`
  int64_t start = 0;              // τ anneals from here...
  int64_t end = 500000;           // ...to here; the curriculum loss is used while step ≤ end
  double gamma_min = -3.55;       // Gaussian negative log-SNR range visited: γ(t) = γmin + t(γmax − γmin)
  double gamma_max = -1.85;

  // Throws duo::Error (naming the algo.curriculum.* option) for a non-finite or empty γ range, end < start, or
  // non-finite temperatures.
  void validate() const;
};

// 1/τ at an optimizer step, exactly as the reference (docs/curriculum.md §3): log10 τ is tau_log10_start before `start`, linear in
// the step from start to end, and −10 at and after `end` (so at step == end, still a curriculum step, 1/τ = 1e10).
double inverse_temperature(const CurriculumSettings& s, int64_t step);

// Whether this forward uses the curriculum loss (docs/curriculum.md §2): training and step ≤ end. Validation and evaluation always
// use the plain DUO NELBO, and so does training after `end`.
bool curriculum_active(const CurriculumSettings& s, int64_t step, bool training);

// The per-sequence scalars of the curriculum at time t ∈ [0, 1].
struct CurriculumSequence {
  double t = 0;
  double gamma = 0;        // γ = γmin + t(γmax − γmin)
  double alpha = 0;        // α_t = T(γ): the discrete signal level for the loss
  double dalpha = 0;       // α'_t = (γmax − γmin)·dα/dγ (≤ 0)
  double alpha_tilde = 0;  // α̃ = √sigmoid(−γ): Gaussian signal scale
  double sigma_tilde = 0;  // σ̃ = √sigmoid(γ): Gaussian noise scale
  double sigma = 0;        // −log α_t: the network's time input (not σ̃)
};

// Checks the settings against the table (the γ range must lie inside its grid: the reference would clip silently
// to the grid's edge and train on wrong α), then evaluates one sequence.
CurriculumSequence curriculum_sequence(const TransformLookup& lookup, const CurriculumSettings& s, double t);

// α̃ and σ̃ from γ in float64, stably for either sign of γ (α̃² + σ̃² = 1).
void gaussian_scales(double gamma, double* alpha_tilde, double* sigma_tilde);

// One micro-batch of the curriculum: what both latent samplers read. Row r = b·L + l is token l of sequence b.
struct CurriculumBatch {
  const int32_t* x = nullptr;            // (B·L) clean tokens in [0, V)
  int64_t B = 0, L = 0, V = 0;
  const CurriculumSequence* seq = nullptr;  // (B) per-sequence scalars
  double inverse_tau = 1.0;              // β = 1/τ of this step (inverse_temperature)
  Philox noise;                          // this micro-batch's noise: {seed, stream_id(step, micro_batch, purpose)},
                                         // one subsequence per micro-batch so no two share ε

  void validate() const;                 // shapes, token range, γ-derived scales; throws duo::Error
};

// ---- simple mode (docs/curriculum.md §4) ----------------------------------------------------------------------------------------

// Rows [row0, row1) of the batch with ε_{r,j} = noise.normal(r·V + j): soft-input logits into y
// ((row1 − row0)·V floats, row-major; may be null to get only z_t) and z_t into z ((row1 − row0) ints; may be null).
// Rows are independent, so chunks can be filled in any order, on any thread, and regenerated for the backward.
void simple_latent_rows(const CurriculumBatch& batch, int64_t row0, int64_t row1, float* y, int32_t* z);

// Bytes the simple mode needs, ours and the reference's, for a micro-batch of B×L tokens over V ids.
struct SimpleMemory {
  size_t soft_logits = 0;  // one chunk of y: chunk_rows·V·4
  size_t latents = 0;      // z_t of the whole micro-batch: B·L·4 (kept for the loss)
  size_t total = 0;        // soft_logits + latents (the DiT's own softmax scratch for the chunk comes on top)
  size_t reference = 0;    // the reference's live fp32 B·L·V tensors ε, w, w/τ, softmax: 4·B·L·V·4
};
SimpleMemory simple_memory(int64_t B, int64_t L, int64_t V, int64_t chunk_rows);

}  // namespace duo
