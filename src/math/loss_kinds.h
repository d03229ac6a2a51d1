// The kinds of per-token loss and of distillation KL that the backends' loss heads compute (Ops::loss_head,
// Ops::kl_head) and the algorithms ask for. Part of the per-row maths floor (src/math/): it includes only core.
#pragma once
#include <cstdint>

namespace duo {

// Per-token loss heads (the per-row maths is in math/loss_*.h, shared by every backend).
enum class LossKind : uint8_t {
  AR,    // next-token cross-entropy, mask logit forced to -1e6
  MDLM,  // SUBS parameterisation, continuous-time NELBO weight -α'/(1-α) on masked tokens
  SEDD,  // absorbing score entropy, weight dσ̄ = -α'/α on masked tokens
  D3PM,  // absorbing D3PM variational term T·L_vb on masked tokens (the reconstruction term is an AR-like CE)
  CE,    // plain cross-entropy of x (D3PM's reconstruction term: clean input, σ = 0)
  DUO,   // uniform-state closed-form NELBO (needs a full-vocabulary sum per token)
};

struct LossHeadArgs {
  LossKind kind = LossKind::DUO;
  int mask_id = -1;            // absorbing algorithms and AR
  int T = 0;                   // D3PM: number of discrete steps
  bool reference_bug = false;  // D3PM: the reference's collapsed last log term (docs/differences.md §2.1)
};

// Direction of the distillation KL (docs/distillation.md): the reference's algo.loss_type.
enum class KlDirection : uint8_t {
  Backward,  // kl-bwd: KL(student ‖ teacher)
  Forward,   // kl-fwd: KL(teacher ‖ student)
};

}  // namespace duo
