// An Algorithm turns a micro-batch of clean token sequences into per-token losses through the DiT, and (for
// training) into gradients: it samples the noisy input (corruption or the curriculum's relaxation), chooses
// the conditioning σ, runs the model and the algorithm's loss head. One file per algorithm:
//   ar.cpp (next token), mdlm.cpp (SUBS), sedd.cpp (score entropy), d3pm.cpp (T = 1000), duo_base.cpp (DUO
//   NELBO), duo.cpp (DUO with curriculum learning).
// Everything random is drawn from Philox streams given by the caller, so a run is reproducible and a
// resumed run draws exactly what the uninterrupted one would have.
#pragma once
#include <memory>
#include <string>
#include <vector>
#include "algo/curriculum.h"
#include "algo/schedule.h"
#include "backend/ops.h"
#include "core/arena.h"
#include "model/dit.h"

namespace duo {

struct CheckpointContents;
class Checkpoint;

struct AlgoSettings {
  std::string name = "duo_base";  // ar | mdlm | sedd | d3pm | duo_base | duo
  int32_t mask_id = -1;           // absorbing algorithms: the [MASK] id; AR: the id whose logit is forced to -1e6
  Schedule schedule;              // log-linear (default) or cosine
  int T = 0;                      // discrete time steps (D3PM: 1000); 0 = continuous time
  bool reference_bugs = false;    // D3PM's collapsed log term (docs/differences.md §2.1); efficient curriculum's labelling (docs/curriculum.md §5)
  // DUO with curriculum learning (`duo`) only:
  CurriculumSettings curriculum;
  std::string curriculum_mode = "simple";  // simple (dense Gaussian relaxation) | efficient (top-k, Duo++)
  int top_k = 2;                           // efficient mode
  std::string integral_path;               // integral table file; "" = computed for the model's V
  bool nearest_lookup = false;             // the reference's nearest-grid-point lookup + finite-difference α'
};

// One micro-batch of clean sequences on the host.
struct MicroBatch {
  const int32_t* ids = nullptr;  // (B, L) clean tokens
  const float* mask = nullptr;   // (B, L) loss weights: 1 for real tokens, 0 for padding
  int64_t B = 0, L = 0;
  std::vector<double> t;         // (B) diffusion times (from the stratified draw over the global batch)
  Philox noise;                  // corruption stream
  int64_t token_offset = 0;      // index of this micro-batch's first token in the global batch (noise counter)
  Philox dropout;                // dropout stream of this forward
  int64_t step = 0;              // optimizer step (curriculum schedule)
};

// Per-token inputs of a loss head, on the host (Algorithm::head copies them to the device).
struct HeadInputs {
  std::vector<int32_t> x, z;          // (N) clean / noisy (or target) ids
  Tensor z_on_device;                 // (N) I32: z already in the backend's memory (then z is not read)
  std::vector<double> alpha, dalpha;  // (N) α_t, α'_t of each token's sequence
  std::vector<double> mask;           // (N) loss mask
  void resize(int64_t n);
};

struct LossSums {
  double loss = 0;    // Σ mask · ℓ
  double weight = 0;  // Σ mask
  std::vector<double> seq_loss, seq_weight;  // the same sums per sequence (B), for standard errors
};

class Algorithm {
 public:
  Algorithm(const AlgoSettings& s, DiT& model, Ops& ops);
  virtual ~Algorithm() = default;
  Algorithm(const Algorithm&) = delete;
  Algorithm& operator=(const Algorithm&) = delete;

  const AlgoSettings& settings() const { return s_; }
  // train: dropout on (and the curriculum active, for DUO). backward: accumulate the gradient of
  // grad_scale · Σ mask·ℓ into the model's gradient buffer.
  virtual LossSums run(const MicroBatch& mb, bool train, bool backward, double grad_scale) = 0;
  // Σ mask over the positions whose loss counts (AR: all but the first of each row). The trainer divides by it
  // so a micro-batch's loss is a token mean, as in the reference.
  virtual double counted_weight(const MicroBatch& mb) const;
  // The backward passes run() makes through the model per micro-batch (D3PM: 2, the noisy and the clean input). A
  // gradient summed over the ranks bucket by bucket starts only in the last one (train/grad_sum.h).
  virtual int backward_passes() const { return 1; }
  // State beyond the model's weights that a resumed run needs (distillation: the teacher's weights and the
  // step of its last refresh). The trainer calls save_state on every checkpoint it writes and load_state when
  // it resumes. Default: none.
  virtual void save_state(CheckpointContents&) {}
  virtual void load_state(const Checkpoint&) {}
  // Device memory the algorithm holds beyond the model's (lines for the start-up banner; default none).
  virtual std::string memory_report() const { return ""; }

 protected:
  // Uploads the conditioning σ (B) and returns a model input with only σ set (the caller adds the tokens).
  DiTInput sigma_input(const std::vector<double>& sigma, int64_t B);
  // Runs the model without its output layer on ids (B, L) with conditioning sigma (B); returns the features y
  // (B, L, D) that head() takes (DiT::forward_features).
  Tensor features_of_ids(const int32_t* ids, const std::vector<double>& sigma, int64_t B, int64_t L, bool train,
                         const Philox& dropout);
  // Runs the output layer and the loss head, fused (Ops::linear_loss_head), on the features y (B, L, D) of the
  // last forward_features for `tok`, adds Σ mask·ℓ and Σ mask, and backpropagates grad_scale · mask · dℓ/dlogits
  // through the output layer and the last forward when `backward`.
  LossSums head(LossKind kind, const Tensor& y, const HeadInputs& tok, bool backward, double grad_scale);
  // The same for the distillation KL between the student's logits (B, L, V) of the last forward and a
  // teacher's (no gradient); mask: (B·L) loss mask.
  LossSums kl_head(KlDirection dir, const Tensor& student, const Tensor& teacher, const std::vector<double>& mask,
                   bool backward, double grad_scale);
  DiT& model() { return model_; }
  Ops& ops() { return ops_; }
  const ModelConfig& cfg() const { return model_.config(); }
  void check_batch(const MicroBatch& mb, bool needs_time) const;

 private:
  // Uploads grad_scale · mask as the head's weights; returns them as a device tensor.
  Tensor head_weights(const std::vector<double>& mask, double grad_scale);
  // Reads the per-token losses back and sums them per sequence; fails when the sum is not finite.
  LossSums sum_losses(const Tensor& losses, const std::vector<double>& mask, int64_t B, bool backward);

  AlgoSettings s_;
  DiT& model_;
  Ops& ops_;
  Arena ws_;  // device workspace sized for the model's largest batch
  size_t ids_, sigma_, x_, z_, alpha_, dalpha_, weight_, losses_, dlogits_ = 0;  // dlogits_: full-logits models
  std::vector<double> losses_host_;
};

// `name` as in --algo; throws duo::Error for an unknown name.
std::unique_ptr<Algorithm> make_algorithm(const AlgoSettings& s, DiT& model, Ops& ops);

}  // namespace duo
