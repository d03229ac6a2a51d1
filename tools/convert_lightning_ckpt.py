#!/usr/bin/python3
"""Converts a reference Lightning checkpoint (.ckpt: the DUO / MDLM repositories' raw checkpoints, e.g. the
Google Drive releases) into a Hugging Face-style folder the engine loads (config.json + model.safetensors,
see tools/duo_hf.py and docs/training.md §10.2).

    /usr/bin/python3 tools/convert_lightning_ckpt.py duo.ckpt out/duo_owt            # EMA weights
    /usr/bin/python3 tools/convert_lightning_ckpt.py duo.ckpt out/duo_owt_live --live # training weights

Weights: by default the EMA shadow weights (`ema.shadow_params`), which the reference uses for every
evaluation. That list has no names: it follows the backbone's parameters() order, which is the order of the
`backbone.*` keys of `state_dict` without the buffers (rotary_emb.inv_freq). The converter derives the
names that way, checks them against the registration order of docs/model.md §2 and checks every shape.
`--live` takes the `state_dict` tensors instead.

Unpickling: the checkpoint's `hyper_parameters` hold an OmegaConf config and the tokenizer object, whose
classes (omegaconf, transformers, lightning) need not be installed here. The loader maps every class outside
torch / numpy / the standard containers to an inert placeholder that only records its state, so nothing of
the checkpoint's code runs. From the placeholders it reads model.n_heads, model.length, model.dropout and
algo.name when they are there; --n_heads / --model_length / --algo override them.
"""
import argparse
import os
import pickle
import sys
import types

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from duo_hf import (INV_FREQ, ConvertError, check_names, hf_config, infer_sizes, main_guard,  # noqa: E402
                    write_hf_folder)

# Modules whose classes may be built while unpickling: tensors and storages, numpy arrays (RNG states),
# containers. Anything else becomes a Placeholder.
TRUSTED_MODULES = ("torch", "numpy", "collections", "builtins", "copyreg", "_codecs")


class Placeholder:
    """Stands in for a class that is not unpickled for real: keeps constructor arguments, state and items."""

    def __new__(cls, *args, **kwargs):  # unpickling may create it with __new__ only (NEWOBJ), so set up here
        obj = super().__new__(cls)
        obj._args, obj._kwargs, obj._state, obj._items = args, kwargs, None, {}
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self._state = state

    def __setitem__(self, key, value):
        self._items[key] = value

    def append(self, value):
        self._items[len(self._items)] = value

    def extend(self, values):
        for v in values:
            self.append(v)


def placeholder_class(module, name):
    return type(name, (Placeholder,), {"__module__": module, "__qualname__": name})


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module.split(".")[0] in TRUSTED_MODULES:
            return super().find_class(module, name)
        return placeholder_class(module, name)


# A stand-in for the pickle module with the restricted Unpickler. torch.load subclasses
# pickle_module.Unpickler, so the restriction applies to the checkpoint's data.pkl while torch still resolves
# its own storages. Some torch builds (Debian's 1.13) ignore the pickle_module argument unless weights_only
# and use their module-global `pickle`, so load_checkpoint also swaps that global for the duration of the load.
restricted_pickle = types.ModuleType("restricted_pickle")
restricted_pickle.__dict__.update({k: v for k, v in vars(pickle).items() if not k.startswith("__")})
restricted_pickle.Unpickler = RestrictedUnpickler
restricted_pickle.load = lambda f, **kw: RestrictedUnpickler(f, **kw).load()


def load_checkpoint(path):
    if not os.path.isfile(path):
        raise ConvertError(path, "no such file", "pass the path of a Lightning .ckpt")
    kwargs = dict(map_location="cpu", pickle_module=restricted_pickle)
    if "weights_only" in torch.load.__code__.co_varnames:
        kwargs["weights_only"] = False  # torch >= 2.6 defaults to True, which refuses any pickle_module
    saved = torch.serialization.pickle
    torch.serialization.pickle = restricted_pickle
    try:
        ckpt = torch.load(path, **kwargs)
    except (RuntimeError, pickle.UnpicklingError, EOFError) as e:
        raise ConvertError(path, f"cannot be read as a torch checkpoint ({e})", "is the download complete?")
    finally:
        torch.serialization.pickle = saved
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ConvertError(path, "has no 'state_dict'", "expected a PyTorch Lightning checkpoint")
    return ckpt


def plain(obj, depth=0):
    """Placeholders (OmegaConf nodes, AttributeDicts) turned back into plain dicts / lists / values."""
    if depth > 50:
        return None
    if isinstance(obj, Placeholder):
        state = obj._state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = state[1]  # (dict state, slots state) of classes with __slots__
        if isinstance(state, dict) and "_content" in state:  # OmegaConf DictConfig / ListConfig
            return plain(state["_content"], depth + 1)
        if isinstance(state, dict) and "_val" in state:      # OmegaConf value node
            return plain(state["_val"], depth + 1)
        if obj._items:
            return {k: plain(v, depth + 1) for k, v in obj._items.items()}
        return plain(state, depth + 1) if state is not None else None
    if isinstance(obj, dict):
        return {k: plain(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v, depth + 1) for v in obj]
    return obj


def hparam(config, *path):
    """config[path[0]][path[1]]... or None."""
    for key in path:
        if not isinstance(config, dict) or key not in config:
            return None
        config = config[key]
    return config


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ckpt", help="Lightning checkpoint (.ckpt)")
    ap.add_argument("out_dir", help="output folder: config.json + model.safetensors")
    ap.add_argument("--live", action="store_true", help="the state_dict (training) weights instead of the EMA")
    ap.add_argument("--n_heads", type=int, help="attention heads (default: the checkpoint's config, else d/64)")
    ap.add_argument("--model_length", type=int, help="sequence length (default: the checkpoint's, else 1024)")
    ap.add_argument("--algo", help="duo | duo_base | distillation | mdlm | ar | sedd | d3pm (default: checkpoint's)")
    args = ap.parse_args()

    ckpt = load_checkpoint(args.ckpt)
    where = args.ckpt
    state = ckpt["state_dict"]
    backbone = [k for k in state if k.startswith("backbone.")]
    params = [k for k in backbone if k != INV_FREQ]
    sizes = infer_sizes({k: tuple(state[k].shape) for k in backbone}, where)
    check_names(params, sizes["n_blocks"], sizes["causal"], where)

    if args.live:
        weights = {k: state[k] for k in params}
        source = "state_dict"
    else:
        ema = ckpt.get("ema")
        if not isinstance(ema, dict) or "shadow_params" not in ema:
            raise ConvertError(where, "has no ema.shadow_params", "pass --live to convert the training weights")
        shadow = list(ema["shadow_params"])
        if len(shadow) != len(params):
            raise ConvertError(where, f"ema.shadow_params has {len(shadow)} tensors, the backbone has {len(params)} "
                               "parameters", "the EMA belongs to another model; pass --live for the state_dict")
        for name, t in zip(params, shadow):
            if tuple(t.shape) != tuple(state[name].shape):
                raise ConvertError(where, f"EMA tensor for {name} has shape {tuple(t.shape)}, the parameter has "
                                   f"{tuple(state[name].shape)}", "the EMA list is not in parameters() order")
        weights = dict(zip(params, shadow))
        source = f"ema (decay {ema.get('decay')}, num_updates {ema.get('num_updates')})"

    config = hparam(plain(ckpt.get("hyper_parameters")), "config") or {}
    n_heads = args.n_heads or hparam(config, "model", "n_heads") or sizes["hidden"] // 64
    length = args.model_length or hparam(config, "model", "length") or 1024
    dropout = hparam(config, "model", "dropout")
    algo = args.algo or hparam(config, "algo", "name")
    if algo is None:
        algo = "ar" if sizes["causal"] else None
    if algo is None:
        raise ConvertError(where, "the algorithm is not recorded in hyper_parameters.config.algo.name",
                           "pass --algo duo (or mdlm, sedd, d3pm, ...)")

    cfg = hf_config(sizes, int(n_heads), int(length), float(dropout if dropout is not None else 0.1), str(algo))
    tensors = {k: v.detach().to(torch.float32).numpy() for k, v in weights.items()}
    meta = {"source": os.path.basename(args.ckpt), "weights": source, "global_step": str(ckpt.get("global_step"))}
    write_hf_folder(args.out_dir, tensors, cfg, meta)
    n = sum(int(np.prod(t.shape)) for t in tensors.values())
    print(f"{args.out_dir}: {len(tensors)} tensors, {n:,} parameters from {source}; algo {cfg['algo']}, "
          f"d {sizes['hidden']}, {sizes['n_blocks']} blocks, {n_heads} heads, length {length}"
          f"{', causal' if sizes['causal'] else ''}")


if __name__ == "__main__":
    main_guard(main)
