// Discrete Consistency Distillation loss (docs/distillation.md §4): per token, the KL divergence between
// the student's and the teacher's denoising distributions, x̂ = softmax(logits) over all V ids,
//   kl-bwd:  ℓ = KL(x̂^S ‖ x̂^T) = Σ_v x̂^S_v (log x̂^S_v − log x̂^T_v)    (the reference's default)
//   kl-fwd:  ℓ = KL(x̂^T ‖ x̂^S) = Σ_v x̂^T_v (log x̂^T_v − log x̂^S_v)
// The teacher is a fixed target (no gradient). Exact gradients w.r.t. the student logits s:
//   kl-bwd:  dℓ/ds_k = x̂^S_k (log x̂^S_k − log x̂^T_k − ℓ)
//            (d log x̂^S_v/ds_k = [v=k] − x̂^S_k; the term Σ_v x̂^S_v([v=k] − x̂^S_k) vanishes)
//   kl-fwd:  dℓ/ds_k = x̂^S_k − x̂^T_k
// Both gradients sum to zero over k, as they must for a function of softmax(s). DUO_HD: the CUDA kl_head
// calls this same code.
#pragma once
#include <cmath>

#include "math/loss_common.h"
#include "core/hd.h"

namespace duo {

// One token: student logits s[0..V), teacher logits t[0..V). forward_kl = false is kl-bwd, true is kl-fwd.
// If d != nullptr it receives dℓ/ds (written). Three reads of each row.
template <class T, class R = SerialRow>
DUO_HD T distill_kl_row(const T* s, const T* t, int V, bool forward_kl, T* d, const R& walk = R{}) {
  const T lse_s = row_logsumexp(s, V, -1, MaskLogit::Keep, walk);
  const T lse_t = row_logsumexp(t, V, -1, MaskLogit::Keep, walk);
  T kl = 0;
  for (int v = walk.first(); v < V; v += walk.step()) {
    const T log_s = s[v] - lse_s, log_t = t[v] - lse_t;
    kl += forward_kl ? std::exp(log_t) * (log_t - log_s) : std::exp(log_s) * (log_s - log_t);
  }
  kl = walk.sum(kl);
  if (d) {
    for (int k = walk.first(); k < V; k += walk.step()) {
      const T log_s = s[k] - lse_s, log_t = t[k] - lse_t, p = std::exp(log_s);
      d[k] = forward_kl ? p - std::exp(log_t) : p * (log_s - log_t - kl);
    }
  }
  return kl;
}

}  // namespace duo
