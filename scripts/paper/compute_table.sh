#!/usr/bin/env bash
# The README's compute and memory table: for each training row of scripts/paper/ and per-device batch, the planned
# device memory (duo-train --dry_run: the allocation plan of one rank; without ZeRO-1 every rank holds the full
# state, so 1 and 8 ranks plan the same; with --training.zero1 on 8 ranks, --dry_run.ranks 8) and the roofline step time on an H100 (build/duo-roofline, a lower bound: no launch
# overhead, no overlap), the tokens per second per GPU it implies, and the days the paper's run would take on
# 8 H100s at that rate plus a ring all-reduce of the float32 gradients over NVLink (450 GB/s per direction).
#   scripts/paper/compute_table.sh > table.md
source "$(dirname "$0")/common.sh"
echo "| row | per-device batch | planned memory per GPU (1 or 8 ranks) | with ZeRO-1 on 8 ranks | roofline step (one micro-batch) | tokens/s per GPU (at most) | global batch x steps | 8 x H100, days (at least) |"
echo "|---|---|---|---|---|---|---|---|"
# name algo extra-options L vocab batch global steps
while read -r name algo opts L vocab B G steps; do
  [ -n "$name" ] || continue
  read -r -a o <<<"${opts//,/ }"
  [ "$opts" = - ] && o=()
  plan=$("$DUO_BIN/duo-train" --dry_run --model small --algo "$algo" "${o[@]}" --vocab_size "$vocab" --model.length "$L" \
    --loader.batch_size "$B" --loader.global_batch_size "$B" --loader.eval_batch_size "$B")
  mem=$(sed -n 's/^  total: \([0-9.]* [GM]iB\).*/\1/p' <<<"$plan")
  zero=$("$DUO_BIN/duo-train" --dry_run --dry_run.ranks 8 --training.zero1 true --model small --algo "$algo" "${o[@]}" \
    --vocab_size "$vocab" --model.length "$L" --loader.batch_size "$B" --loader.global_batch_size "$B" \
    --loader.eval_batch_size "$B" | sed -n 's/^  total: \([0-9.]* [GM]iB\).*/\1/p')
  state=$(sed -n 's/^  parameters, gradients, Adam moments, EMA (fp32): \([0-9.]*\) GiB/\1/p' <<<"$plan")
  roof=$(build/duo-roofline --model small --algo "$algo" --vocab_size "$vocab" --model.length "$L" --batch "$B" \
    --sampling 0 $([ "$algo" = ar ] && echo --causal) | sed -n 's/^training step: \([0-9.]*\) ms.*/\1/p')
  python3 - "$name" "$B" "$mem" "$roof" "$L" "$G" "$steps" "$state" "$zero" <<'PY'
import sys
name, B, mem, ms, L, G, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
zero = sys.argv[9]
params = float(sys.argv[8]) * 2**30 / 20       # the state is 20 bytes per parameter (weights, gradient, 2 moments, EMA)
micro = G // (8 * B) if G >= 8 * B else 1       # micro-batches per GPU per step
allreduce_s = 2 * 7 / 8 * params * 4 / 450e9   # ring all-reduce of fp32 gradients
step_s = micro * ms / 1e3 + allreduce_s
days = steps * step_s / 86400
print(f"| {name} | {B} | {mem} | {zero} | {ms:.1f} ms | {B * L / (ms / 1e3):,.0f} | {G} x {steps // 1000}k | {days:.1f} |")
PY
done <<'ROWS'
DUO-OWT-stage-1 duo --algo.curriculum.mode,simple 1024 50258 32 512 500000
DUO-OWT-stage-1 duo --algo.curriculum.mode,simple 1024 50258 16 512 500000
DUO-OWT-stage-2 duo_base - 1024 50258 64 512 500000
DUO-OWT-stage-2 duo_base - 1024 50258 32 512 500000
MDLM-OWT mdlm - 1024 50258 32 512 1000000
SEDD-OWT sedd - 1024 50258 16 512 1000000
AR-OWT ar - 1024 50258 32 512 1000000
DUO-LM1B duo --algo.curriculum.mode,simple 128 30522 64 512 1000000
MDLM-LM1B mdlm - 128 30522 64 512 1000000
D3PM-LM1B d3pm --algo.T,1000 128 30522 64 64 1000000
ROWS
# Distillation (duo-distill: the student's state plus the teacher's weights and activations): memory only, the
# roofline models the training algorithms, not the teacher's extra forward.
for B in 32 16; do
  plan() {
    "$DUO_BIN/duo-distill" --dry_run "$@" --model small --vocab_size 50258 --model.length 1024 --training.ema 0.999 \
      --loader.batch_size "$B" --loader.global_batch_size "$B" --loader.eval_batch_size "$B" |
      sed -n 's/^  total: \([0-9.]* [GM]iB\).*/\1/p'
  }
  echo "| DUO-OWT-distillation | $B | $(plan) | $(plan --dry_run.ranks 8 --training.zero1 true) | - | - | 128 x 50k | - |"
done
