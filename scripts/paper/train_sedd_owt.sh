#!/usr/bin/env bash
# Table row: SEDD (absorbing) on OpenWebText (L = 1024), 16 per GPU x 4 accumulation x 8 GPUs = 512, 1M steps.
# Environment and launch: scripts/paper/common.sh (RANKS, BATCH, GLOBAL_BATCH, STEPS, DATA, RUNS, EXTRA, DRY_RUN).
source "$(dirname "$0")/common.sh"
train duo-train $GPT2_VOCAB --algo sedd "${COMMON[@]}" "${OWT[@]}" $(batch 16 512 1000000) --checkpointing.save_dir "$RUNS/sedd_owt"
