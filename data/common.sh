# Shared helpers of the dataset scripts (sourced, not run). Each script: find a local copy (an environment
# variable, or the shared data folder next to the repository) or download from the canonical URL, then run
# build/duo-tokenize into data/<name>/.
set -euo pipefail
DUO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$DUO_ROOT"

say() { echo "[data] $*" >&2; }
die() { echo "[data] error: $*" >&2; exit 1; }

# The shared data folder (read-only inputs): $DUO_SHARED_DATA, or shared/data, ../shared/data, ../../shared/data.
shared_data() {
  local d
  for d in "${DUO_SHARED_DATA:-}" shared/data ../shared/data ../../shared/data; do
    [ -n "$d" ] && [ -d "$d" ] && { echo "$d"; return 0; }
  done
  return 1
}

# local_or_download VAR_VALUE SHARED_RELATIVE_PATH URL DEST: prints the path of a usable copy.
#   1. VAR_VALUE (the dataset's environment variable) when set; 2. <shared data>/SHARED_RELATIVE_PATH when it
#   exists; 3. DEST when an earlier run downloaded it; 4. download URL to DEST.
local_or_download() {
  local given=$1 rel=$2 url=$3 dest=$4 sd
  if [ -n "$given" ]; then [ -e "$given" ] || die "$given does not exist"; echo "$given"; return; fi
  if [ -n "$rel" ] && sd=$(shared_data) && [ -e "$sd/$rel" ]; then echo "$sd/$rel"; return; fi
  if [ -s "$dest" ]; then echo "$dest"; return; fi
  mkdir -p "$(dirname "$dest")"
  say "downloading $url"
  if command -v curl >/dev/null; then curl -fL --retry 3 -o "$dest.part" "$url" >&2
  elif command -v wget >/dev/null; then wget -O "$dest.part" "$url" >&2
  else die "neither curl nor wget is installed; download $url to $dest by hand"; fi
  mv "$dest.part" "$dest"
  echo "$dest"
}

# Tokenizer folders: the shared copies, else OpenAI's / Hugging Face's published files.
gpt2_vocab() {
  local enc bpe
  enc=$(local_or_download "${GPT2_VOCAB:+$GPT2_VOCAB/encoder.json}" gpt2/encoder.json \
    https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json data/.vocab/gpt2/encoder.json)
  bpe=$(local_or_download "${GPT2_VOCAB:+$GPT2_VOCAB/vocab.bpe}" gpt2/vocab.bpe \
    https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe data/.vocab/gpt2/vocab.bpe)
  [ "$(dirname "$enc")" = "$(dirname "$bpe")" ] || die "encoder.json and vocab.bpe are in different folders"
  dirname "$enc"
}
bert_vocab() {
  dirname "$(local_or_download "${BERT_VOCAB:+$BERT_VOCAB/vocab.txt}" bert-base-uncased/vocab.txt \
    https://huggingface.co/bert-base-uncased/resolve/main/vocab.txt data/.vocab/bert-base-uncased/vocab.txt)"
}

# Runs duo-tokenize (built first when missing).
tokenize() {
  [ -x build/duo-tokenize ] || make -j2 build/duo-tokenize >&2
  say "duo-tokenize $*"
  build/duo-tokenize "$@"
}

# extract ARCHIVE DIR: unpacks a .zip / .tar.gz / .tar.xz / .tar once (a marker file records completion).
extract() {
  local a=$1 d=$2
  [ -f "$d/.extracted" ] && return 0
  mkdir -p "$d"
  say "extracting $a"
  case "$a" in
    *.zip) unzip -q -o "$a" -d "$d" ;;
    *.tar.gz|*.tgz) tar -xzf "$a" -C "$d" ;;
    *.tar.xz|*.xz) tar -xJf "$a" -C "$d" ;;
    *.tar) tar -xf "$a" -C "$d" ;;
    *) die "do not know how to extract $a" ;;
  esac
  touch "$d/.extracted"
}
