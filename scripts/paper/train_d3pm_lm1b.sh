#!/usr/bin/env bash
# Table row: D3PM (absorbing, T = 1000) on LM1B (L = 128), batch 64, 1M steps.
# Environment and launch: scripts/paper/common.sh (RANKS, BATCH, GLOBAL_BATCH, STEPS, DATA, RUNS, EXTRA, DRY_RUN).
source "$(dirname "$0")/common.sh"
train duo-train $BERT_VOCAB --algo d3pm --algo.T 1000 "${COMMON[@]}" "${LM1B[@]}" $(batch 64 64 1000000) --checkpointing.save_dir "$RUNS/d3pm_lm1b"
