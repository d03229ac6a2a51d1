#!/usr/bin/env bash
# One Billion Word benchmark (LM1B) -> data/lm1b/ (bert-base-uncased) and data/lm1b-gpt2/ (GPT-2, zero-shot eval).
#   data/lm1b.sh            train = training-monolingual.tokenized.shuffled (99 files), valid = the held-out file
#                           heldout-...-00000-of-00050 (the reference evaluates LM1B on Hugging Face's "test" split).
# One document per sentence (line, stripped), LM1B detokenizer first. The padded and wrapped variants use the same
# shards; the loader builds them:
#   lm1b (padded):  --data.wrap false --model.length 128        [CLS] sentence [SEP] [PAD]...
#   lm1b-wrap:      --data.wrap true --model.length 128 --data.bos 101 --data.eos 101
#                   (the reference's quirk: every separator and both block ends are [CLS], docs/data.md §5.4)
# Local copy: $LM1B = 1-billion-word-language-modeling-benchmark-r13output.tar.gz or its extracted folder.
source "$(dirname "$0")/common.sh"
raw=data/lm1b/raw
src=${LM1B:-}
if [ -z "$src" ] || [ -f "$src" ]; then
  arch=$(local_or_download "$src" \
    http://www.statmt.org/lm-benchmark/1-billion-word-language-modeling-benchmark-r13output.tar.gz "$raw/lm1b.tar.gz")
  extract "$arch" "$raw"
  src=$raw/1-billion-word-language-modeling-benchmark-r13output
fi
train=("$src"/training-monolingual.tokenized.shuffled/news.en-000*-of-00100)
test=("$src"/heldout-monolingual.tokenized.shuffled/news.en.heldout-00000-of-00050)
opts=(--split line --strip --detokenizer lm1b)
bert=$(bert_vocab)
tokenize --tokenizer bert-base-uncased --vocab "$bert" --input "${train[@]}" --output data/lm1b --prefix train "${opts[@]}"
tokenize --tokenizer bert-base-uncased --vocab "$bert" --input "${test[@]}" --output data/lm1b --prefix valid "${opts[@]}"
tokenize --tokenizer gpt2 --vocab "$(gpt2_vocab)" --input "${test[@]}" --output data/lm1b-gpt2 --prefix valid "${opts[@]}"
