// AR loss (docs/diffusion.md §7, docs/model.md §9): the [MASK] logit is set to −1e6 (the id can never
// be predicted), then log-softmax and the cross-entropy of the next token. Input x_{0..L−2}, target x_{1..L−1};
// the shift is the caller's business, this is one row.
#pragma once
#include "math/loss_common.h"
#include "core/hd.h"

namespace duo {

// ℓ = −log softmax(o')_target, o' = o with o'[mask_id] = −1e6 (mask_id < 0: no mask id).
// d (nullable) receives dℓ/do = p' − e_target, and 0 at mask_id (the overwritten logit gets no gradient).
template <class T, class R = SerialRow, class D = T*>
DUO_HD T ar_loss_row(const T* o, int V, int mask_id, int target, std::type_identity_t<D> d, const R& walk = R{}) {
  return weighted_cross_entropy_row<T, R, D>(o, V, target, T(1), mask_id, MaskLogit::Set, d, walk);
}

}  // namespace duo
