#!/usr/bin/env bash
# `make bench`: the CPU benchmarks, each side by side with its reference in one run, same configuration, same
# threads; the numbers in bench/README.md come from this script (docs/cpu_performance.md).
#  1. DiT training step (forward + cross-entropy + backward): duo.cu (fp32, and --compute bf16 where the CPU has
#     bf16 instructions), a current PyTorch from PyPI (a virtual environment bench/.venv, created here when
#     missing and the network allows; also under its CPU autocast to bf16), Debian's PyTorch; the ratio is
#     against the fastest PyTorch;
#  2. sampling step (network + sampler) against the PyTorch network forward alone, B 1 and B 8, our fp32 and bf16;
#  3. GEMM libraries on the DiT's shapes (OpenBLAS as the engine runs it, BLIS, oneDNN when installed);
#  4. the step rate early and late in make run's training; 5. speed beside busy processes.
# THREADS=N (default: the cores), QUICK=1 skips 3-5.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-$(nproc)}
venv=bench/.venv
if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  echo "== creating $venv with the current PyTorch from PyPI (a few GB; once)"
  { /usr/bin/python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --progress-bar off torch numpy; } ||
    echo "   could not install PyTorch from PyPI (offline?): the current-PyTorch columns stay empty"
fi
pythons=()
for py in "$venv/bin/python" /usr/bin/python3; do
  "$py" -c 'import torch' 2>/dev/null && pythons+=("$py")
done
version() { "$1" -c 'import torch; print(torch.__version__)' 2>/dev/null; }
ms() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])["ms_per_step"])' "$1"; }

# Our GEMM precisions: fp32, and bf16 where the CPU has bf16 instructions (docs/cpu_performance.md §4).
computes=(fp32)
if grep -qw -e avx512_bf16 -e amx_bf16 /proc/cpuinfo 2>/dev/null; then computes+=(bf16); fi

bench_dit() {  # model vocab batch length steps
  local model=$1 vocab=$2 batch=$3 length=$4 steps=$5 best_torch=""
  echo "== DiT training step, $model, V=$vocab, B=$batch, L=$length, threads=$threads (ms per step, median)"
  for py in "${pythons[@]}"; do
    for flag in "" --bf16; do
      [ -n "$flag" ] && [ "$py" != "$venv/bin/python" ] && continue  # autocast timing: the current PyTorch only
      theirs=$("$py" bench/torch_dit_step.py --model "$model" --vocab "$vocab" --batch "$batch" --length "$length" \
               --threads "$threads" --steps "$steps" $flag 2>/dev/null) || continue
      echo "  PyTorch $(version "$py")${flag:+ (autocast bf16)}: $(ms "$theirs") ms"
      if [ -z "$best_torch" ] || /usr/bin/python3 -c "import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))" \
           "$(ms "$theirs")" "$best_torch"; then best_torch=$(ms "$theirs"); fi
    done
  done
  for c in "${computes[@]}"; do
    ours=$(build/bench-dit_step --model "$model" --vocab_size "$vocab" --batch "$batch" --model.length "$length" \
           --threads "$threads" --steps "$steps" --compute "$c")
    if [ -n "$best_torch" ]; then
      /usr/bin/python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'  duo.cu {sys.argv[3]}: {a:.0f} ms   step rate / fastest PyTorch: {b/a:.2f}x')" \
        "$(ms "$ours")" "$best_torch" "$c"
    else
      echo "  duo.cu $c: $(ms "$ours") ms"
    fi
  done
  [ ${#pythons[@]} -gt 0 ] || echo "  (no PyTorch: apt-get install python3-torch, or let this script create $venv)"
}
bench_dit tiny 65 8 256 5
bench_dit small 50258 1 256 3

torch_list=$(IFS=,; echo "${pythons[*]:-none}")
for b in 1 8; do
  for c in "${computes[@]}"; do
    echo "== sampling step (DUO ancestral), B=$b, L=128, threads=$threads, our GEMMs in $c"
    OMP_NUM_THREADS=$threads build/bench-sample_throughput --models tiny,small --length 128 --batch "$b" --steps 4 \
      --compute "$c" --torch "$torch_list"
  done
done
[ "${QUICK:-0}" = 1 ] && exit 0
echo "== GEMM libraries"
build/bench-gemm_libraries --threads "$threads"
THREADS=$threads bench/step_rate.sh
bench/contention.sh
