// MDLM (docs/diffusion.md §8): absorbing noise, SUBS parameterisation (mask logit −1e6, carry-over of
// unmasked tokens), continuous-time NELBO −log x̂_x · (−α'_t)/(1 − α_t) on masked tokens. Not time-conditioned:
// the network sees σ = 0.
#include "algo/noising.h"

namespace duo {

std::unique_ptr<Algorithm> make_mdlm(const AlgoSettings& s, DiT& model, Ops& ops) {
  return std::make_unique<NoisingAlgorithm>(s, model, ops,
                                            NoisingSpec{/*absorbing=*/true, /*time_conditioned=*/false, LossKind::MDLM});
}

}  // namespace duo
