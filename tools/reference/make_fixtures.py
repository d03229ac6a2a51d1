#!/usr/bin/python3
"""Writes the DiT parity fixtures of tests/fixtures/ (see tools/reference/README.md for the contents).

Run from the repository root:  /usr/bin/python3 tools/reference/make_fixtures.py
Deterministic (fixed seeds, CPU, float64), so re-running reproduces the committed files byte for byte.

Everything is computed in float64 from float32-representable weights and inputs, then stored as F32: the
C++ float32 backend is compared with the most accurate answer, not with another float32 rounding.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
from dit import Config, Wrapper, init_random_  # noqa: E402

OUT = os.path.join("tests", "fixtures")
BATCH, BAG_K = 2, 3
ADAMW = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, clip_norm=1.0, steps=10)


def tiny_config(causal):
    return Config(vocab_size=67, hidden=64, n_blocks=2, n_heads=4, cond_dim=32, freq_dim=256, mlp_ratio=4,
                  length=32, dropout=0.0, causal=causal)


def f32(t):
    """Float64 tensor rounded to float32 values (kept in float64 for the computation)."""
    return t.float().double()


def build_model(cfg, source=None):
    """float64 model; random weights (rounded to float32 values), or copied by name from `source`."""
    torch.manual_seed(0)  # nn.Linear's constructor draws from the global generator; overwritten below anyway
    model = Wrapper(cfg).double()
    model.eval()  # dropout is 0 in the fixtures; eval() makes that doubly sure
    with torch.no_grad():
        if source is None:
            init_random_(model, torch.Generator().manual_seed(1234))
            for p in model.parameters():
                p.copy_(f32(p))
        else:
            theirs = dict(source.named_parameters())
            for name, p in model.named_parameters():
                p.copy_(theirs[name])
    return model


def loss_fn(logits, targets):
    """Mean cross-entropy over all B*L positions (plain log_softmax over the whole vocabulary)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long())


def params_tensors(model):
    return [(n, p.detach().float().numpy()) for n, p in model.named_parameters()]


def forward_and_grads(model, inputs, targets):
    model.zero_grad()
    logits = model(*inputs["args"], **inputs.get("kwargs", {}))
    loss = loss_fn(logits, targets)
    loss.backward()
    grads = [("grad." + n, p.grad.detach().float().numpy()) for n, p in model.named_parameters()]
    return logits.detach(), loss.detach(), grads


def adamw_run(model, inputs, targets):
    """ADAMW["steps"] steps of torch.optim.AdamW on the same batch with global-norm clipping.
    losses[k] / grad_norms[k]: loss and pre-clip gradient norm at the start of step k+1 (after k updates);
    final_loss: loss after the last update. The model is modified (pass a copy)."""
    opt = torch.optim.AdamW(model.parameters(), lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]),
                            eps=ADAMW["eps"], weight_decay=ADAMW["weight_decay"])
    losses, norms = [], []
    for _ in range(ADAMW["steps"]):
        opt.zero_grad()
        loss = loss_fn(model(*inputs["args"], **inputs.get("kwargs", {})), targets)
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), ADAMW["clip_norm"])))
        losses.append(float(loss))
        opt.step()
    with torch.no_grad():
        final = float(loss_fn(model(*inputs["args"], **inputs.get("kwargs", {})), targets))
    return np.array(losses, np.float32), np.array(norms, np.float32), np.array([final], np.float32)


def metadata(cfg, case, params_file, extra=None):
    m = {"config": json.dumps(cfg.to_dict()), "case": case, "params_file": params_file, "batch": str(BATCH),
         "loss": "mean cross-entropy of log_softmax(logits) vs targets over all batch*length positions",
         "precision": "computed in float64 from float32 weights/inputs, stored as F32",
         "generator": "tools/reference/make_fixtures.py"}
    m.update(extra or {})
    return m


def write_case(name, cfg, model, params_file, input_tensors, inputs, targets, with_adamw):
    logits, loss, grads = forward_and_grads(model, inputs, targets)
    tensors = list(input_tensors) + [("targets", targets.numpy().astype(np.int32)),
                                     ("logits", logits.float().numpy()),
                                     ("loss", np.array([float(loss)], np.float32))]
    extra = {}
    if with_adamw:
        losses, norms, final = adamw_run(build_model(cfg, model), inputs, targets)
        tensors += [("adamw.losses", losses), ("adamw.grad_norms", norms), ("adamw.final_loss", final)]
        extra["adamw"] = json.dumps(ADAMW)
    tensors += grads
    path = os.path.join(OUT, name)
    st.save(path, tensors, metadata(cfg, name.split(".")[0][4:], params_file, extra))
    print(f"{path}: {os.path.getsize(path)} bytes, loss {float(loss):.6f}")


def write_hf_folder(cfg, model):
    """An HF-style folder like s-sahoo/duo: config.json with the HF field names, model.safetensors with the
    backbone.* tensors in name order (as the safetensors library writes them) plus rotary_emb.inv_freq."""
    folder = os.path.join(OUT, "hf_tiny")
    os.makedirs(folder, exist_ok=True)
    config = {"architectures": ["DUO"], "auto_map": {"AutoConfig": "config.DUOConfig",
                                                     "AutoModelForMaskedLM": "model.DUO"},
              "causal": False, "cond_dim": cfg.cond_dim, "dropout": 0.1, "hidden_dim": cfg.hidden,
              "model_length": cfg.length, "model_type": "DUO", "n_blocks": cfg.n_blocks, "n_heads": cfg.n_heads,
              "return_dict": False, "torch_dtype": "float32", "transformers_version": "4.38.2", "var_min": True,
              "vocab_size": cfg.vocab_size}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    state = {n: t.float().numpy() for n, t in model.state_dict().items()}  # includes the inv_freq buffer
    st.save(os.path.join(folder, "model.safetensors"), sorted(state.items()), {"format": "pt"})
    print(f"{folder}: config.json + model.safetensors ({len(state)} tensors)")


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(42)
    B, L = BATCH, 32

    cfg = tiny_config(causal=False)
    model = build_model(cfg)
    st.save(os.path.join(OUT, "dit_params.safetensors"), params_tensors(model),
            metadata(cfg, "params", "dit_params.safetensors"))
    V = cfg.vocab_size
    ids = torch.randint(0, V, (B, L), generator=g)
    sigma = f32(torch.rand(B, generator=g, dtype=torch.float64) * 6.9 + 1e-3)  # sigma range of docs/model.md §9
    targets = torch.randint(0, V, (B, L), generator=g)
    sig = ("input.sigma", sigma.float().numpy())

    write_case("dit_ids.safetensors", cfg, model, "dit_params.safetensors",
               [("input.ids", ids.numpy().astype(np.int32)), sig], {"args": (ids, sigma)}, targets, True)

    soft = f32(2.0 * torch.randn(B, L, V, generator=g, dtype=torch.float64))
    write_case("dit_soft.safetensors", cfg, model, "dit_params.safetensors",
               [("input.soft", soft.float().numpy()), sig], {"args": (soft, sigma)}, targets, False)

    bag_ids = torch.randint(0, V, (B, L, BAG_K), generator=g)
    bag_w = f32(torch.rand(B, L, BAG_K, generator=g, dtype=torch.float64))
    write_case("dit_bag.safetensors", cfg, model, "dit_params.safetensors",
               [("input.bag_ids", bag_ids.numpy().astype(np.int32)), ("input.bag_weights", bag_w.float().numpy()),
                sig], {"args": (bag_ids, sigma), "kwargs": {"weights": bag_w}}, targets, False)

    # Causal (AR) model: the same weights minus sigma_map and every adaLN; a natural next-token batch.
    ccfg = tiny_config(causal=True)
    cmodel = build_model(ccfg, model)
    st.save(os.path.join(OUT, "dit_causal_params.safetensors"), params_tensors(cmodel),
            metadata(ccfg, "params", "dit_causal_params.safetensors"))
    seq = torch.randint(0, V, (B, L + 1), generator=g)
    cids, ctargets = seq[:, :-1].contiguous(), seq[:, 1:].contiguous()
    write_case("dit_causal.safetensors", ccfg, cmodel, "dit_causal_params.safetensors",
               [("input.ids", cids.numpy().astype(np.int32))], {"args": (cids,)}, ctargets, True)

    write_hf_folder(cfg, model)


if __name__ == "__main__":
    main()
