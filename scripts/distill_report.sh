#!/usr/bin/env bash
# The README's distillation report at small scale: distil the DUO model trained by compare_algorithms.sh (runs/
# compare/duo) with Discrete Consistency Distillation, then sample it before and after, next to MDLM, at 8 and 32
# steps with the ancestral and greedy-tail samplers: generative perplexity (scored by the AR model trained on the
# same data, runs/compare/ar) and unigram entropy.
#   scripts/distill_report.sh [STEPS]        (default 300 distillation steps = 5 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-300}
data=data/tinyshakespeare/char
for need in runs/compare/duo runs/compare/ar runs/compare/mdlm; do
  [ -f $need/last.safetensors ] || { echo "missing $need: run scripts/compare_algorithms.sh first" >&2; exit 1; }
done
out=runs/distill
rm -rf $out
# The char vocabulary's distillation γ range: α from 0.9987 (γ = -3.5) to ~0.006 (γ = 3.5), the α span the
# reference's [-4, -1] covers for GPT-2.
build/duo-distill --training.finetune_path runs/compare/duo/last.safetensors \
  --model tiny --model.hidden_size 128 --model.n_blocks 4 --model.n_heads 4 --model.length 128 --model.dropout 0 \
  --data.train "$data/train_*.bin" --data.valid "$data/valid_*.bin" \
  --loader.batch_size 16 --loader.global_batch_size 16 --loader.eval_batch_size 32 \
  --trainer.max_steps "$steps" --algo.update_teacher_every $((steps / 5)) --lr_scheduler.num_warmup_steps 20 \
  --optim.lr 1e-4 --trainer.val_check_interval "$steps" --trainer.limit_val_batches 4 --trainer.log_every_n_steps 50 \
  --algo.gamma_min -3.5 --algo.gamma_max 3.5 --algo.integral_cache_path integral/tinyshakespeare-char.bin \
  --checkpointing.save_dir $out > $out.log
rows=()
sample() {  # name checkpoint steps tail
  local json=$out/samples_$1_$3_$4.json
  build/duo-sample --eval.checkpoint_path "$2" --sampling.steps "$3" --sampling.noise_removal "$4" \
    --sampling.num_samples 32 --loader.eval_batch_size 32 --model.length 128 --progress false \
    --eval.gen_ppl_eval_model_name_or_path runs/compare/ar/last.safetensors --eval.perplexity_batch_size 32 \
    --eval.generated_samples_path "$json" > /dev/null
  /usr/bin/python3 -c "import json; r=json.load(open('$json')); print(f\"| $1 | $3 | $4 | {r['generative_ppl']:.2f} | {r['entropy']:.3f} |\")"
}
echo "| model | steps | noise removal | Gen PPL (AR scorer) | entropy |"
echo "|---|---|---|---|---|"
for steps_ in 8 32; do
  for tail in ancestral greedy; do
    sample "DUO" runs/compare/duo/last.safetensors $steps_ $tail
    sample "DUO + DCD" $out/last.safetensors $steps_ $tail
    sample "MDLM" runs/compare/mdlm/last.safetensors $steps_ $tail
  done
done
