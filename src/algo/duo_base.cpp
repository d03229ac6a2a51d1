// DUO base (duo_algorithms.md §2): uniform-state noise (a token is replaced by a uniform id over all V with
// probability 1 − α_t), time-conditioned on σ = −log α_t, plain log-softmax output, and the closed-form
// Rao-Blackwellised UDLM NELBO per token. Also the loss of `--algo duo` after the curriculum ends, and the
// validation loss of every DUO run.
#include "algo/noising.h"

namespace duo {

namespace {

class DuoBase final : public Algorithm {
 public:
  using Algorithm::Algorithm;

  LossSums run(const MicroBatch& mb, bool train, bool backward, double grad_scale) override {
    check_batch(mb, true);
    NoisyBatch nb = noisy_batch(mb, settings(), cfg().vocab_size, /*absorbing=*/false, /*time_conditioned=*/true);
    HeadInputs tok = head_inputs(mb, nb);
    Tensor logits = forward_ids(nb.z.data(), nb.sigma, mb.B, mb.L, train, mb.dropout);
    return head(LossKind::DUO, logits, tok, backward, grad_scale);
  }
};

}  // namespace

std::unique_ptr<Algorithm> make_duo_base(const AlgoSettings& s, DiT& model, Ops& ops) {
  return std::make_unique<DuoBase>(s, model, ops);
}

}  // namespace duo
