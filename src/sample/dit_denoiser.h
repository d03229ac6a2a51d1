// The DiT behind the samplers' model interfaces (sample/denoiser.h):
//   DiTDenoiser  bidirectional DiT + the algorithm's output post-processing (docs/model.md §9):
//                  DUO, D3PM  log_softmax over all V
//                  MDLM       SUBS: mask logit -1e6, log-normalise, carry-over at unmasked inputs; sigma fed as 0
//                  SEDD       log-score: logits - log(e^sigma - 1) - log(V - 1), 0 at the input token
//   DiTCausalLM  causal (AR) DiT: the logits of token n from the prefix z[:, 0:n] (the sampler masks [MASK])
// All run the model in inference mode (no dropout) and split a batch larger than the model's planned
// max_batch into several forward passes. The network runs on the model's backend (Ops); rows come back to
// the host, where the samplers work, and the post-processing happens there (it is one pass over rows the
// sampler reads anyway, and a device copy of the (B, L, V) output would double the largest activation).
#pragma once
#include <cstdint>
#include <limits>
#include <vector>
#include "model/dit_runner.h"
#include "sample/denoiser.h"
#include "sample/diffusion_sampler.h"

namespace duo {

class DiTDenoiser final : public Denoiser {
 public:
  // mask_id: the [MASK] id of the absorbing families (MDLM, D3PM, SEDD); ignored for DUO.
  DiTDenoiser(DiT& model, Ops& ops, DiffusionFamily family, int32_t mask_id);
  int64_t vocab_size() const override { return runner_.config().vocab_size; }
  bool time_conditioned() const override { return family_ != DiffusionFamily::mdlm; }
  void log_probs(const int32_t* z, int64_t B, int64_t L, const double* sigma, float* out) override;

 private:
  DiTRunner runner_;
  DiffusionFamily family_;
  int32_t mask_id_;
};

// The SUBS parameterisation of one row in place (MDLM): o[mask] -= 1e6, log-normalise; then, when the input
// z is not [MASK], -1e6 everywhere and 0 at z (carry-over).
void subs_row(float* o, int64_t V, int32_t mask_id, int32_t z);
// SEDD absorb's log-score of one row in place: o - log(e^sigma - 1) - log(V - 1), then o[z] := 0.
void sedd_log_score_row(float* o, int64_t V, double sigma, int32_t z);

class DiTCausalLM final : public CausalLM {
 public:
  DiTCausalLM(DiT& model, Ops& ops);
  int64_t vocab_size() const override { return runner_.config().vocab_size; }
  void next_logits(const int32_t* z, int64_t B, int64_t L, int64_t n, float* out) override;

 private:
  DiTRunner runner_;
  std::vector<int32_t> prefix_;
};

}  // namespace duo
