// DUO base (docs/diffusion.md §5): uniform-state noise (a token is replaced by a uniform id over all V with
// probability 1 − α_t), time-conditioned on σ = −log α_t, plain log-softmax output, and the closed-form
// Rao-Blackwellised UDLM NELBO per token. Also the loss of `--algo duo` after the curriculum ends, and the
// validation loss of every DUO run.
#include "algo/noising.h"

namespace duo {

std::unique_ptr<Algorithm> make_duo_base(const AlgoSettings& s, DiT& model, Ops& ops) {
  return std::make_unique<NoisingAlgorithm>(s, model, ops,
                                            NoisingSpec{/*absorbing=*/false, /*time_conditioned=*/true, LossKind::DUO});
}

}  // namespace duo
