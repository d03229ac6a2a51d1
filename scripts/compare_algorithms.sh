#!/usr/bin/env bash
# The README's algorithm table: every algorithm trained with the same tiny model, data, batch and number of
# steps on tinyshakespeare (char level, CPU), then evaluated on the whole validation set with EMA weights.
#   scripts/compare_algorithms.sh [STEPS] [ALGOS...]      (default 300 steps; ar mdlm sedd d3pm duo_base duo duo_efficient)
# Prints a markdown table; runs go to runs/compare/<algo>.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-300}
shift || true
algos=("$@")
[ ${#algos[@]} -gt 0 ] || algos=(ar mdlm sedd d3pm duo_base duo duo_efficient)
data=data/tinyshakespeare/char
[ -f $data/train_000000.bin ] || data/tinyshakespeare.sh char
common=(--model tiny --model.hidden_size 128 --model.n_blocks 4 --model.n_heads 4 --model.length 128 --model.dropout 0
  --data.train "$data/train_*.bin" --data.valid "$data/valid_*.bin"
  --loader.batch_size 16 --loader.global_batch_size 16 --loader.eval_batch_size 32
  --optim.lr 2e-3 --lr_scheduler.num_warmup_steps 50 --training.ema 0.99
  --trainer.max_steps "$steps" --trainer.val_check_interval 0 --trainer.log_every_n_steps 50
  --callbacks.checkpoint_every_n_steps.every_n_train_steps 0
  --algo.curriculum.end $((steps / 2)) --algo.curriculum.gamma_min -2.9 --algo.curriculum.gamma_max 0.75
  --algo.curriculum.integral_cache_path integral/tinyshakespeare-char.bin)
rows=()
for a in "${algos[@]}"; do
  algo=$a; extra=()
  [ "$a" = duo_efficient ] && algo=duo && extra=(--algo.curriculum.mode efficient --algo.curriculum.top_k 2)
  out=runs/compare/$a
  rm -rf "$out"
  start=$(date +%s)
  mkdir -p "$out"
  /usr/bin/time -f "%M" -o "$out/maxrss_kb" build/duo-train --algo $algo "${common[@]}" "${extra[@]}" \
    --checkpointing.save_dir "$out" > "$out/train.log"
  secs=$(( $(date +%s) - start ))
  build/duo-eval --eval.checkpoint_path "$out/last.safetensors" --data.valid "$data/valid_*.bin" \
    --loader.eval_batch_size 32 --eval.output "$out/eval.json" > /dev/null
  read -r nll ppl se seq <<<"$(/usr/bin/python3 -c "import json; r=json.load(open('$out/eval.json')); print(r['nll'], r['ppl'], r['std_err'], r['seq_std_err'])")"
  rows+=("| $a | $(printf %.3f "$ppl") | $(printf %.4f "$nll") ± $(printf %.4f "$se") | $(printf %.4f "$seq") | $(( $(cat "$out/maxrss_kb") / 1024 )) MiB | ${secs} s |")
  echo "${rows[-1]}"
done
echo
echo "| algorithm | val PPL (EMA) | val NLL ± Monte-Carlo s.e. | spread over sequences | peak memory | train time |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
