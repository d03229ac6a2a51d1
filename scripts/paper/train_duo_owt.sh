#!/usr/bin/env bash
# Table row: DUO on OpenWebText, stage 1: the curriculum (simple, tau = 1e-3, gamma in [-3.55, -1.85]) for 500k
# steps, 32 per GPU x 8 GPUs x 2 accumulation = 512 (L = 1024). Stage 2: train_duo_owt_stage2.sh.
# Environment and launch: scripts/paper/common.sh (RANKS, BATCH, GLOBAL_BATCH, STEPS, DATA, RUNS, EXTRA, DRY_RUN).
source "$(dirname "$0")/common.sh"
train duo-train $GPT2_VOCAB --algo duo --algo.curriculum.mode simple --algo.curriculum.end 500000 \
  --algo.curriculum.gamma_min -3.55 --algo.curriculum.gamma_max -1.85 "${COMMON[@]}" "${OWT[@]}" $(batch 32 512 500000) \
  --checkpointing.save_dir "$RUNS/duo_owt"
