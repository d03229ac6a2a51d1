#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizer/{gpt2,bert}.json: expected ids for tricky strings from independent references.

  gpt2: tiktoken built offline from encoder.json + vocab.bpe with GPT-2's pattern (encode_ordinary).
  bert: transformers' slow BertTokenizerLegacy (the reference's BertTokenizer, do_lower_case=True); the ids of
        Hugging Face `tokenizers`' BertWordPieceTokenizer are recorded too when they differ ("fast_ids").

Usage (needs network once for pip):
  python3 -m venv /tmp/venv-data && /tmp/venv-data/bin/pip install tiktoken tokenizers transformers
  /tmp/venv-data/bin/python tools/reference/tokenizer_fixtures.py --data data/vendor
"""
import argparse, json, os

STRINGS = [
    "Hello world", "hello world", "i like strawberries", "", " ", "  ", "\n", "\n\n\n",
    "   leading spaces", "trailing spaces   ", "tabs\tand\ttabs", "mixed \t\n  whitespace \n\n runs",
    "a  b   c    d", " " * 20 + "x", "x\n\n\n\n  \n y", "line one\r\nline two\r\n",
    "I'm, you're, he's, we've, they'll, I'd, can't, DON'T, It'S", "''s'''t 'll 'LL", "don't stop 'quoted' rock'n'roll",
    "1234567890 3.14159 1,000,000 2024-01-01", "\u0661\u0662\u0663 \u0664\u0665\u0666 \u00bd \u00b2 \u216b",
    "abc123def 12abc 007", "\U0001F600\U0001F603 family: \U0001F468\u200d\U0001F469\u200d\U0001F467 flags \U0001F1FA\U0001F1F8",
    "I \u2764\ufe0f NY", "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 co\u00f6perate \u00c5ngstr\u00f6m",
    "Cafe\u0301 decomposed", "\u4e2d\u6587\u5b57\u7b26\u6d4b\u8bd5\uff0c\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3001\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
    "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440! \u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5. "
    "\u05e9\u05dc\u05d5\u05dd. \u0645\u0631\u062d\u0628\u0627. \u0928\u092e\u0938\u094d\u0924\u0947",
    "\u039f\u0394\u039f\u03a3 \u03a3\u039f\u03a6\u039f\u03a3 \u03a3 \u0391\u03a3. \u0391\u03a3'\u0392",
    "a" * 150, "supercalifragilisticexpialidocious" * 5, "x" * 101, "y" * 100, "ab" * 60,
    "ctrl\x00char\x01s\x07 \x1b[31mred\x1b[0m \x7f del", "zero\u200bwidth\u200djoiner\ufeffbom",
    "\ufffd replacement \ufffd", "nel\u0085line", "ls\u2028ps\u2029end", "nbsp\u00a0here\u3000ideographic\u2003em",
    "a\u00a0\u00a0b \u00a0 c", "Hello!!! What?! ... --- ((x)) [y] {z} <a> \"quotes\" 'single' `back` ~^|\\",
    "e-mail@example.com https://example.com/path?q=1&r=2#frag", "<|endoftext|> is ordinary text",
    "def f(x):\n    return x**2  # comment\n", "\ufb01 ligature \uff21\uff22\uff23 fullwidth", "\u0130stanbul \u015eEH\u0130R",
    "$100 \u00a3200 \u20ac300 \u00a5400 50% #tag @user", "First Citizen:\nBefore we proceed any further, hear me speak.",
    "".join("qwertyuiopasdfghjklzxcvbnm"[(i * 7919) % 26] for i in range(5000)), "7" * 2001, "!?" * 1500,
    "aGVsbG8gd29ybGQgdGhpcyBpcyBiYXNlNjQ=" * 40,
    "\U0001D400\U0001D401 math bold, \U00010348 gothic", "tab\t\t\tend", "\u00e9\u00e8\u00ea\u00eb \u00c9\u00c8 \u00df \u00f8 \u00e6 \u0153",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/vendor")
    ap.add_argument("--out", default="tests/fixtures/tokenizer")
    a = ap.parse_args()

    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    ranks = data_gym_to_mergeable_bpe_ranks(vocab_bpe_file=os.path.join(a.data, "gpt2/vocab.bpe"),
                                            encoder_json_file=os.path.join(a.data, "gpt2/encoder.json"))
    enc = tiktoken.Encoding("gpt2-local",
                            pat_str=r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
                            mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 50256})
    gpt2 = [{"text": s, "ids": enc.encode_ordinary(s)} for s in STRINGS]

    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
    from tokenizers import BertWordPieceTokenizer
    vocab = os.path.join(a.data, "bert-base-uncased/vocab.txt")
    slow = BertTokenizerLegacy(vocab, do_lower_case=True)
    fast = BertWordPieceTokenizer(vocab, lowercase=True)
    bert = []
    for s in STRINGS:
        ids = slow.encode(s, add_special_tokens=False)
        rec = {"text": s, "ids": ids, "decoded": slow.decode(ids, clean_up_tokenization_spaces=True)}
        f = fast.encode(s, add_special_tokens=False).ids
        if f != ids:
            rec["fast_ids"] = f
        bert.append(rec)
    os.makedirs(a.out, exist_ok=True)
    for name, recs in (("gpt2", gpt2), ("bert", bert)):
        with open(os.path.join(a.out, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(recs, f, ensure_ascii=True, indent=0)
            f.write("\n")
    print("gpt2:", len(gpt2), "strings; bert:", len(bert), "strings,",
          sum("fast_ids" in r for r in bert), "where the fast tokenizer differs")


if __name__ == "__main__":
    main()
