#!/usr/bin/env bash
# Table row: DUO on OpenWebText, stage 2: duo_base from stage 1's last checkpoint (STAGE1, default
# $RUNS/duo_owt/last.safetensors), 64 x 8 = 512 sequences, 500k steps.
# Environment and launch: scripts/paper/common.sh (RANKS, BATCH, GLOBAL_BATCH, STEPS, DATA, RUNS, EXTRA, DRY_RUN).
source "$(dirname "$0")/common.sh"
stage1=${STAGE1:-$RUNS/duo_owt/last.safetensors}
train duo-train $GPT2_VOCAB --algo duo_base --training.finetune_path "$stage1" "${COMMON[@]}" "${OWT[@]}" \
  $(batch 64 512 500000) --checkpointing.save_dir "$RUNS/duo_owt_stage2"
