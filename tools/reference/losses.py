"""Independent PyTorch per-token losses of duo.cu's algorithms, written from the maths of docs/ (not from the C++).

Maths: docs/diffusion.md §5.2–§5.5 (DUO), §7–§10 (AR, MDLM, SEDD, D3PM), docs/model.md §9.
Each function takes ONE row of raw logits (a 1-D float64 tensor of V entries, requires_grad for the
gradient) plus the token ids and the schedule numbers, and returns the per-token loss (0-dim tensor).
The gradient with respect to the logits comes from autograd (see make_loss_fixtures.py).

Where the C++ uses a closed form, this file deliberately uses a different route to the same number:
DUO uses the explicit sum over j != z_t of docs/diffusion.md §5.2 (not the closed form with the reduction Lambda).
"""
import math

import torch

NEG_INF = -1e6  # the reference's `neg_infinity` (docs/model.md §9)


def ar_loss(logits, x, mask_id):
    """AR (docs/diffusion.md §7): mask-id logit set to -1e6, log_softmax, cross-entropy of the target x."""
    o = logits.clone()
    o[mask_id] = NEG_INF  # overwrite: no gradient reaches the mask logit
    return -torch.log_softmax(o, dim=-1)[x]


def mdlm_loss(logits, x, z, mask_id, alpha, dalpha):
    """MDLM SUBS (docs/diffusion.md §8): add -1e6 to the mask logit, normalise, carry-over on unmasked positions;
    loss = alpha'/(1-alpha) * log xhat_x (exactly 0 where z != mask)."""
    o = logits + NEG_INF * torch.nn.functional.one_hot(torch.tensor(mask_id), logits.shape[0]).to(logits.dtype)
    logp = torch.log_softmax(o, dim=-1)
    if z != mask_id:
        # carry-over: the row becomes -1e6 everywhere and 0 at the observed token; log xhat_x = 0.
        carried = torch.full_like(logp, NEG_INF)
        carried[z] = 0.0
        logp = carried + 0.0 * logp  # no gradient reaches the logits
    return dalpha / (1.0 - alpha) * logp[x]


def sedd_log_score(logits, z, alpha):
    """SEDD absorb output (docs/diffusion.md §9): log r = o - log(e^sigma - 1) - log(V - 1), then log r[z] := 0."""
    V = logits.shape[0]
    sigma = -math.log(alpha)
    esm1 = math.expm1(sigma) if sigma < 0.5 else math.exp(sigma) - 1.0
    ls = logits - math.log(esm1) - math.log(V - 1)
    keep = torch.ones_like(ls)
    keep[z] = 0.0
    return ls * keep  # entry at z set to 0 (no gradient)


def sedd_bracket(log_score, x, mask_id, sigma):
    """sum_{y != m} r_y - rho log r_x + rho (log rho - 1), rho = 1/(e^sigma - 1)."""
    rho = 1.0 / math.expm1(sigma)
    r = torch.exp(log_score)
    pos = r.sum() - r[mask_id]
    return pos - rho * log_score[x] + rho * (math.log(rho) - 1.0)


def sedd_loss(logits, x, z, mask_id, alpha, dalpha):
    """Score entropy on masked positions, weighted by dsigma = -alpha'/alpha; 0 elsewhere."""
    if z != mask_id:
        return 0.0 * logits.sum()
    sigma = -math.log(alpha)
    return (-dalpha / alpha) * sedd_bracket(sedd_log_score(logits, z, alpha), x, mask_id, sigma)


def d3pm_vb_loss(logits, x, z, mask_id, alpha, T, reference_bug):
    """D3PM absorb (docs/diffusion.md §10): T * L_vb * [z == m] on the noisy-input logits (log_softmax over all V).
    Intended last bracket: log(1 + alpha_s xhat_m / m_s), alpha_s = 1 - m_s, m_s = m_t - 1/T.
    reference_bug=True: the reference's log(1 + xhat_m) (it stores m_s in `alpha_s`, docs/differences.md §2.1)."""
    if z != mask_id:
        return 0.0 * logits.sum()
    logp = torch.log_softmax(logits, dim=-1)
    dt = 1.0 / T
    m_t = min(max(1.0 - alpha, 0.0), 1.0 - 1e-4)
    a_t = 1.0 - m_t
    m_s = m_t - dt
    a_s = m_s if reference_bug else 1.0 - m_s
    x_m = torch.exp(logp[mask_id])
    log_nr = torch.log(a_t * x_m / m_t + 1.0)
    term1 = dt / m_t * (log_nr - logp[x])
    term2 = (1.0 - dt / m_t) * (log_nr - torch.log(a_s * x_m / m_s + 1.0))
    return T * (term1 + term2)


def d3pm_recon_loss(clean_logits, x):
    """D3PM reconstruction: -log xhat(x | clean input, s = 0), log_softmax over all V."""
    return -torch.log_softmax(clean_logits, dim=-1)[x]


def duo_loss(logits, x, z, alpha, dalpha):
    """DUO UDLM NELBO integrand (docs/diffusion.md §5.2), explicit-sum form:
    l = alpha'/(V alpha) [V/xbar_i - V/xbarth_i - sum_{j != i} xbar_j/xbar_i log(xbarth_i xbar_j/(xbarth_j xbar_i))]."""
    V = logits.shape[0]
    xhat = torch.softmax(logits, dim=-1)
    xbar = torch.full((V,), 1.0 - alpha, dtype=logits.dtype)
    xbar[x] += V * alpha
    xbt = V * alpha * xhat + (1.0 - alpha)
    i = z
    total = 0.0 * logits.sum()
    for j in range(V):
        if j == i:
            continue
        total = total + xbar[j] / xbar[i] * torch.log(xbt[i] * xbar[j] / (xbt[j] * xbar[i]))
    return dalpha / (V * alpha) * (V / xbar[i] - V / xbt[i] - total)
