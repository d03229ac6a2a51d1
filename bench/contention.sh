#!/usr/bin/env bash
# Speed when other processes want the cores (docs/cpu_performance.md §2): the tiny DiT training step and a short
# duo-eval, first alone, then beside as many busy processes as there are cores, with the default threads.
#   bench/contention.sh          (needs `make`; duo-eval uses runs/default from `make run` when it exists)
set -euo pipefail
cd "$(dirname "$0")/.."
cores=$(nproc)
step() { build/bench-dit_step --model tiny --vocab_size 65 --batch 8 --model.length 256 --steps 3 |
         /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["ms_per_step"])'; }
evaluate() {
  [ -f runs/default/last.safetensors ] || { echo "-"; return; }
  local s e; s=$(date +%s.%N)
  build/duo-eval --eval.checkpoint_path runs/default/last.safetensors \
    --data.valid 'data/tinyshakespeare/char/valid_*.bin' --eval.limit_batches 8 > /dev/null
  e=$(date +%s.%N); /usr/bin/python3 -c "print(round(($e - $s) * 1000))"
}
busy_pids=()
stop_busy() { for p in "${busy_pids[@]}"; do kill "$p" 2>/dev/null || true; done; busy_pids=(); }
trap stop_busy EXIT
echo "== contention: $cores cores; ms, alone and beside $cores busy processes"
a_step=$(step); a_eval=$(evaluate)
for _ in $(seq "$cores"); do (while :; do :; done) & busy_pids+=($!); done
sleep 1
b_step=$(step); b_eval=$(evaluate)
stop_busy
ratio() { [ "$1" = - ] && echo - || /usr/bin/python3 -c "print(f'{$2/$1:.2f}x')"; }
printf "%-34s %10s %10s %8s\n" "" "alone" "busy" "slowdown"
printf "%-34s %10s %10s %8s\n" "bench-dit_step tiny (ms/step)" "$a_step" "$b_step" "$(ratio "$a_step" "$b_step")"
printf "%-34s %10s %10s %8s\n" "duo-eval 8 batches (ms)" "$a_eval" "$b_eval" "$(ratio "$a_eval" "$b_eval")"
