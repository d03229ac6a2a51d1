#!/usr/bin/env bash
# LAMBADA (OpenAI's lambada_test.jsonl, 5,153 passages) for zero-shot perplexity, GPT-2 -> data/lambada/valid_*.bin.
# One document per record ("text"), LAMBADA detokenizer first (straight quotes, stripped, a leading newline).
# Local copy: $LAMBADA = lambada_test.jsonl.
source "$(dirname "$0")/common.sh"
in=$(local_or_download "${LAMBADA:-}" https://openaipublic.blob.core.windows.net/gpt-2/data/lambada_test.jsonl \
  data/lambada/raw/lambada_test.jsonl)
tokenize --tokenizer gpt2 --vocab "$(gpt2_vocab)" --input "$in" --format jsonl --field text --output data/lambada \
  --prefix valid --detokenizer lambada
