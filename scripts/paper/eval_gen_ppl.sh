#!/usr/bin/env bash
# Table rows: generative perplexity (judged by JUDGE, e.g. a GPT-2 Large folder) and entropy of samples over the
# papers' grid of sampling steps; the ranks split the sampling batches, rank 0 scores and writes.
#   scripts/paper/eval_gen_ppl.sh MODEL JUDGE [STEPS...]   (default steps: 8 16 32 64 128 256 512 1024)
# SAMPLES (default 800 as the papers) samples per point, BATCH (default 8) per sampling batch.
source "$(dirname "$0")/common.sh"
model=${1:?usage: eval_gen_ppl.sh MODEL JUDGE [STEPS...]}
judge=${2:?usage: eval_gen_ppl.sh MODEL JUDGE [STEPS...]}
shift 2
grid=("$@")
[ ${#grid[@]} -gt 0 ] || grid=(8 16 32 64 128 256 512 1024)
out=$RUNS/gen_ppl/$(basename "${model%.safetensors}")
mkdir -p "$out"
for steps in "${grid[@]}"; do
  launch duo-sample --eval.checkpoint_path "$model" --sampling.steps "$steps" --sampling.num_samples "${SAMPLES:-800}" \
    --loader.eval_batch_size "${BATCH:-8}" --eval.gen_ppl_eval_model_name_or_path "$judge" --progress false \
    --eval.generated_samples_path "$out/steps_$steps.json" > /dev/null
done
