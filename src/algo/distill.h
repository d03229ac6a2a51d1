// Discrete Consistency Distillation (docs/distillation.md; Paper I §4.2, Algorithm 1, and Algorithm 2 with an
// EMA teacher). A trained DUO model (the student) learns to jump in one step where its frozen copy (the teacher)
// needs a smaller one. Per optimizer step k:
//   1. if k mod N = 0 (N = update_teacher_every): teacher ← student weights (teacher_ema: ← the EMA weights);
//   2. δ = 2^⌊k/N⌋ / T: the step doubles every round (linear_growth_dt: δmin + (k/max_steps)(δmax − δmin));
//   3. per sequence t from the stratified sampler, t ← clip(t + δ, 0, 1), s = t − δ; γ = γmin + t(γmax − γmin);
//   4. α_t = T(γ_t), α_s = T(γ_s) from the integral table (docs/transform.md);
//   5. one shared ε ~ N(0, I_V) per token, w_t = α̃_t e_x + σ̃_t ε, w_s = α̃_s e_x + σ̃_s ε (the probability-flow
//      map between the two times), z_t = argmax w_t, z_s = argmax w_s;
//   6. student at (z_t, σ = −log α_t) with gradient, teacher at (z_s, −log α_s) without;
//   7. ℓ = KL(x̂^S ‖ x̂^T) per token (kl-bwd; kl-fwd swaps the arguments), token-averaged as in training.
// The teacher is this algorithm's own parameter buffer and inference DiT; it is saved with every checkpoint
// (teacher.backbone.*) so that a run resumed mid-round continues exactly as the uninterrupted one.
#pragma once
#include <functional>
#include <string>
#include <vector>
#include "algo/algorithm.h"
#include "algo/transform_lookup.h"

namespace duo {

struct DistillSettings {
  KlDirection loss = KlDirection::Backward;  // algo.loss_type: kl-bwd | kl-fwd
  int64_t T = 512;                           // algo.T: the first round's step δ₀ = 1/T
  int64_t update_teacher_every = 10000;      // N: steps per round
  bool teacher_ema = false;                  // refresh the teacher from the EMA weights (Algorithm 2)
  bool teacher_dropout = true;               // the reference's teacher runs in train mode (dropout on)
  bool linear_growth_dt = false;             // δ grows linearly over the run instead of doubling per round
  double linear_growth_min = 0.001, linear_growth_max = 0.25;
  int64_t max_steps = 50000;                 // trainer.max_steps (linear growth)
  double gamma_min = -4.0, gamma_max = -1.0; // Gaussian log-SNR range: γ(t) = γmin + t(γmax − γmin)
  std::string integral_path;                 // integral table file; "" = computed for the model's V
  bool nearest_lookup = false;               // the reference's nearest-grid-point lookup of the table
  std::string distilled_from;                // the checkpoint the run started from (recorded in checkpoints)

  // Throws duo::Error naming the --algo.* option for a non-positive T or N, an empty γ range, δ outside (0, 1]
  // at some step of the run, or bad linear-growth bounds.
  void validate() const;
};

// "kl-bwd" | "kl-fwd" (the reference's algo.loss_type); throws duo::Error naming --algo.loss_type otherwise.
KlDirection parse_distill_loss(const std::string& name);
const char* distill_loss_name(KlDirection d);

// The round schedule: pure functions of the optimizer step k (0-based: k updates done before this one).
int64_t distill_round(const DistillSettings& s, int64_t step);     // ⌊k / N⌋
bool teacher_refresh_due(const DistillSettings& s, int64_t step);  // k mod N = 0
double distill_delta(const DistillSettings& s, int64_t step);      // δ_k

// Step 3: t ← clip(t + δ, 0, 1), s = t − δ.
struct DistillTimes {
  double t = 0, s = 0;
};
DistillTimes distill_times(double t, double delta);

// Where the teacher is refreshed from: each writes the run's live parameters (its EMA weights) into dst, a full flat
// buffer in the ParamTable layout. Functions, because the trainer swaps the two buffers while it validates, and
// with ZeRO-1 every rank keeps only its part of the EMA (the function gathers it: every rank refreshes at the same
// step); ema may be empty when the run keeps no EMA.
struct StudentWeights {
  std::function<void(Tensor& dst)> params, ema;
};

class Distillation final : public Algorithm {
 public:
  // a: the settings of the student's own algorithm (DUO base: data vocabulary, mask id); the name becomes
  // "distill". The teacher gets its own parameter buffer and an inference DiT of the student's model, for
  // batches up to student.options().max_batch.
  Distillation(const AlgoSettings& a, const DistillSettings& d, DiT& student, StudentWeights weights, Ops& ops);
  ~Distillation() override;

  // Training: refreshes the teacher first when step k = mb.step is due (or when it was never set: the reference
  // copies the student lazily at its first call). Validation after k steps (train = false) measures the round
  // just trained: the teacher as it is and the δ of step k − 1. (The reference uses the δ of step k and, at a
  // round's end, first refreshes the teacher from the very weights it validates, comparing the model with itself.)
  LossSums run(const MicroBatch& mb, bool train, bool backward, double grad_scale) override;

  // teacher.backbone.* tensors and metadata "distillation" = {teacher_step, loss_type, T, ...}.
  void save_state(CheckpointContents& c) override;
  // Restores the teacher; error (with a HINT) for a checkpoint without one, or one of another schedule.
  void load_state(const Checkpoint& ck) override;

  // Copies the student's parameters (or EMA weights) into the teacher and records the step.
  void refresh_teacher(int64_t step);
  int64_t teacher_step() const { return teacher_step_; }  // step of the last refresh (−1: never)
  const DistillSettings& distill() const { return d_; }
  // The teacher's weights (flat, ParamTable layout).
  Tensor teacher_params();
  // Bytes of the teacher (weights, inference activations, latents) for the start-up memory report.
  size_t teacher_bytes() const;
  std::string memory_report() const override;

 private:
  DistillSettings d_;
  StudentWeights student_;
  void* teacher_params_ = nullptr;
  DiT teacher_;
  TransformLookup lookup_;
  CurriculumSettings gamma_range_;  // only γmin, γmax: curriculum_sequence() maps t to (α, α̃, σ̃, σ)
  Arena ws_;                        // the clean ids, the latents z_s (the teacher's input) and z_t, σ, scales
  size_t ids_ = 0, sigma_ = 0, clean_ids_ = 0, student_ids_ = 0, scales_ = 0;
  int64_t teacher_step_ = -1;
  std::vector<float> host_;  // the teacher's weights on the host while a checkpoint is written
};

}  // namespace duo
