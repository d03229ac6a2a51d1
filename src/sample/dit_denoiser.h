// The DiT behind the samplers' model interfaces (sample/denoiser.h):
//   DiTDenoiser  bidirectional DiT + the algorithm's output post-processing (docs/model.md §9):
//                  DUO, D3PM  log_softmax over all V
//                  MDLM       SUBS: mask logit -1e6, log-normalise, carry-over at unmasked inputs; sigma fed as 0
//                  SEDD       log-score: logits - log(e^sigma - 1) - log(V - 1), 0 at the input token
//   DiTCausalLM  causal (AR) DiT: the logits of token n from the prefix z[:, 0:n] (the sampler masks [MASK])
// All run the model in inference mode (no dropout) and split a batch larger than the model's planned
// max_batch into several forward passes. The network runs on the model's backend (Ops). The diffusion samplers'
// updates run there too (Ops::diffusion_step: the post-processing and the draw, in place on the ids), so only
// token ids travel; log_probs, which copies the post-processed rows to the host, is for callers that want them.
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
  bool updates_in_place() const override { return true; }
  int64_t evaluate_and_update(int32_t* z, int64_t B, int64_t L, const double* sigma, const DiffusionStepArgs& step,
                              const uint8_t* keep, bool reuse) override;

 private:
  DiTRunner runner_;
  Ops& ops_;
  DiffusionFamily family_;
  int32_t mask_id_;
  Arena ws_;                   // on the backend: keep (U8), sigma (F64), the step's status (I32 × 2)
  size_t keep_, sigma_, status_;
  Tensor logits_;              // the last evaluation's output (reuse), valid while it is the only chunk
};

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
