// SEDD absorb (docs/diffusion.md §9): absorbing noise, time-conditioned on σ̄ = −log α_t, log-score output,
// score-entropy loss on masked tokens weighted by dσ̄ = −α'_t/α_t.
#include "algo/noising.h"

namespace duo {

std::unique_ptr<Algorithm> make_sedd(const AlgoSettings& s, DiT& model, Ops& ops) {
  return std::make_unique<NoisingAlgorithm>(s, model, ops,
                                            NoisingSpec{/*absorbing=*/true, /*time_conditioned=*/true, LossKind::SEDD});
}

}  // namespace duo
