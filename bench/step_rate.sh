#!/usr/bin/env bash
# Step rate early and late in `make run`'s training (issue: training slowed ~4x within 200 steps as subnormal
# floats appeared; docs/cpu_performance.md §3). Trains the default configuration for STEPS steps (300) twice, as
# built (subnormals flushed to zero) and with DUO_DENORMALS=keep, and prints tokens/s over steps 1-10 and over the
# last 10 steps of each run, and their ratio.
#   bench/step_rate.sh            (STEPS=300 THREADS=0 by default; needs `make` and the default data)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${STEPS:-300}
threads=${THREADS:-0}
data=data/tinyshakespeare/char
[ -f $data/train_000000.bin ] || data/tinyshakespeare.sh char
source scripts/default_train.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rate_at() {  # metrics.jsonl, step -> tokens/s of the log line at that step
  /usr/bin/python3 -c 'import json,sys
for l in open(sys.argv[1]):
    j=json.loads(l)
    if j.get("step")==int(sys.argv[2]) and "tokens_per_s" in j: print(round(j["tokens_per_s"])); break' "$1" "$2"
}
echo "== step rate of make run's training, $steps steps, tokens/s over steps 1-10 and $((steps - 9))-$steps"
printf "%-32s %10s %10s %8s\n" "mode" "early" "late" "late/early"
for mode in flush keep; do
  default_train_args "$steps" "$out/$mode" 10
  env_mode=(); [ $mode = keep ] && env_mode=(DUO_DENORMALS=keep)
  env "${env_mode[@]}" build/duo-train "${DEFAULT_TRAIN_ARGS[@]}" --threads "$threads" > "$out/$mode.log"
  early=$(rate_at "$out/$mode/metrics.jsonl" 10)
  late=$(rate_at "$out/$mode/metrics.jsonl" "$steps")
  label=$([ $mode = flush ] && echo "subnormals flushed (default)" || echo "DUO_DENORMALS=keep")
  printf "%-32s %10s %10s %8s\n" "$label" "$early" "$late" "$(/usr/bin/python3 -c "print(f'{$late/$early:.2f}')")"
done
grep -m1 "compute:" "$out/flush.log" || true
