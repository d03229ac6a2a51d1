#!/usr/bin/python3
"""Tests of tools/convert_lightning_ckpt.py and tools/export_hf.py (not part of `make test`: it needs torch).

    /usr/bin/python3 tools/reference/test_convert.py        (from the repository root; ~10 s; exit 1 on failure)

1. A synthetic Lightning checkpoint in the reference's structure (state_dict with the rotary buffer in the
   middle, ema {shadow_params, num_updates, decay}, optimizer state, hyper_parameters holding classes that are
   not importable here: an OmegaConf-like config, a tokenizer, a Lightning AttributeDict, and an object whose
   unpickling would run a shell command) -> the converter: EMA weights by default, --live, config.json
   fields from the hyper_parameters, nothing executed; broken EMA lists are refused.
2. A duo.cu checkpoint (backbone.*, ema.backbone.*, optim.*) -> export_hf -> loaded back into the PyTorch
   reference DiT with load_state_dict(strict=True): same logits as the EMA model.
"""
import json
import os
import subprocess
import sys
import tempfile
import types

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import st  # noqa: E402
from dit import Config, Wrapper, init_random_  # noqa: E402

PY = sys.executable
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(*args):
    p = subprocess.run([PY, *args], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def fake_module(name, **classes):
    """Registers module `name` with the given classes so torch.save can pickle them by reference; the
    converter's process cannot import it (it only exists in this process)."""
    parts = name.split(".")
    for i in range(1, len(parts)):  # pickle imports the parent packages first
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    mod = types.ModuleType(name)
    for cls_name, cls in classes.items():
        cls.__module__, cls.__qualname__, cls.__name__ = name, cls_name, cls_name
        setattr(mod, cls_name, cls)
    sys.modules[name] = mod
    return mod


class DictConfig:  # pickles like OmegaConf's: __dict__ with "_content" of nodes
    def __init__(self, content):
        self.__dict__["_content"] = content
        self.__dict__["_metadata"] = {"ref_type": "Any"}


class AnyNode:
    def __init__(self, val):
        self._val = val


class AttributeDict(dict):
    pass


class Tokenizer:
    def __init__(self):
        self.vocab = {"a": 0}


class RunsAShellCommand:
    marker = None

    def __reduce__(self):
        return (os.system, (f"touch {RunsAShellCommand.marker}",))


fake_module("omegaconf.dictconfig", DictConfig=DictConfig)
fake_module("omegaconf.nodes", AnyNode=AnyNode)
fake_module("lightning.fabric.utilities.data", AttributeDict=AttributeDict)
fake_module("transformers.models.gpt2.tokenization_gpt2_fast", GPT2TokenizerFast=Tokenizer)
fake_module("evil", RunsAShellCommand=RunsAShellCommand)


def omegaconf(d):
    return DictConfig({k: omegaconf(v) if isinstance(v, dict) else AnyNode(v) for k, v in d.items()})


def model(causal, seed):
    cfg = Config(vocab_size=67, hidden=64, n_blocks=2, n_heads=4, cond_dim=32, length=32, causal=causal)
    m = Wrapper(cfg)
    init_random_(m, torch.Generator().manual_seed(seed))
    return cfg, m.eval()


def lightning_ckpt(path, m, algo, ema_shift=1.0, hp=True):
    params = list(m.parameters())
    shadow = [p.detach().clone() + ema_shift for p in params]
    hyper = AttributeDict(config=omegaconf({"algo": {"name": algo}, "model": {"n_heads": 4, "length": 32,
                                                                                "dropout": 0.1}}),
                          tokenizer=Tokenizer(), trap=RunsAShellCommand())
    ckpt = {"state_dict": m.state_dict(), "epoch": 3, "global_step": 1200, "pytorch-lightning_version": "2.2.1",
            "optimizer_states": [{"state": {0: {"exp_avg": torch.zeros(3)}}}],
            "ema": {"decay": 0.9999, "num_updates": 1200, "shadow_params": shadow}}
    if hp:
        ckpt["hyper_parameters"] = hyper
    torch.save(ckpt, path)
    return shadow


def logits(m, cfg):
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(0, cfg.vocab_size, (2, 32), generator=g)
    with torch.no_grad():
        return m(ids) if cfg.causal else m(ids, torch.tensor([0.5, 2.0]))


def test_convert(tmp):
    convert = os.path.join(TOOLS, "convert_lightning_ckpt.py")
    cfg, m = model(False, 1)
    ckpt = os.path.join(tmp, "duo.ckpt")
    RunsAShellCommand.marker = os.path.join(tmp, "executed")
    shadow = lightning_ckpt(ckpt, m, "duo_base")

    rc, out = run(convert, ckpt, os.path.join(tmp, "ema"))
    check(rc == 0, f"convert EMA: exit 0 ({out.strip()})")
    if rc != 0:
        return
    check(not os.path.exists(RunsAShellCommand.marker), "unpickling ran nothing from the checkpoint")
    tensors, meta = st.load(os.path.join(tmp, "ema", "model.safetensors"))
    names = [n for n, _ in m.named_parameters()]
    check(all((tensors[n] == s.numpy()).all() for n, s in zip(names, shadow)), "EMA weights under the right names")
    check(set(tensors) == set(m.state_dict()), "exactly the backbone's tensors (inv_freq included)")
    check((tensors["backbone.rotary_emb.inv_freq"] == m.state_dict()["backbone.rotary_emb.inv_freq"].numpy()).all(),
          "inv_freq equals the reference buffer")
    check(list(tensors) == sorted(tensors), "tensors in name order")
    conf = json.load(open(os.path.join(tmp, "ema", "config.json")))
    want = {"model_type": "DUO", "architectures": ["DUO"], "hidden_dim": 64, "cond_dim": 32, "n_blocks": 2,
            "n_heads": 4, "vocab_size": 67, "model_length": 32, "dropout": 0.1, "causal": False,
            "time_conditioning": True}
    check(all(conf.get(k) == v for k, v in want.items()), f"config.json fields {conf}")
    check("ema" in meta["weights"] and meta["global_step"] == "1200", f"metadata {meta}")

    rc, out = run(convert, ckpt, os.path.join(tmp, "live"), "--live")
    live, _ = st.load(os.path.join(tmp, "live", "model.safetensors"))
    check(rc == 0 and all((live[n] == p.detach().numpy()).all() for n, p in m.named_parameters()),
          "--live: the state_dict weights")

    # Loads into the PyTorch reference (strict) and gives the EMA model's logits.
    ema_model = model(False, 1)[1]
    with torch.no_grad():
        for p, s in zip(ema_model.parameters(), shadow):
            p.copy_(s)
    back = model(False, 2)[1]
    back.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, strict=True)
    check(torch.equal(logits(back, cfg), logits(ema_model, cfg)), "converted folder reproduces the EMA logits")

    # Causal (AR) model, hyper_parameters absent: sizes from the tensors, n_heads = d / 64 unless given.
    ccfg, cm = model(True, 3)
    cpath = os.path.join(tmp, "ar.ckpt")
    lightning_ckpt(cpath, cm, "ar", hp=False)
    rc, out = run(convert, cpath, os.path.join(tmp, "ar"), "--n_heads", "4", "--model_length", "32")
    conf = json.load(open(os.path.join(tmp, "ar", "config.json")))
    check(rc == 0 and conf["causal"] is True and conf["algo"] == "ar" and "model_type" not in conf
          and conf["n_heads"] == 4, f"causal checkpoint: {conf}")

    # Broken inputs.
    bad = os.path.join(tmp, "bad.ckpt")
    c = torch.load(ckpt, pickle_module=sys.modules["pickle"])
    c["ema"]["shadow_params"] = c["ema"]["shadow_params"][::-1]
    torch.save(c, bad)
    rc, out = run(convert, bad, os.path.join(tmp, "bad"))
    check(rc == 1 and "shape" in out and "HINT" in out, f"EMA list in the wrong order is refused: {out.strip()}")
    c["ema"]["shadow_params"] = c["ema"]["shadow_params"][1:]
    torch.save(c, bad)
    rc, out = run(convert, bad, os.path.join(tmp, "bad"))
    check(rc == 1 and "shadow_params has" in out, f"short EMA list is refused: {out.strip()}")
    del c["ema"]
    torch.save(c, bad)
    rc, out = run(convert, bad, os.path.join(tmp, "bad"))
    check(rc == 1 and "--live" in out, f"missing EMA suggests --live: {out.strip()}")
    rc, out = run(convert, os.path.join(tmp, "nothing.ckpt"), os.path.join(tmp, "bad"))
    check(rc == 1 and "no such file" in out, "missing file")


def test_export(tmp):
    export = os.path.join(TOOLS, "export_hf.py")
    cfg, m = model(False, 4)
    _, ema = model(False, 5)
    path = os.path.join(tmp, "last.safetensors")
    live = [(n, p.detach().numpy()) for n, p in m.named_parameters()]
    shadow = [("ema." + n, p.detach().numpy()) for n, p in ema.named_parameters()]
    adam = [("optim.m." + n, p.detach().numpy() * 0) for n, p in m.named_parameters()]
    meta = {"format": "duo.cu checkpoint", "config": json.dumps(cfg.to_dict()), "algorithm": json.dumps("mdlm"),
            "step": "1000"}
    st.save(path, live + shadow + adam, meta)

    rc, out = run(export, path, os.path.join(tmp, "hf"))
    check(rc == 0, f"export: exit 0 ({out.strip()})")
    if rc != 0:
        return
    tensors, _ = st.load(os.path.join(tmp, "hf", "model.safetensors"))
    conf = json.load(open(os.path.join(tmp, "hf", "config.json")))
    check(conf["model_type"] == "mdlm" and conf["time_conditioning"] is False and conf["n_heads"] == 4
          and conf["model_length"] == 32 and conf["hidden_dim"] == 64, f"config.json {conf}")
    back = model(False, 6)[1]
    back.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, strict=True)
    check(torch.equal(logits(back, cfg), logits(ema, cfg)), "round trip: the exported EMA weights give the same logits")

    rc, out = run(export, path, os.path.join(tmp, "hf_live"), "--live", "--algo", "duo")
    tensors, _ = st.load(os.path.join(tmp, "hf_live", "model.safetensors"))
    conf = json.load(open(os.path.join(tmp, "hf_live", "config.json")))
    check(rc == 0 and conf["model_type"] == "DUO" and
          all((tensors[n] == v).all() for n, v in live), "--live --algo duo: training weights, model_type DUO")

    only_live = os.path.join(tmp, "live_only.safetensors")
    st.save(only_live, live, meta)
    rc, out = run(export, only_live, os.path.join(tmp, "x"))
    check(rc == 1 and "--live" in out, f"no EMA: refused with a hint ({out.strip()})")
    no_algo = os.path.join(tmp, "no_algo.safetensors")
    st.save(no_algo, live + shadow, {"config": meta["config"]})
    rc, out = run(export, no_algo, os.path.join(tmp, "x"))
    check(rc == 1 and "--algo" in out, "no algorithm: refused with a hint")
    st.save(no_algo, live[1:] + shadow[1:], meta)
    rc, out = run(export, no_algo, os.path.join(tmp, "x"))
    check(rc == 1 and "missing" in out, f"missing tensor: refused ({out.strip()})")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        test_convert(tmp)
        test_export(tmp)
    print(f"{'FAILED: ' + str(len(failures)) if failures else 'all passed'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
