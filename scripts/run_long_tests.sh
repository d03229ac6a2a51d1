#!/usr/bin/env bash
# `make test-long`: the checks too slow for `make test`, all on the same test binary.
#   1. The whole suite under every OpenBLAS kernel family this CPU can run (OPENBLAS_CORETYPE): the GEMM
#      library picks other kernels, and so other summation orders, on other CPUs and for other matrix sizes, and
#      no test may depend on which it gets.
#   2. The CUDA kernels' tests (suite cuda_emu) under the emulator's other thread schedules (reverse, shuffled)
#      and with blocks on several OS threads: a kernel whose output changes with the schedule has a race.
# Prints one line per run and the total as "N passed, N failed"; non-zero exit on any failure.
set -u
bin=${1:?usage: run_long_tests.sh BUILD/duo-tests}
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
cores=(Prescott)                                           # SSE3: OpenBLAS's oldest x86-64 kernels
[[ $flags == *" avx "* ]] && cores+=(Sandybridge)
[[ $flags == *" avx2 "* && $flags == *" fma "* ]] && cores+=(Haswell Zen)
[[ $flags == *" avx512f "* && $flags == *" avx512bw "* ]] && cores+=(SkylakeX)
[[ $flags == *" avx512_bf16 "* ]] && cores+=(Cooperlake)

total_pass=0 total_fail=0
one() {  # label, then the command
  local label=$1 line
  shift
  line=$("$@" 2>&1 | tail -n 1)
  echo "$label: $line"
  if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    total_pass=$((total_pass + BASH_REMATCH[1])); total_fail=$((total_fail + BASH_REMATCH[2]))
  else
    total_fail=$((total_fail + 1))
  fi
}
here=$(dirname "$0")
for c in "${cores[@]}"; do
  one "OPENBLAS_CORETYPE=$c" env OPENBLAS_CORETYPE="$c" "$here/run_tests.sh" "$bin"
done
for s in reverse random:1 random:2; do
  one "DUO_EMU_SCHEDULE=$s" env DUO_EMU_SCHEDULE="$s" "$here/run_tests.sh" "$bin" --run_test=cuda_emu
done
one "DUO_EMU_THREADS=2" env DUO_EMU_THREADS=2 "$here/run_tests.sh" "$bin" --run_test=cuda_emu
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
