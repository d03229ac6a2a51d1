#!/usr/bin/env bash
# Table row: MDLM on OpenWebText (L = 1024), 512 sequences x 1M steps.
# Environment and launch: scripts/paper/common.sh (RANKS, BATCH, GLOBAL_BATCH, STEPS, DATA, RUNS, EXTRA, DRY_RUN).
source "$(dirname "$0")/common.sh"
train duo-train $GPT2_VOCAB --algo mdlm "${COMMON[@]}" "${OWT[@]}" $(batch 32 512 1000000) --checkpointing.save_dir "$RUNS/mdlm_owt"
