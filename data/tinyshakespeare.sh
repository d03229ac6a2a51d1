#!/usr/bin/env bash
# tinyshakespeare (1.1 MB; karpathy/char-rnn) -> data/tinyshakespeare/{char,gpt2}/.
#   data/tinyshakespeare.sh [char|gpt2|all]     (default: char, the default run's data)
# Documents are the blank-line-separated speeches; the last 10% of them are validation.
# Input: $TINYSHAKESPEARE, else the vendored data/vendor/tinyshakespeare/input.txt.
source "$(dirname "$0")/common.sh"
which=${1:-char}
in=$(vendored "${TINYSHAKESPEARE:-}" tinyshakespeare/input.txt)
split=(--split blank --valid_fraction 0.1)
if [ "$which" = char ] || [ "$which" = all ]; then
  # The char vocabulary (vocab_chars.txt) is built from the text and written next to the shards.
  rm -f data/tinyshakespeare/char/vocab_chars.txt
  tokenize --tokenizer char --vocab data/tinyshakespeare/char --input "$in" --output data/tinyshakespeare/char "${split[@]}"
fi
if [ "$which" = gpt2 ] || [ "$which" = all ]; then
  tokenize --tokenizer gpt2 --vocab "$(gpt2_vocab)" --input "$in" --output data/tinyshakespeare/gpt2 "${split[@]}"
fi
