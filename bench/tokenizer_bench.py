#!/usr/bin/env python3
"""tiktoken side of bench/tokenizer_bench.sh: the GPT-2 encoding built offline from the same encoder.json and
vocab.bpe, documents cut like duo-bench-tokenizer's (about --doc_mb MB, at line ends), best of --repeat runs."""
import argparse, os, time
import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

ap = argparse.ArgumentParser()
ap.add_argument("--vocab", required=True)
ap.add_argument("--input", required=True)
ap.add_argument("--doc_mb", type=float, default=1.0)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--repeat", type=int, default=3)
a = ap.parse_args()
ranks = data_gym_to_mergeable_bpe_ranks(vocab_bpe_file=os.path.join(a.vocab, "vocab.bpe"),
                                        encoder_json_file=os.path.join(a.vocab, "encoder.json"))
enc = tiktoken.Encoding("gpt2-local", pat_str=r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
                        mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 50256})
text = open(a.input, encoding="utf-8", newline="").read()
raw = text.encode("utf-8")
docs, at, target = [], 0, max(1, int(a.doc_mb * 1e6))
while at < len(raw):  # cut in bytes at line ends, as the C++ side does
    end = min(len(raw), at + target)
    nl = raw.find(b"\n", end)
    end = len(raw) if nl < 0 else nl + 1
    docs.append(raw[at:end].decode("utf-8"))
    at = end
best, n = 1e30, 0
for _ in range(a.repeat):
    enc = tiktoken.Encoding("gpt2-local", pat_str=enc._pat_str, mergeable_ranks=ranks,
                            special_tokens={"<|endoftext|>": 50256})  # a fresh encoder per run
    t = time.perf_counter()
    if a.threads == 1:
        out = [enc.encode_ordinary(d) for d in docs]
    else:
        out = enc.encode_ordinary_batch(docs, num_threads=a.threads)
    best = min(best, time.perf_counter() - t)
    n = sum(len(o) for o in out)
print(f"tiktoken {tiktoken.__version__} gpt2 threads={a.threads}: {len(raw) / 1e6 / best:.2f} MB/s  "
      f"({len(raw) / 1e6:.1f} MB, {len(docs)} documents, {n} tokens, best of {a.repeat}: {best:.3f} s)")
