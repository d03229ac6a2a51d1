#!/usr/bin/env bash
# `make bench`: CPU benchmarks side by side with the PyTorch reference, same configuration, same threads, in
# one run. Prints each line of JSON and the ratio; the numbers in bench/README.md come from this script.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-$(nproc)}
py=/usr/bin/python3
have_torch=0
$py -c 'import torch' 2>/dev/null && have_torch=1
ratio() { $py -c "import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); print(f'  ratio duo.cu/pytorch step rate: {b[\"ms_per_step\"]/a[\"ms_per_step\"]:.2f}x')" "$1" "$2"; }
bench_dit() {  # name, then shared args: model vocab batch length
  local model=$1 vocab=$2 batch=$3 length=$4 steps=$5
  echo "== DiT forward+backward, $model, V=$vocab, B=$batch, L=$length, threads=$threads"
  ours=$(build/bench-dit_step --model "$model" --vocab_size "$vocab" --batch "$batch" --model.length "$length" --threads "$threads" --steps "$steps")
  echo "  $ours"
  if [ $have_torch = 1 ]; then
    theirs=$($py bench/torch_dit_step.py --model "$model" --vocab "$vocab" --batch "$batch" --length "$length" --threads "$threads" --steps "$steps")
    echo "  $theirs"
    ratio "$ours" "$theirs"
  else
    echo "  (PyTorch not installed: apt-get install python3-torch for the side-by-side number)"
  fi
}
bench_dit tiny 65 8 256 5
bench_dit small 50258 1 256 3
