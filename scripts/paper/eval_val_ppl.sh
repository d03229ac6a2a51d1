#!/usr/bin/env bash
# Table rows: validation perplexity of a model (a NELBO upper bound for the diffusion models; exact for AR), split
# over the ranks (docs/training.md §13; the same number as one process).
#   scripts/paper/eval_val_ppl.sh MODEL [owt|lm1b]     (MODEL: our checkpoint or a Hugging Face folder)
# Writes $RUNS/eval/<name>_<set>_val.json. MC_SAMPLES (default 4) time samples per sequence.
source "$(dirname "$0")/common.sh"
model=${1:?usage: eval_val_ppl.sh MODEL [owt|lm1b]}
set_name=${2:-owt}
case $set_name in
  owt) valid=("$DATA/openwebtext/valid_*.bin") ;;
  lm1b) valid=("$DATA/lm1b/valid_*.bin") ;;
  *) echo "eval_val_ppl.sh: unknown set '$set_name' (owt or lm1b)" >&2; exit 2 ;;
esac
mkdir -p "$RUNS/eval"
launch duo-eval --eval.checkpoint_path "$model" --data.valid "${valid[0]}" --loader.eval_batch_size "${BATCH:-16}" \
  --eval.mc_samples "${MC_SAMPLES:-4}" --eval.output "$RUNS/eval/$(basename "${model%.safetensors}")_${set_name}_val.json"
