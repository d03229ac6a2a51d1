#!/usr/bin/python3
"""Writes tests/fixtures/curriculum.json: the DUO curriculum's relaxed input and loss for a tiny linear "network".

Run from the repository root:  /usr/bin/python3 tools/reference/make_curriculum_fixture.py
Deterministic (fixed seed, CPU): re-running reproduces the file byte for byte. See README_curriculum.md.

Per case (one τ), for B sequences of L tokens over V ids:
  inputs   x, t, γ = γmin + t(γmax − γmin), α̃_f = float32(√sigmoid(−γ)), σ̃_f, β_f = float32(1/τ), ε (float32)
  relaxed  y = (α̃_f·onehot(x) + σ̃_f·ε)·β_f in float32, z_t = argmax, P = softmax(y) (float64)
  network  h0 = P·E, logits = h0·Wᵀ (float64, E and W float32-representable)
  loss     ℓ per token = DUO NELBO (docs/diffusion.md §5.2) with (α, α') of T at γ, summed over tokens
  grads    of Σℓ w.r.t. logits, h0, E and W (autograd, float64)
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from curriculum import duo_nelbo, duo_nelbo_closed_form, gaussian_scales, relaxed_input, self_check, transform  # noqa: E402

OUT = os.path.join("tests", "fixtures", "curriculum.json")
B, L, V, D = 2, 4, 13, 6
GAMMA_MIN, GAMMA_MAX = -3.5, -0.5
TIMES = [0.3, 0.85]
TAUS = [0.25, 1e-3]  # a genuinely soft input, and the reference runs' τ


def f32(v):
    return float(torch.tensor(v, dtype=torch.float64).float().item())


def main():
    self_check()
    g = torch.Generator().manual_seed(1234)
    x = torch.randint(0, V, (B * L,), generator=g)
    E = torch.randn(V, D, generator=g).float().double()
    W = (torch.randn(V, D, generator=g) / D ** 0.5).float().double()
    gammas = [GAMMA_MIN + t * (GAMMA_MAX - GAMMA_MIN) for t in TIMES]
    sched = [transform(gm, V) for gm in gammas]
    alpha = torch.tensor([a for a, _ in sched], dtype=torch.float64).repeat_interleave(L)
    dalpha = torch.tensor([(GAMMA_MAX - GAMMA_MIN) * d for _, d in sched], dtype=torch.float64).repeat_interleave(L)
    scales = [gaussian_scales(gm) for gm in gammas]

    cases = []
    for tau in TAUS:
        eps = torch.randn(B * L, V, generator=g)  # float32
        at = torch.tensor([f32(a) for a, _ in scales]).repeat_interleave(L)[:, None]
        st = torch.tensor([f32(s) for _, s in scales]).repeat_interleave(L)[:, None]
        beta = f32(1.0 / tau)
        # Row by row would be the same: every op is elementwise in float32.
        y = torch.empty(B * L, V)
        z = torch.empty(B * L, dtype=torch.int64)
        for b in range(B):
            rows = slice(b * L, (b + 1) * L)
            y[rows], z[rows] = relaxed_input(x[rows], eps[rows], at[b * L, 0].item(), st[b * L, 0].item(), beta)
        P = torch.softmax(y.double(), dim=1)
        Ep, Wp = E.clone().requires_grad_(), W.clone().requires_grad_()
        h0 = P @ Ep
        h0.retain_grad()
        logits = h0 @ Wp.T
        logits.retain_grad()
        lx = torch.log_softmax(logits, dim=1)
        loss = duo_nelbo(lx, x, z, alpha, dalpha)
        closed = duo_nelbo_closed_form(lx.detach(), x, z, alpha, dalpha)
        assert torch.allclose(loss.detach(), closed, rtol=1e-12, atol=0), (loss, closed)
        loss.sum().backward()
        cases.append({
            "tau": tau, "inverse_tau_f32": beta,
            "eps": eps.double().flatten().tolist(),
            "soft_logits": y.double().flatten().tolist(),
            "z": z.tolist(),
            "soft_input": P.flatten().tolist(),
            "logits": logits.detach().flatten().tolist(),
            "loss": loss.detach().tolist(),
            "dlogits": logits.grad.flatten().tolist(),
            "dh0": h0.grad.flatten().tolist(),
            "dE": Ep.grad.flatten().tolist(),
            "dW": Wp.grad.flatten().tolist(),
        })
    fixture = {
        "about": "DUO curriculum relaxed input + NELBO chain; written by tools/reference/make_curriculum_fixture.py",
        "B": B, "L": L, "V": V, "D": D, "gamma_min": GAMMA_MIN, "gamma_max": GAMMA_MAX,
        "t": TIMES, "gamma": gammas,
        "alpha": [a for a, _ in sched], "dalpha": [(GAMMA_MAX - GAMMA_MIN) * d for _, d in sched],
        "alpha_tilde_f32": [f32(a) for a, _ in scales], "sigma_tilde_f32": [f32(s) for _, s in scales],
        "x": x.tolist(),
        "E": E.flatten().tolist(), "W": W.flatten().tolist(),
        "cases": cases,
    }
    with open(OUT, "w") as f:
        json.dump(fixture, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
