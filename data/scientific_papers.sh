#!/usr/bin/env bash
# Scientific papers (Cohan et al. 2018) validation sets for zero-shot perplexity, GPT-2 -> data/pubmed/, data/arxiv/.
#   data/scientific_papers.sh [pubmed|arxiv|all]   (default all)
# Document = the "article_text" sentences joined by newlines (Hugging Face's "article"), WikiText then LM1B
# detokenizer (the reference's scientific_papers_* setting).
# Local copy: $PUBMED / $ARXIV = pubmed-dataset.zip / arxiv-dataset.zip or the extracted folder (with val.txt);
# else downloaded from the authors' release (Google Drive links of the Hugging Face loader may need a browser).
source "$(dirname "$0")/common.sh"
run() {
  local name=$1 given=$2 url=$3 raw=data/$1/raw src
  src=$given
  if [ -z "$src" ] || [ -f "$src" ]; then
    arch=$(local_or_download "$src" "$url" "$raw/$name-dataset.zip")
    extract "$arch" "$raw"
    src=$raw/$name-dataset
  fi
  tokenize --tokenizer gpt2 --vocab "$(gpt2_vocab)" --input "$src/val.txt" --format jsonl --field article_text \
    --output "data/$name" --prefix valid --detokenizer wikitext+lm1b
}
pubmed() { run pubmed "${PUBMED:-}" "https://drive.google.com/uc?id=1lvsqvsFi3W-pE1SqNZI0s8NR9rC1tsja&export=download"; }
arxiv() { run arxiv "${ARXIV:-}" "https://drive.google.com/uc?id=1b3rmCSIoh6VhD4HKWjI4HOW-cSwcwbeC&export=download"; }
case ${1:-all} in
  pubmed) pubmed ;;
  arxiv) arxiv ;;
  all) pubmed; arxiv ;;
  *) die "usage: data/scientific_papers.sh [pubmed|arxiv|all]" ;;
esac
