"""Discrete Consistency Distillation (docs/distillation.md), one step's maths in PyTorch, written from the spec.

Independent of the C++ (src/algo/distill.cpp, src/math/loss_distill.h): it is what tests/fixtures/distill.json
is made of (make_distill_fixture.py). float64 except where the reference itself works in float32 (the Gaussian
latent w = α̃ e_x + σ̃ ε and its argmax).
"""
import math

import torch


def step_times(t, delta):
    """docs/distillation.md §2: t ← clip(t + δ, 0, 1), s = t − δ."""
    t = min(max(t + delta, 0.0), 1.0)
    return t, t - delta


def gamma_of(t, gamma_min, gamma_max):
    return gamma_min + t * (gamma_max - gamma_min)


def gaussian_scales(gamma):
    """α̃ = √sigmoid(−γ), σ̃ = √sigmoid(γ) (float64)."""
    return math.sqrt(1.0 / (1.0 + math.exp(gamma))), math.sqrt(1.0 / (1.0 + math.exp(-gamma)))


def alpha_of_gamma(gamma, V, n=40001, width=12.0):
    """docs/transform.md §2: α = T(γ) = V/(V−1) [∫ φ(z − μ) Φ(z)^(V−1) dz − 1/V], μ = e^(−γ/2); composite Simpson in float64."""
    mu = math.exp(-gamma / 2.0)
    z = torch.linspace(mu - width, mu + width, n, dtype=torch.float64)
    phi = torch.exp(-0.5 * (z - mu) ** 2) / math.sqrt(2.0 * math.pi)
    Phi = 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))
    f = phi * Phi ** (V - 1)
    h = (z[1] - z[0]).item()
    w = torch.ones(n, dtype=torch.float64)
    w[1:-1:2] = 4.0
    w[2:-1:2] = 2.0
    p_clean = (h / 3.0 * (w * f).sum()).item()
    return V / (V - 1.0) * (p_clean - 1.0 / V)


def trajectory_latents(x, eps, gamma_t, gamma_s):
    """docs/distillation.md §2: one ε per token for both times; w = α̃ e_x + σ̃ ε in float32, z = argmax w (first maximum)."""
    V = eps.shape[-1]
    onehot = torch.nn.functional.one_hot(torch.tensor(x), V).to(torch.float32)
    out = []
    for gamma in (gamma_t, gamma_s):
        a, s = gaussian_scales(gamma)
        w = torch.tensor(a, dtype=torch.float32) * onehot + torch.tensor(s, dtype=torch.float32) * eps
        out.append(w.argmax(-1).tolist())
    return out


def kl_per_token(student_logits, teacher_logits, loss_type):
    """docs/distillation.md §4 on log-softmax outputs; returns per-token losses and d(Σ losses)/d student logits."""
    s = student_logits.detach().clone().to(torch.float64).requires_grad_(True)
    log_s = torch.log_softmax(s, -1)
    log_t = torch.log_softmax(teacher_logits.to(torch.float64), -1)
    if loss_type == "kl-bwd":
        kl = (log_s.exp() * (log_s - log_t)).sum(-1)
    elif loss_type == "kl-fwd":
        kl = (log_t.exp() * (log_t - log_s)).sum(-1)
    else:
        raise ValueError(loss_type)
    kl.sum().backward()
    return kl.detach(), s.grad
