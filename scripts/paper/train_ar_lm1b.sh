#!/usr/bin/env bash
# Table row: AR on LM1B (BERT tokenizer, L = 128), 512 sequences x 1M steps.
# Environment and launch: scripts/paper/common.sh (RANKS, BATCH, GLOBAL_BATCH, STEPS, DATA, RUNS, EXTRA, DRY_RUN).
source "$(dirname "$0")/common.sh"
train duo-train $BERT_VOCAB --algo ar "${COMMON[@]}" "${LM1B[@]}" $(batch 64 512 1000000) --checkpointing.save_dir "$RUNS/ar_lm1b"
