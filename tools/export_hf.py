#!/usr/bin/python3
"""Exports a duo.cu checkpoint (one safetensors file: backbone.*, optional ema.backbone.* and optimizer
tensors, __metadata__ "config" = the ModelConfig JSON) as a Hugging Face folder in the layout of the released
checkpoints (s-sahoo/duo, kuleshov-group/mdlm-owt; see tools/duo_hf.py and docs/model.md §13).

    /usr/bin/python3 tools/export_hf.py runs/owt/last.safetensors out/hf_duo            # EMA weights
    /usr/bin/python3 tools/export_hf.py runs/owt/last.safetensors out/hf_duo --live     # training weights

The EMA weights are exported by default, as the reference evaluates and releases them. The algorithm (which
decides model_type: "DUO" or "mdlm") comes from the metadata key "algorithm" or "algo" (JSON text or a
plain string) or from --algo. Adam moments and other state tensors are not exported.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from duo_hf import ConvertError, hf_config, infer_sizes, main_guard, parameter_names, write_hf_folder  # noqa: E402
import st  # noqa: E402  (tools/reference/st.py, on the path once duo_hf is imported)


def metadata_value(meta, key):
    """A metadata value stored as JSON text (our checkpoints) or as a plain string."""
    text = meta.get(key)
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="duo.cu checkpoint (.safetensors)")
    ap.add_argument("out_dir", help="output folder: config.json + model.safetensors")
    ap.add_argument("--live", action="store_true", help="export backbone.* (training weights) instead of the EMA")
    ap.add_argument("--algo", help="duo | duo_base | distillation | mdlm | ar | sedd | d3pm (default: metadata)")
    args = ap.parse_args()
    where = args.checkpoint

    if not os.path.isfile(where):
        raise ConvertError(where, "no such file", "pass a duo.cu checkpoint (.safetensors)")
    try:
        tensors, meta = st.load(where)
    except (ValueError, KeyError, UnicodeDecodeError) as e:
        raise ConvertError(where, f"is not a valid safetensors file ({e})", "is the file complete?")
    config = metadata_value(meta, "config")
    if not isinstance(config, dict):
        raise ConvertError(where, "__metadata__ has no JSON 'config'", "export a checkpoint written by duo.cu")
    for key in ("vocab_size", "hidden", "n_blocks", "n_heads", "length"):
        if not isinstance(config.get(key), int):
            raise ConvertError(where, f"config has no integer '{key}'", "export a checkpoint written by duo.cu")
    algo = args.algo or metadata_value(meta, "algorithm") or metadata_value(meta, "algo")
    if not isinstance(algo, str):
        raise ConvertError(where, "the algorithm is not in __metadata__ ('algorithm' or 'algo')",
                           "pass --algo duo (or mdlm, ar, sedd, d3pm, ...)")

    prefix = "" if args.live else "ema."
    group = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix + "backbone.")}
    if not group:
        raise ConvertError(where, f"has no {prefix}backbone.* tensors",
                           "the checkpoint holds no EMA weights; pass --live" if not args.live else "")
    causal = bool(config.get("causal", False))
    want = set(parameter_names(config["n_blocks"], causal))
    got = set(group) - {"backbone.rotary_emb.inv_freq"}
    if got != want:
        missing, extra = sorted(want - got), sorted(got - want)
        raise ConvertError(where, f"{prefix}backbone.* does not match the config: missing {missing[:3]}, "
                           f"unexpected {extra[:3]}", "the file was not written for this config")
    sizes = infer_sizes({k: tuple(v.shape) for k, v in group.items()}, where)
    for key in ("vocab_size", "hidden", "n_blocks"):
        if sizes[key] != config[key]:
            raise ConvertError(where, f"tensors say {key} = {sizes[key]}, the config says {config[key]}",
                               "the file is inconsistent; re-save it")
    if not causal and sizes["cond_dim"] != config.get("cond_dim", sizes["cond_dim"]):
        raise ConvertError(where, f"tensors say cond_dim = {sizes['cond_dim']}, the config {config['cond_dim']}",
                           "the file is inconsistent; re-save it")

    cfg = hf_config(sizes, config["n_heads"], config["length"], float(config.get("dropout", 0.1)), algo)
    weights = {k: v for k, v in group.items() if k != "backbone.rotary_emb.inv_freq"}
    meta_out = {"source": os.path.basename(where), "weights": "live" if args.live else "ema"}
    write_hf_folder(args.out_dir, weights, cfg, meta_out)
    print(f"{args.out_dir}: {len(weights) + 1} tensors ({'live' if args.live else 'EMA'} weights), "
          f"model_type {cfg.get('model_type', '(none)')}, algo {cfg['algo']}")


if __name__ == "__main__":
    main_guard(main)
