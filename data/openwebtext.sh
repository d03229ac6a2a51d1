#!/usr/bin/env bash
# OpenWebText (Skylion007, 8,013,769 documents, ~40 GB of text) -> data/openwebtext/ with the GPT-2 tokenizer.
#   data/openwebtext.sh      train_*.bin = all but the last 100k documents, valid_*.bin = the last 100k
#                            (the reference's openwebtext-split: train[:-100000] / train[-100000:]).
# Local copy: $OPENWEBTEXT = openwebtext.tar.xz or its extracted folder; else downloaded (zenodo, as the Hugging
# Face loader does). Each subset urlsf_subsetNN-M_data.xz is a tar of .txt files, one document each; documents are
# read in sorted path order, with runs of 3+ newlines squeezed and whitespace stripped like the Hugging Face loader.
# Needs ~100 GB of free disk for the unpacked text. $OWT_VALID_DOCS overrides 100000 (for small test archives).
source "$(dirname "$0")/common.sh"
raw=data/openwebtext/raw
src=${OPENWEBTEXT:-}
if [ -z "$src" ] || [ -f "$src" ]; then
  arch=$(local_or_download "$src" https://zenodo.org/record/3834942/files/openwebtext.tar.xz "$raw/openwebtext.tar.xz")
  extract "$arch" "$raw"
  src=$raw/openwebtext
fi
for x in $(ls "$src"/*.xz | LC_ALL=C sort); do
  d=$raw/txt/$(basename "$x" .xz)
  [ -f "$d/.extracted" ] || extract "$x" "$d"
done
find "$raw/txt" -name '*.txt' | LC_ALL=C sort > "$raw/files.txt"
tokenize --tokenizer gpt2 --vocab "$(gpt2_vocab)" --input_list "$raw/files.txt" --split none --squeeze_newlines --strip \
  --output data/openwebtext --valid_last_docs "${OWT_VALID_DOCS:-100000}"
