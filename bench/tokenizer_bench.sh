#!/usr/bin/env bash
# Tokenizer throughput, duo.cu vs tiktoken (same encoder.json / vocab.bpe), one thread and all threads, on
# tinyshakespeare repeated to >= 50 MB. Results go to stdout; bench/tokenizer.md records a run.
#   bench/tokenizer_bench.sh            (needs a Python with tiktoken: $PYTHON, default /tmp/venv-data/bin/python;
#                                        python3 -m venv /tmp/venv-data && /tmp/venv-data/bin/pip install tiktoken)
set -euo pipefail
cd "$(dirname "$0")/.."
source data/common.sh
PYTHON=${PYTHON:-/tmp/venv-data/bin/python}
sd=$(shared_data) || die "the shared data folder (tinyshakespeare.txt, gpt2/) was not found; set DUO_SHARED_DATA"
make -j2 build/duo-bench-tokenizer build/duo-tokenize >&2
text=$(mktemp /tmp/duo-bench-XXXXXX.txt)
trap 'rm -f "$text"' EXIT
for i in $(seq 46); do cat "$sd/tinyshakespeare.txt"; done > "$text"  # 46 x 1,115,394 B = 51.3 MB
all=$(nproc)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $all cores; $(date -u +%F)"
for t in 1 "$all"; do
  build/duo-bench-tokenizer --tokenizer gpt2 --vocab "$sd/gpt2" --input "$text" --threads "$t"
  "$PYTHON" bench/tokenizer_bench.py --vocab "$sd/gpt2" --input "$text" --threads "$t"
done
# End to end: duo-tokenize (read, tokenize, write shards) on the same text, one document per line.
out=$(mktemp -d /tmp/duo-bench-shards-XXXXXX)
trap 'rm -rf "$text" "$out"' EXIT
build/duo-tokenize --tokenizer gpt2 --vocab "$sd/gpt2" --input "$text" --output "$out" --quiet | tail -1 |
  sed "s/^/duo-tokenize (lines as documents, $all threads, with shard writing): /"
