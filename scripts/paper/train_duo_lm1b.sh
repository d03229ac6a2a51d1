#!/usr/bin/env bash
# Table row: DUO on LM1B (L = 128): the curriculum (gamma in [-3.5, -1.75]) for 500k steps then duo_base, 64 x 8 = 512,
# 1M steps in one run.
# Environment and launch: scripts/paper/common.sh (RANKS, BATCH, GLOBAL_BATCH, STEPS, DATA, RUNS, EXTRA, DRY_RUN).
source "$(dirname "$0")/common.sh"
train duo-train $BERT_VOCAB --algo duo --algo.curriculum.mode simple --algo.curriculum.end 500000 \
  --algo.curriculum.gamma_min -3.5 --algo.curriculum.gamma_max -1.75 "${COMMON[@]}" "${LM1B[@]}" $(batch 64 512 1000000) \
  --checkpointing.save_dir "$RUNS/duo_lm1b"
