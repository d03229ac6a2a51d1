"""Writes tests/fixtures/distill.json: one distillation step's latents, α's and KL losses (see README_distill.md).

Run with Debian's python (it has torch): /usr/bin/python3 tools/reference/make_distill_fixture.py
Deterministic (seeded torch generator); numbers are written with repr precision.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import distill  # noqa: E402

V, L = 11, 16
GAMMA_MIN, GAMMA_MAX = -4.0, -1.0
gen = torch.Generator().manual_seed(20250712)

cases = []
# (t before the shift, δ): an interior step, a doubled δ, and one where t + δ is clipped to 1.
for t0, delta in [(0.3125, 1.0 / 64), (0.55, 4.0 / 64), (0.97, 8.0 / 64), (0.7, 16.0 / 64), (0.001, 1.0 / 512)]:
    x = torch.randint(0, V, (L,), generator=gen).tolist()
    eps = torch.randn(L, V, generator=gen, dtype=torch.float32)
    t, s = distill.step_times(t0, delta)
    g_t, g_s = distill.gamma_of(t, GAMMA_MIN, GAMMA_MAX), distill.gamma_of(s, GAMMA_MIN, GAMMA_MAX)
    z_t, z_s = distill.trajectory_latents(x, eps, g_t, g_s)
    student = 2.0 * torch.randn(L, V, generator=gen, dtype=torch.float64)
    teacher = student + 0.5 * torch.randn(L, V, generator=gen, dtype=torch.float64)
    case = {
        "t0": t0, "delta": delta, "t": t, "s": s, "gamma_t": g_t, "gamma_s": g_s,
        "alpha_t": distill.alpha_of_gamma(g_t, V), "alpha_s": distill.alpha_of_gamma(g_s, V),
        "x": x, "eps": eps.flatten().tolist(), "z_t": z_t, "z_s": z_s,
        "student": student.flatten().tolist(), "teacher": teacher.flatten().tolist(),
    }
    for kind in ("kl-bwd", "kl-fwd"):
        kl, grad = distill.kl_per_token(student, teacher, kind)
        case[kind] = {"loss": kl.tolist(), "grad": grad.flatten().tolist()}
    case["trajectory_differs"] = sum(a != b for a, b in zip(z_t, z_s))
    cases.append(case)

out = {"V": V, "L": L, "gamma_min": GAMMA_MIN, "gamma_max": GAMMA_MAX, "cases": cases}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "distill.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("wrote", os.path.normpath(path), "with", len(cases), "cases")
