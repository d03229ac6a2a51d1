#!/usr/bin/python3
"""One DUO ancestral sampling step with the PyTorch reference DiT (tools/reference/dit.py), for comparison with
build/bench-sample_throughput (which runs this script itself with the same configuration).

A step is what the reference's sampler does per step (docs/sampling.md §1, §4): forward of the DiT at
sigma = -log alpha_t, log_softmax, cast to float64, the uniform-state posterior q(z_s | z_t, x̂) and the
exponential-race categorical draw, all in float64 as with sampling.use_float64. Random weights, float32 model;
--bf16 runs the forward under torch.autocast("cpu", torch.bfloat16) (PyTorch's bf16 matmuls on oneDNN), the peer
of our --compute bf16.

Prints one line: `torch_ms_per_step <ms> forward_ms <ms>` (medians over --repeats steps after one warm-up).
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "reference"))
import dit  # noqa: E402

PRESETS = {"tiny": (256, 8, 8), "small": (768, 12, 12), "medium": (1024, 24, 16)}


def posterior_step(log_x, z, alpha_t, alpha_s, generator):
    """z_s ~ q(z_s | z_t = z, x̂) for uniform noise, float64 (docs/sampling.md §4), exponential race."""
    V = log_x.shape[-1]
    x = log_x.to(torch.float64).exp()
    x_z = torch.gather(x, -1, z.unsqueeze(-1))
    alpha_ts = alpha_t / alpha_s
    onehot = torch.nn.functional.one_hot(z, V).to(torch.float64)
    num = (V * alpha_t * x * onehot + (alpha_ts - alpha_t) * onehot + (alpha_s - alpha_t) * x
           + (1 - alpha_ts) * (1 - alpha_s) / V)
    q = num / (V * alpha_t * x_z + 1 - alpha_t)
    u = torch.rand(q.shape, generator=generator, dtype=torch.float64)
    g = 1e-10 - (u + 1e-10).log()
    return (q / g).argmax(dim=-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--vocab_size", type=int, default=50258)
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave torch's default)")
    ap.add_argument("--bf16", action="store_true", help="forward under CPU autocast to bfloat16")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    d, n_blocks, n_heads = PRESETS[a.model]
    cfg = dit.Config(a.vocab_size, d, n_blocks, n_heads, length=a.length, dropout=0.0)
    model = dit.Wrapper(cfg).eval()
    gen = torch.Generator().manual_seed(0)
    dit.init_random_(model, gen)
    z = torch.randint(0, a.vocab_size, (a.batch, a.length), generator=gen)
    alpha_t, alpha_s = 0.5, 0.55
    sigma = torch.full((a.batch,), -torch.log(torch.tensor(alpha_t)).item())
    steps, forwards = [], []
    with torch.no_grad():
        for i in range(a.repeats + 1):
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                logits = model(z, sigma).float()
            t1 = time.perf_counter()
            log_x = torch.log_softmax(logits, dim=-1)
            z = posterior_step(log_x, z, alpha_t, alpha_s, gen)
            t2 = time.perf_counter()
            if i > 0:  # the first step warms up the allocator and the kernels
                forwards.append((t1 - t0) * 1e3)
                steps.append((t2 - t0) * 1e3)
    print(f"torch_ms_per_step {statistics.median(steps):.2f} forward_ms {statistics.median(forwards):.2f} "
          f"threads {torch.get_num_threads()} torch {torch.__version__}")


if __name__ == "__main__":
    main()
