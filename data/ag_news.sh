#!/usr/bin/env bash
# AG News test split (7,600 articles) for zero-shot perplexity, GPT-2 -> data/ag_news/valid_*.bin.
# Text = title + " " + description (Hugging Face's ag_news); no detokenizer (the reference applies none).
# Local copy: $AG_NEWS = test.csv of ag_news_csv ("class","title","description"); else downloaded.
source "$(dirname "$0")/common.sh"
csv=$(local_or_download "${AG_NEWS:-}" \
  https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/test.csv data/ag_news/raw/test.csv)
mkdir -p data/ag_news/raw
# CSV -> one text per line: fields are "..." with "" for a quote; plain awk (mawk has no FPAT).
awk '
  function field(s,   out, i, c) {  # s starts at an opening quote; returns the unquoted field, sets rest
    out = ""; i = 2
    while (i <= length(s)) {
      c = substr(s, i, 1)
      if (c == "\"") { if (substr(s, i + 1, 1) == "\"") { out = out "\""; i += 2; continue } rest = substr(s, i + 2); return out }
      out = out c; i++
    }
    rest = ""; return out
  }
  { rest = $0; field(rest); title = field(rest); desc = field(rest); print title " " desc }
' "$csv" > data/ag_news/raw/test.txt
tokenize --tokenizer gpt2 --vocab "$(gpt2_vocab)" --input data/ag_news/raw/test.txt --output data/ag_news --prefix valid \
  --split line --keep_empty
