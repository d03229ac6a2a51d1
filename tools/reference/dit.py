#!/usr/bin/python3
"""The DUO DiT backbone in plain PyTorch, written from docs/model.md (not copied from models/dit.py).

It is the ground truth the C++ engine is checked against (tests/fixtures/dit_*.safetensors), so it is kept
small and literal: every module and parameter has the reference's name and registration order (docs/model.md §2), so
`state_dict()` keys are exactly `backbone.*` once wrapped in `Wrapper` (the Lightning/HF attribute name).

Precision: the reference runs the blocks under bf16 autocast; this reference does not. It computes in the
dtype of its parameters (float32 or float64), which is what the C++ CPU backend is compared with.

Inputs (docs/model.md §3): ids (B, L) int; soft input (B, L, V) float (softmax · E); or an embedding bag given as
(ids (B, L, k), weights (B, L, k)). sigma: (B,) float. Not used by the causal (AR) variant (docs/model.md §11).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Config:
    """Field names follow src/model/config.h (ModelConfig) so the metadata JSON maps one to one."""

    def __init__(self, vocab_size, hidden, n_blocks, n_heads, cond_dim=128, freq_dim=256, mlp_ratio=4,
                 length=1024, dropout=0.0, causal=False):
        self.vocab_size, self.hidden, self.n_blocks, self.n_heads = vocab_size, hidden, n_blocks, n_heads
        self.cond_dim, self.freq_dim, self.mlp_ratio, self.length = cond_dim, freq_dim, mlp_ratio, length
        self.dropout, self.causal = dropout, causal
        assert hidden % n_heads == 0 and (hidden // n_heads) % 2 == 0

    def to_dict(self):
        return dict(vocab_size=self.vocab_size, hidden=self.hidden, n_blocks=self.n_blocks, n_heads=self.n_heads,
                    cond_dim=self.cond_dim, freq_dim=self.freq_dim, mlp_ratio=self.mlp_ratio, length=self.length,
                    dropout=self.dropout, causal=self.causal)


class EmbeddingLayer(nn.Module):
    """docs/model.md §3: a raw [V, d] parameter named `embedding`; no positional table, no scaling."""

    def __init__(self, dim, vocab):
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(vocab, dim))

    def forward(self, x, weights=None):
        if weights is not None:  # embedding bag, mode sum: sum_j w[..., j] * E[ids[..., j]]
            return (self.embedding[x] * weights.unsqueeze(-1)).sum(dim=-2)
        if x.is_floating_point():  # soft lookup of the DUO curriculum
            return torch.softmax(x, dim=-1) @ self.embedding
        return self.embedding[x]


class TimestepEmbedder(nn.Module):
    """docs/model.md §4: sinusoid of sigma (cos first, then sin), then Linear -> SiLU -> Linear. Attribute: sigma_map."""

    def __init__(self, cond_dim, freq_dim):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim))

    def sinusoid(self, sigma):
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=sigma.dtype) / half)
        args = sigma[:, None] * freqs[None, :]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    def forward(self, sigma):
        return self.mlp(self.sinusoid(sigma))


class Rotary(nn.Module):
    """docs/model.md §6: rotate-half RoPE over the full head dim, base 10000. inv_freq is a persistent buffer, as in the
    reference (HF files carry `backbone.rotary_emb.inv_freq`; the C++ loader ignores it and recomputes)."""

    def __init__(self, head_dim):
        super().__init__()
        self.head_dim = head_dim
        self.register_buffer("inv_freq", self.frequencies(torch.float32))

    def frequencies(self, dtype):
        return 1.0 / (10000.0 ** (torch.arange(0, self.head_dim, 2, dtype=dtype) / self.head_dim))

    def forward(self, length, dtype):
        # Recomputed in the compute dtype (not read from the float32 buffer) so a float64 run is exact.
        pos = torch.arange(length, dtype=dtype)
        freqs = torch.outer(pos, self.frequencies(dtype))  # (L, hd/2)
        return torch.cos(freqs), torch.sin(freqs)


def apply_rotary(x, cos, sin):
    """x: (B, L, H, hd). Dims j and j + hd/2 form a pair (GPT-NeoX convention)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


def layer_norm(x, weight):
    """LayerNorm over the last dim, eps 1e-5, biased variance, scale only (no bias)."""
    return F.layer_norm(x, (x.shape[-1],), weight=weight, bias=None, eps=1e-5)


def modulate(x, shift, scale):
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


class LayerNormNoBias(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return layer_norm(x, self.weight)


def attention(qkv, n_heads, cos, sin, causal):
    """qkv: (B, L, 3d) with feature order [q, k, v] x [head] x [dim]. Returns (B, L, d), heads concatenated."""
    B, L, three_d = qkv.shape
    d = three_d // 3
    qkv = qkv.view(B, L, 3, n_heads, d // n_heads)
    q = apply_rotary(qkv[:, :, 0], cos, sin)
    k = apply_rotary(qkv[:, :, 1], cos, sin)
    v = qkv[:, :, 2]
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, L, hd)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(d // n_heads)
    if causal:
        mask = torch.ones(L, L, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
    o = torch.softmax(scores, dim=-1) @ v
    return o.transpose(1, 2).reshape(B, L, d)


class DDiTBlock(nn.Module):
    """docs/model.md §5 (adaLN, bidirectional) or docs/model.md §11 (causal: no adaLN, gates = 1). Registration order of docs/model.md §2."""

    def __init__(self, cfg):
        super().__init__()
        d, m = cfg.hidden, cfg.mlp_ratio * cfg.hidden
        self.n_heads, self.causal, self.p = cfg.n_heads, cfg.causal, cfg.dropout
        self.norm1 = LayerNormNoBias(d)
        self.attn_qkv = nn.Linear(d, 3 * d, bias=False)
        self.attn_out = nn.Linear(d, d, bias=False)
        self.norm2 = LayerNormNoBias(d)
        self.mlp = nn.Sequential(nn.Linear(d, m), nn.GELU(approximate="tanh"), nn.Linear(m, d))
        if not cfg.causal:
            self.adaLN_modulation = nn.Linear(cfg.cond_dim, 6 * d)

    def forward(self, h, cos, sin, c):
        drop = lambda t: F.dropout(t, self.p, self.training)  # on the branch, before the gate
        if self.causal:
            h = h + drop(self.attn_out(attention(self.attn_qkv(self.norm1(h)), self.n_heads, cos, sin, True)))
            return h + drop(self.mlp(self.norm2(h)))
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=-1)
        a = modulate(self.norm1(h), shift_msa, scale_msa)
        h = h + gate_msa[:, None, :] * drop(self.attn_out(attention(self.attn_qkv(a), self.n_heads, cos, sin, False)))
        a = modulate(self.norm2(h), shift_mlp, scale_mlp)
        return h + gate_mlp[:, None, :] * drop(self.mlp(a))


class DDiTFinalLayer(nn.Module):
    """docs/model.md §7: LN_final -> modulate(shift, scale) -> linear (with bias). Causal: no modulation."""

    def __init__(self, cfg):
        super().__init__()
        self.norm_final = LayerNormNoBias(cfg.hidden)
        self.linear = nn.Linear(cfg.hidden, cfg.vocab_size)
        if not cfg.causal:
            self.adaLN_modulation = nn.Linear(cfg.cond_dim, 2 * cfg.hidden)

    def forward(self, h, c):
        h = self.norm_final(h)
        if c is not None:
            shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
            h = modulate(h, shift, scale)
        return self.linear(h)


class DIT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.vocab_embed = EmbeddingLayer(cfg.hidden, cfg.vocab_size)
        if not cfg.causal:
            self.sigma_map = TimestepEmbedder(cfg.cond_dim, cfg.freq_dim)
        self.rotary_emb = Rotary(cfg.hidden // cfg.n_heads)
        self.blocks = nn.ModuleList([DDiTBlock(cfg) for _ in range(cfg.n_blocks)])
        self.output_layer = DDiTFinalLayer(cfg)

    def forward(self, x, sigma=None, weights=None):
        h = self.vocab_embed(x, weights)
        c = None if self.cfg.causal else F.silu(self.sigma_map(sigma.to(h.dtype)))
        cos, sin = self.rotary_emb(h.shape[1], h.dtype)
        for block in self.blocks:
            h = block(h, cos, sin, c)
        return self.output_layer(h, c)


class Wrapper(nn.Module):
    """Holds the DiT as `backbone`, like the Lightning module and the HF `DUO` class, so names get the prefix."""

    def __init__(self, cfg):
        super().__init__()
        self.backbone = DIT(cfg)

    def forward(self, *args, **kw):
        return self.backbone(*args, **kw)


def init_from_scratch_(model):
    """docs/model.md §10: embedding U(±1/sqrt(d)); Linear PyTorch default; adaLN and output head zero; LN weights one."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("vocab_embed.embedding"):
                bound = 1.0 / math.sqrt(p.shape[1])
                p.uniform_(-bound, bound)
            elif "adaLN_modulation" in name or "output_layer.linear" in name:
                p.zero_()
        # nn.Linear and LayerNormNoBias were already initialised by their constructors.


def init_random_(model, generator):
    """Fixture weights: every tensor random and non-zero (adaLN and the output head included, otherwise those
    paths would be untested); Linear-like ranges so activations stay O(1); LN weights 1 + N(0, 0.1^2)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and ("norm" in name):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=generator, dtype=torch.float64))
            else:
                fan_in = p.shape[-1] if p.dim() == 2 else None
                if fan_in is None:  # a bias: use its weight's fan-in
                    fan_in = dict(model.named_parameters())[name[: -len("bias")] + "weight"].shape[1]
                bound = 1.0 / math.sqrt(fan_in)
                p.copy_((torch.rand(p.shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound)
