#!/usr/bin/python3
"""Writes tests/fixtures/gpt2_tiny/{config.json, model.safetensors, expected.safetensors} (see README_gpt2.md).

Run from the repository root:  /usr/bin/python3 tools/reference/make_gpt2_fixtures.py
Deterministic (fixed seeds, CPU, float64): re-running reproduces the committed files byte for byte.
Weights are rounded to float32 values, everything is computed in float64 and stored as F32.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from gpt2 import GPT2, gen_ppl  # noqa: E402

OUT = os.path.join("tests", "fixtures", "gpt2_tiny")
CFG = dict(vocab_size=50, n_positions=16, n_embd=32, n_layer=2, n_head=4, layer_norm_epsilon=1e-5)
EOS = CFG["vocab_size"] - 1  # the tiny vocabulary has no id 50256; the driver takes the EOS id as an option


def build_model():
    torch.manual_seed(0)
    model = GPT2(CFG["vocab_size"], CFG["n_positions"], CFG["n_embd"], CFG["n_layer"], CFG["n_head"],
                 CFG["layer_norm_epsilon"]).double()
    g = torch.Generator().manual_seed(4321)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight":
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g, dtype=torch.float64))
            elif name in ("wte.weight", "wpe.weight"):
                p.copy_(0.25 * torch.randn(p.shape, generator=g, dtype=torch.float64))
            else:  # Conv1D weights [in, out] and all biases (LayerNorm biases too: non-zero so they are tested)
                fan_in = p.shape[0] if p.dim() == 2 else CFG["n_embd"]
                p.copy_((2 * torch.rand(p.shape, generator=g, dtype=torch.float64) - 1) / fan_in ** 0.5)
            p.copy_(p.float().double())
    model.eval()
    return model


def main():
    os.makedirs(OUT, exist_ok=True)
    model = build_model()
    V, n_ctx = CFG["vocab_size"], CFG["n_positions"]

    config = dict(CFG, architectures=["GPT2LMHeadModel"], model_type="gpt2", n_ctx=n_ctx, n_inner=None,
                  activation_function="gelu_new", bos_token_id=EOS, eos_token_id=EOS)
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    # HF files store the attention-mask buffers too (h.{i}.attn.bias); keep them to test that they are ignored.
    st.save(os.path.join(OUT, "model.safetensors"),
            [(k, v.float().numpy()) for k, v in model.state_dict().items()], {"format": "pt"})

    # 1. Logits and per-target NLL of a right-padded batch (B = 3, N = n_ctx).
    g = torch.Generator().manual_seed(99)
    lengths = torch.tensor([16, 11, 5])
    ids = torch.randint(0, V - 1, (3, n_ctx), generator=g)
    ids[0, 7] = EOS
    for b in range(3):
        ids[b, lengths[b]:] = EOS
    with torch.no_grad():
        logits = model(ids)
        nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")  # (B, N-1)

    # 2. Generative perplexity of samples of different lengths (token ids, as re-tokenised), n_ctx 16,
    #    max_length 24 (so sequences are chunked in 16 + 8), batch size 3 (so the 4th sample is a remainder).
    def rand(n):
        return torch.randint(0, V - 1, (n,), generator=g).tolist()
    samples = [
        [EOS] + rand(9) + [EOS] + rand(9),       # EOS at position 0, an interior EOS, 20 tokens: two chunks
        rand(9),                                 # no EOS: the first padding EOS counts (the reference's rule)
        [EOS, EOS] + rand(10) + [EOS],           # a doubled EOS at the start, a final EOS
        rand(17) + [EOS] + rand(7),              # 25 tokens: truncated to 24; its EOS starts the 2nd chunk + 1
    ]
    max_length, batch_size = 24, 3
    with torch.no_grad():
        ppl_all, sum_all, w_all = gen_ppl(model, samples, max_length, batch_size, n_ctx, False, EOS)
        ppl_drop, sum_drop, w_drop = gen_ppl(model, samples, max_length, batch_size, n_ctx, True, EOS)
    flat = [t for s in samples for t in s]
    offsets = np.cumsum([0] + [len(s) for s in samples])

    meta = {"eos": str(EOS), "max_length": str(max_length), "batch_size": str(batch_size),
            "note": "tools/reference/make_gpt2_fixtures.py; see tools/reference/README_gpt2.md"}
    st.save(os.path.join(OUT, "expected.safetensors"), [
        ("batch.ids", ids.int().numpy()),
        ("batch.lengths", lengths.int().numpy()),
        ("batch.logits", logits.float().numpy()),
        ("batch.nll", nll.float().numpy()),
        ("samples.ids", np.array(flat, dtype=np.int32)),
        ("samples.offsets", offsets.astype(np.int32)),
        ("gen_ppl.all", np.array([ppl_all, sum_all, w_all], dtype=np.float64)),
        ("gen_ppl.drop_last", np.array([ppl_drop, sum_drop, w_drop], dtype=np.float64)),
    ], meta)
    print(f"gen_ppl all: {ppl_all:.6f} (sum {sum_all:.6f}, weight {w_all:.0f}); "
          f"drop_last: {ppl_drop:.6f} (weight {w_drop:.0f})")


if __name__ == "__main__":
    main()
