// MDLM (duo_algorithms.md §7.2): absorbing noise, SUBS parameterisation (mask logit −1e6, carry-over of
// unmasked tokens), continuous-time NELBO −log x̂_x · (−α'_t)/(1 − α_t) on masked tokens. Not time-conditioned:
// the network sees σ = 0.
#include "algo/noising.h"

namespace duo {

namespace {

class MDLM final : public Algorithm {
 public:
  MDLM(const AlgoSettings& s, DiT& model, Ops& ops) : Algorithm(s, model, ops) {
    DUO_CHECK(s.mask_id >= 0 && s.mask_id < model.config().vocab_size, "algorithm mdlm",
              str("mask id ", s.mask_id, " is outside the vocabulary"), "the tokenizer defines the [MASK] id");
  }

  LossSums run(const MicroBatch& mb, bool train, bool backward, double grad_scale) override {
    check_batch(mb, true);
    NoisyBatch nb = noisy_batch(mb, settings(), cfg().vocab_size, /*absorbing=*/true, /*time_conditioned=*/false);
    HeadInputs tok = head_inputs(mb, nb);
    Tensor logits = forward_ids(nb.z.data(), nb.sigma, mb.B, mb.L, train, mb.dropout);
    return head(LossKind::MDLM, logits, tok, backward, grad_scale);
  }
};

}  // namespace

std::unique_ptr<Algorithm> make_mdlm(const AlgoSettings& s, DiT& model, Ops& ops) {
  return std::make_unique<MDLM>(s, model, ops);
}

}  // namespace duo
