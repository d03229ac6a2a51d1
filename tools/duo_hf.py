"""Shared by tools/convert_lightning_ckpt.py and tools/export_hf.py: the Hugging Face folder layout of the
released DUO / MDLM checkpoints (docs/model.md §13, docs/training.md §10.1) and the checks on `backbone.*` tensors.

A folder holds
  config.json        the reference's field names: hidden_dim, cond_dim, n_blocks, n_heads, vocab_size,
                     model_length, dropout, causal, time_conditioning, model_type / architectures
  model.safetensors  backbone.* float32 tensors in name order (as the safetensors library writes them),
                     including the rotary buffer backbone.rotary_emb.inv_freq
The engine reads it with src/io/hf.h (read_hf_config, load_hf_weights). The custom model code the HF hub
repositories ship (model.py, class DUO / MDLM) is not written: PyTorch users load the tensors by name.
"""
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
import st  # noqa: E402  (tools/reference/st.py: a tiny safetensors reader/writer)

INV_FREQ = "backbone.rotary_emb.inv_freq"
DUO_ALGOS = ("duo", "duo_base", "distillation")


class ConvertError(Exception):
    """A user-facing problem: printed as `path: problem` and a HINT line, exit status 1."""

    def __init__(self, where, what, hint=""):
        super().__init__(f"{where}: {what}" + (f"\n---> HINT: {hint}" if hint else ""))


def parameter_names(n_blocks, causal):
    """The backbone's parameters in registration order (= parameters() order, which the EMA list follows;
    docs/model.md §2, §11 for the causal model without sigma_map and adaLN)."""
    names = ["backbone.vocab_embed.embedding"]
    if not causal:
        names += [f"backbone.sigma_map.mlp.{i}.{w}" for i in (0, 2) for w in ("weight", "bias")]
    for i in range(n_blocks):
        p = f"backbone.blocks.{i}."
        names += [p + "norm1.weight", p + "attn_qkv.weight", p + "attn_out.weight", p + "norm2.weight",
                  p + "mlp.0.weight", p + "mlp.0.bias", p + "mlp.2.weight", p + "mlp.2.bias"]
        if not causal:
            names += [p + "adaLN_modulation.weight", p + "adaLN_modulation.bias"]
    names += ["backbone.output_layer.norm_final.weight", "backbone.output_layer.linear.weight",
              "backbone.output_layer.linear.bias"]
    if not causal:
        names += ["backbone.output_layer.adaLN_modulation.weight", "backbone.output_layer.adaLN_modulation.bias"]
    return names


def infer_sizes(shapes, where):
    """vocab_size, hidden, n_blocks, cond_dim, causal from the shapes {name: tuple} of backbone.* tensors."""
    emb = shapes.get("backbone.vocab_embed.embedding")
    if emb is None or len(emb) != 2:
        raise ConvertError(where, "no backbone.vocab_embed.embedding [V, d] tensor",
                           "this is not a DUO/MDLM/AR DiT checkpoint (docs/model.md §2)")
    blocks = {int(m.group(1)) for n in shapes for m in [re.match(r"backbone\.blocks\.(\d+)\.", n)] if m}
    if blocks != set(range(len(blocks))) or not blocks:
        raise ConvertError(where, f"block indices {sorted(blocks)} are not 0..n-1", "the checkpoint is incomplete")
    causal = "backbone.sigma_map.mlp.0.weight" not in shapes
    cond = shapes["backbone.sigma_map.mlp.0.weight"][0] if not causal else 128
    return dict(vocab_size=int(emb[0]), hidden=int(emb[1]), n_blocks=len(blocks), cond_dim=int(cond), causal=causal)


def check_names(names, n_blocks, causal, where):
    """`names` (backbone.* parameters, in their order) must be exactly the registration order of docs/model.md §2."""
    names, want = list(names), parameter_names(n_blocks, causal)
    if names != want:
        i = next((i for i, (a, b) in enumerate(zip(names, want)) if a != b), min(len(names), len(want)))
        got = names[i] if i < len(names) else "(nothing)"
        expected = want[i] if i < len(want) else "(nothing)"
        raise ConvertError(where, f"parameter {i} is {got}, expected {expected} (docs/model.md §2 order)",
                           "the checkpoint is not a DiT of the reference (or of another version)")


def inv_freq(head_dim):
    """RoPE frequencies 1 / 10000^(2j / head_dim), j < head_dim / 2, float32 as the reference's buffer."""
    return (1.0 / (10000.0 ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))).astype(np.float32)


def hf_config(sizes, n_heads, length, dropout, algo):
    """config.json of the released checkpoints: DUO (s-sahoo/duo) for the DUO family, mdlm
    (kuleshov-group/mdlm-owt) for MDLM; other algorithms (ar, sedd, d3pm) get no model_type (the engine's
    reader accepts that) and record the algorithm under "algo"."""
    algo = algo.lower()
    cfg = {"hidden_dim": sizes["hidden"], "cond_dim": sizes["cond_dim"], "n_blocks": sizes["n_blocks"],
           "n_heads": n_heads, "vocab_size": sizes["vocab_size"], "model_length": length, "dropout": dropout,
           "causal": sizes["causal"], "time_conditioning": algo not in ("mdlm", "ar"), "algo": algo,
           "return_dict": False, "torch_dtype": "float32"}
    if algo in DUO_ALGOS:
        cfg.update(architectures=["DUO"], model_type="DUO", var_min=True,
                   auto_map={"AutoConfig": "config.DUOConfig", "AutoModelForMaskedLM": "model.DUO"})
    elif algo == "mdlm":
        cfg.update(architectures=["MDLM"], model_type="mdlm")
    return cfg


def write_hf_folder(out_dir, tensors, config, metadata):
    """tensors: {backbone.* name: float32 array} without inv_freq (added here from the config)."""
    hd = config["hidden_dim"] // config["n_heads"]
    if config["hidden_dim"] % config["n_heads"] or hd % 2:
        raise ConvertError("config", f"hidden_dim {config['hidden_dim']} / n_heads {config['n_heads']} is not an "
                           "even integer head size", "pass the right --n_heads")
    tensors = dict(tensors)
    tensors[INV_FREQ] = inv_freq(hd)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    st.save(os.path.join(out_dir, "model.safetensors"),
            [(n, np.ascontiguousarray(tensors[n], dtype=np.float32)) for n in sorted(tensors)],
            dict(metadata, format="pt"))


def main_guard(main):
    """Runs main(); a ConvertError is printed without a traceback and exits with status 1."""
    try:
        main()
    except ConvertError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
