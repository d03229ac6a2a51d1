#!/usr/bin/python3
"""A from-scratch GPT-2 (the generative-perplexity scorer) and the reference generative-perplexity rule.

Written from the GPT-2 architecture description (pre-LN blocks, learned positions, tied LM head), with the
Hugging Face tensor names so that the state_dict can be saved as a GPT-2 `model.safetensors`:
  wte.weight (V, d), wpe.weight (n_ctx, d),
  h.{i}.ln_1.{weight,bias}, h.{i}.attn.c_attn.{weight,bias}, h.{i}.attn.c_proj.{weight,bias},
  h.{i}.ln_2.{weight,bias}, h.{i}.mlp.c_fc.{weight,bias}, h.{i}.mlp.c_proj.{weight,bias}, ln_f.{weight,bias}
The projections are "Conv1D" layers: weight stored as [in, out], y = x @ W + b (the transpose of nn.Linear).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

EOS = 50256  # GPT-2's <|endoftext|>; the scorer's tokenizer pads with it


class Conv1D(nn.Module):
    """y = x @ weight + bias with weight [in, out] (GPT-2's layout)."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return x @ self.weight + self.bias


class Attention(nn.Module):
    def __init__(self, d, n_head, n_ctx):
        super().__init__()
        self.n_head = n_head
        self.c_attn = Conv1D(d, 3 * d)
        self.c_proj = Conv1D(d, d)
        # HF checkpoints carry this causal-mask buffer as "h.{i}.attn.bias"; the loader must ignore it.
        self.register_buffer("bias", torch.tril(torch.ones(n_ctx, n_ctx)).view(1, 1, n_ctx, n_ctx))

    def forward(self, x):  # x (B, N, d)
        B, N, d = x.shape
        hd = d // self.n_head
        q, k, v = self.c_attn(x).split(d, dim=-1)                      # (B, N, d) each: [head][dim]
        q, k, v = (t.view(B, N, self.n_head, hd).transpose(1, 2) for t in (q, k, v))  # (B, H, N, hd)
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd)               # (B, H, N, N)
        causal = self.bias[:, :, :N, :N] > 0
        scores = scores.masked_fill(~causal, float("-inf"))
        y = torch.softmax(scores, dim=-1) @ v                           # (B, H, N, hd)
        return self.c_proj(y.transpose(1, 2).reshape(B, N, d))


def gelu_new(x):
    """GELU, tanh approximation (HF "gelu_new")."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


class MLP(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.c_fc = Conv1D(d, 4 * d)
        self.c_proj = Conv1D(4 * d, d)

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, d, n_head, n_ctx, eps):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=eps)
        self.attn = Attention(d, n_head, n_ctx)
        self.ln_2 = nn.LayerNorm(d, eps=eps)
        self.mlp = MLP(d)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    def __init__(self, vocab_size, n_positions, n_embd, n_layer, n_head, eps=1e-5):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(n_positions, n_embd)
        self.h = nn.ModuleList([Block(n_embd, n_head, n_positions, eps) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd, eps=eps)

    def forward(self, ids):  # ids (B, N) int64 -> logits (B, N, V)
        pos = torch.arange(ids.shape[1])
        x = self.wte(ids) + self.wpe(pos)[None]
        for block in self.h:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.T  # tied LM head


def target_weights(chunk, eos=EOS):
    """The reference's token mask for targets 1..N-1 of a (B, N) chunk: a target counts if it is not EOS, or
    if the running EOS count (from position 0 of the chunk, inclusive) equals 1 there."""
    first_eos = (chunk == eos).cumsum(-1) == 1
    not_eos = chunk != eos
    return (first_eos[:, 1:] | not_eos[:, 1:]).double()


def gen_ppl(model, samples, max_length, batch_size, n_ctx, drop_last, eos=EOS):
    """Generative perplexity of token-id lists `samples` under `model`, the reference's way: truncate to
    max_length, right-pad with EOS to the longest, batches of batch_size (drop_last: skip the samples that do
    not fill a last batch), chunks of n_ctx along the sequence scored independently, pooled
    exp(sum nll * w / sum w). Returns (ppl, sum of nll * w, sum of w)."""
    seqs = [list(s[:max_length]) for s in samples]
    longest = max(len(s) for s in seqs)
    ids = torch.tensor([s + [eos] * (longest - len(s)) for s in seqs], dtype=torch.long)
    n = len(seqs)
    n_batches = n // batch_size if drop_last else (n + batch_size - 1) // batch_size
    total, weight = 0.0, 0.0
    for b in range(n_batches):
        batch = ids[b * batch_size:(b + 1) * batch_size]
        for chunk in torch.split(batch, n_ctx, dim=-1):
            if chunk.shape[1] < 2:
                continue
            logits = model(chunk)
            nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), chunk[:, 1:], reduction="none")
            w = target_weights(chunk, eos)
            total += float((nll * w).sum())
            weight += float(w.sum())
    return math.exp(total / weight), total, weight
