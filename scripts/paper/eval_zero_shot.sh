#!/usr/bin/env bash
# Table rows: zero-shot perplexity of an OWT model on the other corpora (no separator between documents), each
# split over the ranks. The sets are the ones data/*.sh prepared (data/README.md); missing ones are named and skipped.
#   scripts/paper/eval_zero_shot.sh MODEL [SET...]   (default: ptb wikitext2 wikitext103 lambada ag_news pubmed arxiv lm1b-gpt2)
source "$(dirname "$0")/common.sh"
model=${1:?usage: eval_zero_shot.sh MODEL [SET...]}
shift
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(ptb wikitext2 wikitext103 lambada ag_news pubmed arxiv lm1b-gpt2)
mkdir -p "$RUNS/eval"
for s in "${sets[@]}"; do
  if ! compgen -G "$DATA/$s/valid_*.bin" > /dev/null; then
    echo "eval_zero_shot.sh: no $DATA/$s/valid_*.bin: prepare it with data/${s%%[0-9-]*}.sh; skipped" >&2
    continue
  fi
  launch duo-eval --eval.checkpoint_path "$model" --data.valid "$DATA/$s/valid_*.bin" --data.insert_valid_eos false \
    --loader.eval_batch_size "${BATCH:-16}" --eval.mc_samples "${MC_SAMPLES:-1}" \
    --eval.output "$RUNS/eval/$(basename "${model%.safetensors}")_${s}_zero_shot.json"
done
