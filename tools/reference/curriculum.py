#!/usr/bin/python3
"""The DUO curriculum's relaxed input and loss in PyTorch, written from docs/diffusion.md §5.2–§5.5, docs/transform.md §2, docs/curriculum.md §4.

Used only by make_curriculum_fixture.py. Independent of the C++ engine: the Diffusion Transformation is integrated
here with its own Simpson rule, and the DUO NELBO is the explicit sum of docs/diffusion.md §5.2 (checked against the closed form and
against the docs/test_vectors.md §5 test vectors when this module is run as a script).
"""
import math

import torch


def gaussian_scales(gamma):
    """α̃ = √sigmoid(−γ), σ̃ = √sigmoid(γ) in float64."""
    return math.sqrt(1.0 / (1.0 + math.exp(gamma))), math.sqrt(1.0 / (1.0 + math.exp(-gamma)))


def transform(gamma, V, n=40000):
    """α = T(γ) and dα/dγ for V ids: P(μ) = ∫ φ(z−μ) Φ(z)^{V−1} dz, dP/dμ = ∫ φ(z−μ)(V−1)φ(z)Φ(z)^{V−2} dz,
    μ = e^{−γ/2}; composite Simpson on [μ − 14, μ + 14] (and at least [−14, 14]) in float64."""
    mu = math.exp(-gamma / 2)
    lo, hi = min(mu - 14.0, -14.0), max(mu + 14.0, 14.0)
    z = torch.linspace(lo, hi, n + 1, dtype=torch.float64)
    w = torch.ones(n + 1, dtype=torch.float64)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    w *= (hi - lo) / n / 3
    log_phi = -0.5 * z * z - 0.5 * math.log(2 * math.pi)
    log_cdf = torch.special.log_ndtr(z)
    shifted = -0.5 * (z - mu) ** 2 - 0.5 * math.log(2 * math.pi)
    P = (w * torch.exp(shifted + (V - 1) * log_cdf)).sum().item()
    dP = (w * torch.exp(shifted + math.log(V - 1) + log_phi + (V - 2) * log_cdf)).sum().item()
    alpha = (V * P - 1) / (V - 1)
    dalpha_dgamma = V / (V - 1) * (-mu / 2) * dP
    return alpha, dalpha_dgamma


def relaxed_input(x, eps, alpha_tilde_f, sigma_tilde_f, inverse_tau_f):
    """docs/curriculum.md §4 steps 3–4 in float32, op by op as the reference: w = α̃·onehot(x) + σ̃·ε, y = w·(1/τ), z_t = argmax w.
    x: (R,) int64; eps: (R, V) float32; the scalars are float32 values."""
    V = eps.shape[1]
    onehot = torch.nn.functional.one_hot(x, V).float()
    w = torch.tensor(alpha_tilde_f, dtype=torch.float32) * onehot + torch.tensor(sigma_tilde_f, dtype=torch.float32) * eps
    y = w * torch.tensor(inverse_tau_f, dtype=torch.float32)
    return y, w.argmax(dim=1)


def duo_nelbo(log_x_theta, x, z, alpha, dalpha):
    """The DUO NELBO integrand of docs/diffusion.md §5.2 per token, as the explicit sum over j ≠ i (i = z_t):
    ℓ = α'/(Vα)·[V/x̄_i − V/x̄θ_i − Σ_{j≠i} (x̄_j/x̄_i)·log(x̄θ_i·x̄_j/(x̄θ_j·x̄_i))],
    x̄ = Vα·e_x + (1−α), x̄θ = Vα·x̂θ + (1−α). log_x_theta: (R, V); x, z: (R,); alpha, dalpha: (R,) float64."""
    R, V = log_x_theta.shape
    a = alpha[:, None]
    xbar = V * a * torch.nn.functional.one_hot(x, V).double() + (1 - a)
    xbar_theta = V * a * log_x_theta.exp() + (1 - a)
    xi = xbar.gather(1, z[:, None])
    xti = xbar_theta.gather(1, z[:, None])
    terms = (xbar / xi) * torch.log(xti * xbar / (xbar_theta * xi))
    mask = torch.ones(R, V, dtype=torch.bool)
    mask[torch.arange(R), z] = False
    s = (terms * mask).sum(dim=1)
    return dalpha / (V * alpha) * (V / xi[:, 0] - V / xti[:, 0] - s)


def duo_nelbo_closed_form(log_x_theta, x, z, alpha, dalpha):
    """The closed form of docs/diffusion.md §5.2 (the reference's evaluation), for cross-checking duo_nelbo."""
    R, V = log_x_theta.shape
    a = alpha
    log_xt = torch.log(V * a[:, None] * log_x_theta.exp() + (1 - a[:, None]))
    Lam = log_xt.sum(dim=1)
    lti = log_xt.gather(1, z[:, None])[:, 0]
    ltx = log_xt.gather(1, x[:, None])[:, 0]
    c = (1 - a) / (V * a + 1 - a)
    same = z == x
    xi = torch.where(same, V * a + 1 - a, 1 - a)
    S_same = c * (V * lti - Lam) + (V - 1) * c * torch.log(c)
    S_diff = (V * lti - Lam) - V * a / (1 - a) * (ltx - lti) - torch.log(c) / c
    S = torch.where(same, S_same, S_diff)
    return dalpha / (V * a) * (V / xi - V / lti.exp() - S)


def self_check():
    """docs/test_vectors.md §5: V = 4, x̂ = (0.1, 0.2, 0.3, 0.4), α = 0.6004, α' = −0.999."""
    cases = [(2, 2, 0.580881000336), (2, 0, 2.035811073223), (3, 3, 0.364713241176), (0, 1, 4.053308779276)]
    lx = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4]] * 4, dtype=torch.float64))
    x = torch.tensor([c[0] for c in cases])
    z = torch.tensor([c[1] for c in cases])
    al = torch.full((4,), 0.6004, dtype=torch.float64)
    da = torch.full((4,), -0.999, dtype=torch.float64)
    want = torch.tensor([c[2] for c in cases], dtype=torch.float64)
    for f in (duo_nelbo, duo_nelbo_closed_form):
        got = f(lx, x, z, al, da)
        assert torch.allclose(got, want, rtol=0, atol=1e-11), (f.__name__, got, want)
    # docs/test_vectors.md §3: T at V = 8.
    for gamma, alpha in ((-2.0, 0.858582086510), (0.0, 0.297692545980)):
        assert abs(transform(gamma, 8)[0] - alpha) < 1e-11, (gamma, transform(gamma, 8))


if __name__ == "__main__":
    self_check()
    print("curriculum.py: docs/test_vectors.md §5 NELBO vectors and docs/test_vectors.md §3 T values reproduced")
