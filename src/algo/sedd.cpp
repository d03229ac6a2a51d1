// SEDD absorb (duo_algorithms.md §7.3): absorbing noise, time-conditioned on σ̄ = −log α_t, log-score output,
// score-entropy loss on masked tokens weighted by dσ̄ = −α'_t/α_t.
#include "algo/noising.h"

namespace duo {

namespace {

class SEDD final : public Algorithm {
 public:
  SEDD(const AlgoSettings& s, DiT& model, Ops& ops) : Algorithm(s, model, ops) {
    DUO_CHECK(s.mask_id >= 0 && s.mask_id < model.config().vocab_size, "algorithm sedd",
              str("mask id ", s.mask_id, " is outside the vocabulary"), "the tokenizer defines the [MASK] id");
  }

  LossSums run(const MicroBatch& mb, bool train, bool backward, double grad_scale) override {
    check_batch(mb, true);
    NoisyBatch nb = noisy_batch(mb, settings(), cfg().vocab_size, /*absorbing=*/true, /*time_conditioned=*/true);
    HeadInputs tok = head_inputs(mb, nb);
    Tensor logits = forward_ids(nb.z.data(), nb.sigma, mb.B, mb.L, train, mb.dropout);
    return head(LossKind::SEDD, logits, tok, backward, grad_scale);
  }
};

}  // namespace

std::unique_ptr<Algorithm> make_sedd(const AlgoSettings& s, DiT& model, Ops& ops) {
  return std::make_unique<SEDD>(s, model, ops);
}

}  // namespace duo
