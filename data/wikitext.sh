#!/usr/bin/env bash
# WikiText (raw) validation sets for zero-shot perplexity, GPT-2 tokenizer -> data/wikitext2/, data/wikitext103/.
#   data/wikitext.sh [2|103|all]   (default all)
# Documents are the lines of wiki.valid.raw, newline kept, empty lines kept (Hugging Face's rows), WikiText
# detokenizer first. Zero-shot runs read them in wrap mode without separators (--data.insert_valid_eos false).
# Local copy: $WIKITEXT2 / $WIKITEXT103 = wikitext-{2,103}-raw-v1.zip or the extracted wikitext-*-raw folder.
source "$(dirname "$0")/common.sh"
run() {
  local v=$1 given=$2 raw=data/wikitext$1/raw src
  src=$given
  if [ -z "$src" ] || [ -f "$src" ]; then
    arch=$(local_or_download "$src" "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-$v-raw-v1.zip" \
      "$raw/wikitext-$v-raw-v1.zip")
    extract "$arch" "$raw"
    src=$raw/wikitext-$v-raw
  fi
  tokenize --tokenizer gpt2 --vocab "$(gpt2_vocab)" --input "$src/wiki.valid.raw" --output "data/wikitext$v" \
    --prefix valid --split line --keep_newline --keep_empty --detokenizer wikitext
}
case ${1:-all} in
  2) run 2 "${WIKITEXT2:-}" ;;
  103) run 103 "${WIKITEXT103:-}" ;;
  all) run 2 "${WIKITEXT2:-}"; run 103 "${WIKITEXT103:-}" ;;
  *) die "usage: data/wikitext.sh [2|103|all]" ;;
esac
