#!/usr/bin/env python3
"""Random-string parity check of build/duo-tokenize against the references (tiktoken; transformers' slow
BertTokenizer): writes N random strings drawn from a pool of tricky characters (accents, combining marks, CJK,
Hangul, Greek sigma, emoji + ZWJ, control characters, Unicode spaces, contractions), tokenizes them with both, and
counts mismatches. Not part of `make test` (needs Python); run after changing a tokenizer:
  /tmp/venv-data/bin/python tools/reference/tokenizer_fuzz.py --data data/vendor --n 3000
"""
import argparse, json, os, random, subprocess, tempfile

POOL = list("abcXYZ  \t\n\r'sdtlmrev0123456789.,!?-_()[]{}\"") + [
    "\u00e9", "\u00c9", "\u0301", "\u4e2d", "\u6587", "\ud55c", "\u0410", "\u03a3", "\u03c3", "\u0661", "\u00bd",
    "\u2003", "\u00a0", "\u0085", "\u2028", "\U0001F600", "\u200d", "\ufe0f", "\x00", "\x07", "\x1c", "\ufffd",
    "\u00df", "\u0130", "\ufb01", "\uff21", "\u05d0", "\u0627", "\u0928", "\u094d", "'s", "'t", "'re", "'ll", " ", "  "]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/vendor")
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
    ranks = data_gym_to_mergeable_bpe_ranks(vocab_bpe_file=os.path.join(a.data, "gpt2/vocab.bpe"),
                                            encoder_json_file=os.path.join(a.data, "gpt2/encoder.json"))
    enc = tiktoken.Encoding("gpt2-local",
                            pat_str=r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
                            mergeable_ranks=ranks, special_tokens={})
    bert = BertTokenizerLegacy(os.path.join(a.data, "bert-base-uncased/vocab.txt"), do_lower_case=True)
    rng = random.Random(a.seed)
    texts = ["".join(rng.choice(POOL) for _ in range(rng.randint(0, 40))) for _ in range(a.n)]
    refs = {"gpt2": enc.encode_ordinary, "bert-base-uncased": lambda t: bert.encode(t, add_special_tokens=False)}
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in.jsonl")
        with open(src, "w") as f:
            for t in texts:
                f.write(json.dumps({"text": t}) + "\n")
        for name, ref in refs.items():
            out = os.path.join(tmp, name)
            subprocess.run(["build/duo-tokenize", "--tokenizer", name, "--vocab", os.path.join(a.data, name), "--input", src, "--output", out,
                            "--keep_empty", "--quiet"], check=True, stdout=subprocess.DEVNULL)
            ids = subprocess.run(["build/duo-inspect", "--ids", os.path.join(out, "train_000000.bin")], check=True,
                                 capture_output=True, text=True).stdout.split("\n")[:-1]
            bad = [(t, o) for t, o in zip(texts, ids) if [int(x) for x in o.split()] != ref(t)]
            for t, o in bad[:3]:
                print(name, "mismatch:", repr(t), "duo:", o, "reference:", ref(t))
            print(f"{name}: {len(texts)} strings, {len(bad)} mismatches")


if __name__ == "__main__":
    main()
