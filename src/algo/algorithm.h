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
#include "algo/schedule.h"
#include "backend/ops.h"
#include "core/arena.h"
#include "model/dit.h"

namespace duo {

struct AlgoSettings {
  std::string name = "duo_base";  // ar | mdlm | sedd | d3pm | duo_base | duo
  int32_t mask_id = -1;           // absorbing algorithms: the [MASK] id; AR: the id whose logit is forced to -1e6
  Schedule schedule;              // log-linear (default) or cosine
  int T = 0;                      // discrete time steps (D3PM: 1000); 0 = continuous time
  bool reference_bugs = false;    // D3PM's collapsed log term (duo_algorithms.md §13.7)
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
  std::vector<double> alpha, dalpha;  // (N) α_t, α'_t of each token's sequence
  std::vector<double> mask;           // (N) loss mask
  void resize(int64_t n);
};

struct LossSums {
  double loss = 0;    // Σ mask · ℓ
  double weight = 0;  // Σ mask
  void add(const LossSums& o) { loss += o.loss; weight += o.weight; }
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

 protected:
  // Runs the model on ids (B, L) with conditioning sigma (B); returns logits (B, L, V).
  Tensor forward_ids(const int32_t* ids, const std::vector<double>& sigma, int64_t B, int64_t L, bool train,
                     const Philox& dropout);
  // Runs the loss head on logits (B·L, V) for `tok`, adds Σ mask·ℓ and Σ mask, and backpropagates
  // grad_scale · mask · dℓ/dlogits through the last forward when `backward`.
  LossSums head(LossKind kind, const Tensor& logits, const HeadInputs& tok, bool backward, double grad_scale);
  DiT& model() { return model_; }
  Ops& ops() { return ops_; }
  const ModelConfig& cfg() const { return model_.config(); }
  void check_batch(const MicroBatch& mb, bool needs_time) const;

 private:
  AlgoSettings s_;
  DiT& model_;
  Ops& ops_;
  Arena ws_;  // device workspace sized for the model's largest batch
  size_t ids_, sigma_, x_, z_, alpha_, dalpha_, weight_, losses_, dlogits_;
  std::vector<double> losses_host_;
};

// `name` as in --algo; throws duo::Error for an unknown name.
std::unique_ptr<Algorithm> make_algorithm(const AlgoSettings& s, DiT& model, Ops& ops);

}  // namespace duo
