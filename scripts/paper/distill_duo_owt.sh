#!/usr/bin/env bash
# Table row: Discrete Consistency Distillation of DUO OWT (docs/distillation.md): duo-distill's defaults (lr 6e-5,
# warm-up 500, EMA 0.999, T = 512, teacher refresh every 10k steps, kl-bwd, gamma in [-4, -1]), 2 x 64 accumulation = 128
# sequences, 50k steps, from TEACHER (default $RUNS/duo_owt_stage2/last.safetensors); the GPT-2 integral table
# shipped in integral/ (INTEGRAL to use another; computing it at start takes minutes).
# Environment and launch: scripts/paper/common.sh (RANKS, BATCH, GLOBAL_BATCH, STEPS, DATA, RUNS, EXTRA, DRY_RUN).
source "$(dirname "$0")/common.sh"
teacher=${TEACHER:-$RUNS/duo_owt_stage2/last.safetensors}
train duo-distill $GPT2_VOCAB --model small --training.finetune_path "$teacher" "${OWT[@]}" $(batch 2 128 50000) \
  --algo.integral_cache_path "${INTEGRAL:-integral/gpt2.bin}" \
  --checkpointing.save_dir "$RUNS/distill_duo_owt"
