// The DiT behind the samplers' model interfaces (sample/denoiser.h) and behind the Gen-PPL scorer interface
// (eval/gen_metrics.h):
//   DiTDenoiser  bidirectional DiT + the algorithm's output post-processing (docs/model.md §9):
//                  DUO, D3PM  log_softmax over all V
//                  MDLM       SUBS: mask logit -1e6, log-normalise, carry-over at unmasked inputs; sigma fed as 0
//                  SEDD       log-score: logits - log(e^sigma - 1) - log(V - 1), 0 at the input token
//   DiTCausalLM  causal (AR) DiT: the logits of token n from the prefix z[:, 0:n] (the sampler masks [MASK])
//   DiTScorer    causal (AR) DiT as the evaluator of generative perplexity (one of our AR checkpoints)
// All run the model in inference mode (no dropout) and split a batch larger than the model's planned
// max_batch into several forward passes. The network runs on the model's backend (Ops); rows come back to
// the host, where the samplers work, and the post-processing happens there (it is one pass over rows the
// sampler reads anyway, and a device copy of the (B, L, V) output would double the largest activation).
#pragma once
#include <cstdint>
#include <limits>
#include <vector>
#include "core/arena.h"
#include "model/dit.h"
#include "eval/scorer.h"
#include "sample/denoiser.h"
#include "sample/diffusion_sampler.h"

namespace duo {

// Inference forward passes of one DiT: uploads ids and sigma, runs the model, copies results to the host.
class DiTRunner {
 public:
  DiTRunner(DiT& model, Ops& ops);
  DiTRunner(const DiTRunner&) = delete;
  DiTRunner& operator=(const DiTRunner&) = delete;

  const ModelConfig& config() const { return model_.config(); }
  int64_t max_batch() const { return model_.options().max_batch; }
  int64_t max_length() const { return model_.options().max_length; }
  // logits (B, L, V) on the device, valid until the next call. B <= max_batch(), L <= max_length(); sigma (B)
  // is the time input (ignored by the causal model; null = zeros).
  Tensor forward(const int32_t* ids, int64_t B, int64_t L, const double* sigma);
  // All of logits copied to the host as float.
  void to_host(const Tensor& logits, float* out);
  // Row r of the (B * L, V) rows of logits copied to the host as float.
  void row_to_host(const Tensor& logits, int64_t r, float* out);

 private:
  DiT& model_;
  Ops& ops_;
  Arena ws_;
  size_t ids_, sigma_;
  std::vector<double> staging_;  // float64 models: device values before the cast to float
};

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

// Our AR model as a Gen-PPL evaluator: log-probs of the actual next tokens, with the [MASK] logit at -1e6 as
// in the AR algorithm's output (docs/model.md §9). Padding is on the right and attention is causal, so the
// attention mask is not needed: a padded position never influences an earlier one.
class DiTScorer final : public Scorer {
 public:
  // mask_id: the id whose logit is forced to -1e6 (-1: none).
  DiTScorer(DiT& model, Ops& ops, int32_t mask_id);
  std::string name() const override { return "AR DiT"; }
  int64_t vocab_size() const override { return runner_.config().vocab_size; }
  int64_t context() const override { return runner_.max_length(); }
  // Any batch: target_nll splits it into passes of the model's planned batch.
  int64_t max_batch() const override { return std::numeric_limits<int64_t>::max(); }
  void target_nll(std::span<const int32_t> ids, std::span<const int64_t> lengths, int64_t B, int64_t N,
                  std::vector<float>& nll) override;

 private:
  DiTRunner runner_;
  int32_t mask_id_;
  std::vector<float> logits_;
};

}  // namespace duo
