#!/usr/bin/env bash
# Table row: MDLM on LM1B (L = 128), 64 per GPU x 2 accumulation x 4 GPUs = 512, 1M steps.
# Environment and launch: scripts/paper/common.sh (RANKS, BATCH, GLOBAL_BATCH, STEPS, DATA, RUNS, EXTRA, DRY_RUN).
source "$(dirname "$0")/common.sh"
train duo-train $BERT_VOCAB --algo mdlm "${COMMON[@]}" "${LM1B[@]}" $(batch 64 512 1000000) --checkpointing.save_dir "$RUNS/mdlm_lm1b"
