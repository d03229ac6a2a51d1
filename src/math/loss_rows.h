// The per-token loss of one row of logits by LossKind (math/loss_kinds.h): the dispatch every backend's loss head
// calls (CPU loop, CUDA kernel), so the kinds map to the same maths everywhere.
#pragma once
#include "core/hd.h"
#include "math/loss_ar.h"
#include "math/loss_d3pm.h"
#include "math/loss_duo.h"
#include "math/loss_kinds.h"
#include "math/loss_mdlm.h"
#include "math/loss_sedd.h"

namespace duo {

// ℓ of row o (V logits) for clean id x, noisy id z and the sequence's α_t, α'_t; d (nullable) receives dℓ/do.
// walk: how the row is shared between threads (loss_common.h).
template <class T, class R = SerialRow, class D = T*>
DUO_HD T loss_row(const LossHeadArgs& a, const T* o, int V, int x, int z, double alpha, double dalpha,
                  std::type_identity_t<D> d, const R& walk = R{}) {
  switch (a.kind) {
    case LossKind::AR: return ar_loss_row<T, R, D>(o, V, a.mask_id, x, d, walk);
    case LossKind::MDLM: return mdlm_loss_row<T, R, D>(o, V, a.mask_id, x, z, alpha, dalpha, d, walk);
    case LossKind::SEDD: return sedd_loss_row<T, R, D>(o, V, a.mask_id, x, z, alpha, dalpha, d, walk);
    case LossKind::D3PM: return d3pm_vb_row<T, R, D>(o, V, a.mask_id, x, z, alpha, a.T, a.reference_bug, d, walk);
    case LossKind::CE: return d3pm_recon_row<T, R, D>(o, V, x, d, walk);
    case LossKind::DUO: return duo_nelbo_row<T, R, D>(o, V, x, z, alpha, dalpha, d, walk);
  }
  return T(0);
}

}  // namespace duo
