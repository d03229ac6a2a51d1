# Helpers of the dataset scripts (sourced, not run). Each script: find its input (an environment variable naming
# a local copy, the repository's data/vendor/ for the small files it ships, else a download from the canonical
# URL), then run build/duo-tokenize into data/<name>/.
set -euo pipefail
DUO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$DUO_ROOT"

say() { echo "[data] $*" >&2; }
die() { echo "[data] error: $*" >&2; exit 1; }

# local_or_download VAR_VALUE URL DEST: prints the path of a usable copy.
#   1. VAR_VALUE (the dataset's environment variable) when set; 2. DEST when an earlier run downloaded it;
#   3. download URL to DEST.
local_or_download() {
  local given=$1 url=$2 dest=$3
  if [ -n "$given" ]; then [ -e "$given" ] || die "$given does not exist"; echo "$given"; return; fi
  if [ -s "$dest" ]; then echo "$dest"; return; fi
  mkdir -p "$(dirname "$dest")"
  say "downloading $url"
  if command -v curl >/dev/null; then curl -fL --retry 3 -o "$dest.part" "$url" >&2
  elif command -v wget >/dev/null; then wget -O "$dest.part" "$url" >&2
  else die "neither curl nor wget is installed; download $url to $dest by hand"; fi
  mv "$dest.part" "$dest"
  echo "$dest"
}

# vendored VAR_VALUE PATH: VAR_VALUE when set (a user's own copy), else data/vendor/PATH (shipped with the
# repository; sources and licences in data/vendor/README.md).
vendored() {
  local given=$1 path=data/vendor/$2
  if [ -n "$given" ]; then [ -e "$given" ] || die "$given does not exist"; echo "$given"; return; fi
  [ -e "$path" ] || die "$path is missing from this checkout (it is part of the repository: git checkout -- data/vendor)"
  echo "$path"
}

# Tokenizer folders: $GPT2_VOCAB / $BERT_VOCAB, else the vendored copies.
gpt2_vocab() { vendored "${GPT2_VOCAB:-}" gpt2; }
bert_vocab() { vendored "${BERT_VOCAB:-}" bert-base-uncased; }

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
