#!/usr/bin/env bash
# `make fuzz`: runs each libFuzzer target (build/fuzz/NAME, from tests/fuzz/NAME.cpp) for SECONDS, starting
# from its seed corpus tests/fuzz/corpus/NAME/ (read only: new inputs go to build/fuzz/corpus/NAME/).
# A crash, sanitizer report, leak, timeout or out-of-memory stops that target; its input is saved as
# build/fuzz/crashes/NAME-* and printed in hex. Prints one line per target and exits non-zero on any finding.
#   scripts/run_fuzzers.sh SECONDS build/fuzz/NAME...
set -u
seconds=${1:?usage: run_fuzzers.sh SECONDS TARGET...}
shift
cd "$(dirname "$0")/.."
failed=0
for bin in "$@"; do
  name=$(basename "$bin")
  seeds=tests/fuzz/corpus/$name work=build/fuzz/corpus/$name crashes=build/fuzz/crashes log=build/fuzz/$name.log
  mkdir -p "$work" "$crashes"
  # -rss_limit_mb / -malloc_limit_mb: a size read from a file must not make us allocate gigabytes (the parsers
  # check sizes against the file first); -timeout: no input may take 10 s (a hang is a finding too).
  "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$crashes/$name-" "$work" "$seeds" > "$log" 2>&1
  rc=$?
  runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
  if [ "$rc" -eq 0 ]; then
    echo "fuzz $name: ok, ${runs:-?} inputs in ${seconds} s, ${cov:-cov: ?} edges"
  else
    failed=$((failed + 1))
    echo "fuzz $name: FAILED (exit $rc); the end of $log:"
    tail -n 40 "$log"
    for a in $(sed -nE 's/.*Test unit written to (.*)$/\1/p' "$log"); do
      echo "input $a:"; od -A d -t x1z "$a" | head -n 32
    done
  fi
done
echo "fuzz: $# targets: $(($# - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
