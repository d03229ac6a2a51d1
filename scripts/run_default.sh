#!/usr/bin/env bash
# `make run`: the main job on the built-in default. Prepares tinyshakespeare (char level, from the repository's
# data/vendor/), trains a small DUO model with curriculum learning on the CPU
# for a few minutes, prints its validation perplexity (with the EMA weights) and samples from it: 8 steps with
# the greedy-tail sampler and 64 steps ancestral, with their entropy.
# Override the length of the run with STEPS=N (default 400).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${STEPS:-400}
run=runs/default
data=data/tinyshakespeare/char
echo "== duo.cu default run: DUO (curriculum) on tinyshakespeare, char level, CPU"
if [ ! -f $data/train_000000.bin ] || [ ! -f $data/valid_000000.bin ]; then
  data/tinyshakespeare.sh char
fi
rm -rf $run
source scripts/default_train.sh
default_train_args "$steps" $run
build/duo-train "${DEFAULT_TRAIN_ARGS[@]}"
echo
echo "== validation perplexity on the whole validation set, EMA weights (DUO NELBO: an upper bound)"
build/duo-eval --eval.checkpoint_path $run/last.safetensors --data.valid "$data/valid_*.bin" \
  --loader.eval_batch_size 32 --eval.output $run/eval.json | grep -E '"(nll|ppl|bpd|std_err|tokens)"'
echo
for spec in "8 greedy" "64 ancestral"; do
  set -- $spec
  echo "== samples: $1 steps, noise removal $2 (EMA weights)"
  build/duo-sample --eval.checkpoint_path $run/last.safetensors --sampling.steps $1 --sampling.noise_removal $2 \
    --sampling.num_samples 2 --loader.eval_batch_size 2 --model.length 128 --progress false \
    --eval.generated_samples_path $run/samples_$1_$2.json
done
build/duo-plot $run/metrics.jsonl -o $run/loss.svg --title "DUO on tinyshakespeare (char)" >/dev/null
echo "loss curve: $run/loss.svg, metrics: $run/metrics.jsonl, checkpoint: $run/last.safetensors"
