// MDLM loss with the SUBS parameterisation (docs/diffusion.md §8, docs/model.md §9).
//
// SUBS output: add −1e6 to the [MASK] logit, normalise (log-softmax); at positions whose input z_t is not
// [MASK], overwrite the row with −1e6 everywhere and 0 at z_t (carry-over). Per token
//   ℓ = α'/(1 − α) · log x̂_x  =  −log x̂_x · (−α')/(1 − α)      on z_t = m,
//   ℓ = 0 exactly (and no gradient) on z_t ≠ m, because carry-over makes log x̂_x = log x̂_{z_t} = 0
// (under absorbing noise an unmasked z_t equals x). For log-linear this is (1/t)(−log x̂_x) on masked tokens.
#pragma once
#include "math/loss_common.h"
#include "core/hd.h"

namespace duo {

// x = clean id, z = z_t, alpha = α_t < 1, dalpha = α'_t. d (nullable) receives dℓ/do:
// (−α')/(1 − α) · (p'_j − [j=x]) on masked positions (p' the SUBS softmax), 0 on unmasked ones.
template <class T, class R = SerialRow, class D = T*>
DUO_HD T mdlm_loss_row(const T* o, int V, int mask_id, int x, int z, double alpha, double dalpha,
                       std::type_identity_t<D> d, const R& walk = R{}) {
  if (z != mask_id) {  // carry-over
    zero_row<T, R, D>(d, V, walk);
    return T(0);
  }
  const T weight = T(-dalpha / (1.0 - alpha));
  return weighted_cross_entropy_row<T, R, D>(o, V, x, weight, mask_id, MaskLogit::Add, d, walk);
}

}  // namespace duo
