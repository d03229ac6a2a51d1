#!/usr/bin/python3
"""Forward + backward step time of the PyTorch reference DiT (tools/reference/dit.py) on the CPU, float32,
for the same configuration as build/bench-dit_step. Prints one line of JSON. --bf16 runs the forward and the loss
under torch.autocast("cpu", torch.bfloat16) (bf16 matmuls on oneDNN, fp32 weights), the peer of --compute bf16.

  /usr/bin/python3 bench/torch_dit_step.py --model tiny --vocab 65 --batch 8 --length 256 --threads 2
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools", "reference"))
import dit  # noqa: E402

PRESETS = {"tiny": (256, 8, 8), "small": (768, 12, 12), "medium": (1024, 24, 16)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--vocab", type=int, default=65)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="forward and loss under CPU autocast to bfloat16")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    d, n_blocks, n_heads = PRESETS[a.model]
    cfg = dit.Config(a.vocab, d, n_blocks, n_heads, cond_dim=128, length=a.length, dropout=0.0, causal=a.causal)
    model = dit.Wrapper(cfg).float()
    g = torch.Generator().manual_seed(0)
    dit.init_random_(model, g)
    model.float()
    ids = torch.randint(0, a.vocab, (a.batch, a.length), generator=g)
    sigma = torch.rand(a.batch, generator=g, dtype=torch.float32)
    targets = torch.randint(0, a.vocab, (a.batch, a.length), generator=g)
    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=False)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            logits = model(ids) if a.causal else model(ids, sigma)
            loss = F.cross_entropy(logits.float().reshape(-1, a.vocab), targets.reshape(-1))
        loss.backward()
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    ms = 1000 * sorted(times)[len(times) // 2]
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "bf16": a.bf16, "threads": a.threads, "model": a.model,
                      "batch": a.batch, "length": a.length, "vocab": a.vocab, "ms_per_step": round(ms, 2),
                      "tokens_per_s": round(a.batch * a.length / (ms / 1000), 1)}))


if __name__ == "__main__":
    main()
