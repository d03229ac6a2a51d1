# Sourced by the scripts of scripts/paper/ (one per row of the papers' tables). Each runs on one machine as it is,
# with mpirun when RANKS > 1, and under slurm when submitted through scripts/paper/sbatch.sh (srun, one task per
# GPU). Everything site-specific comes from the environment:
#   DUO_BIN         the executables (default: build/cuda when `make cuda` built them, else build)
#   DATA            the tokenized data sets (default: data; see data/README.md)
#   RUNS            where runs write (default: runs/paper)
#   RANKS           processes on one machine without slurm (default: the GPUs nvidia-smi lists, else 1)
#   BATCH           sequences per device and micro-step (default: the row's; lower it if the memory plan says so)
#   GLOBAL_BATCH    sequences per optimizer step (default: the paper's); must be a multiple of ranks x BATCH
#   STEPS           optimizer steps (default: the paper's)
#   MPIRUN_ARGS     extra mpirun options (e.g. "--allow-run-as-root --oversubscribe")
#   INIT_FILE       under slurm without PMIx: a path on a filesystem every node shares; srun then starts the ranks
#                   without MPI and NCCL joins them through that file (GPU runs only; docs/training.md §13)
#   EXTRA           extra options for the executable (e.g. "--device cpu --threads 8")
#   DRY_RUN=1       print the planned device memory of a training row and exit (no data, no GPU needed)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if [ -z "${DUO_BIN:-}" ]; then
  if [ -x build/cuda/duo-train ]; then DUO_BIN=build/cuda; else DUO_BIN=build; fi
fi
DATA=${DATA:-data}
RUNS=${RUNS:-runs/paper}
if [ -z "${RANKS:-}" ]; then
  RANKS=$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' || true)
  [ "$RANKS" -gt 0 ] || RANKS=1
fi
read -r -a extra_args <<<"${EXTRA:-}"

# launch EXE ARGS...: the executable on every rank (srun inside a slurm job, mpirun for RANKS > 1, else directly).
launch() {
  local exe=$DUO_BIN/$1
  shift
  if [ -n "${SLURM_JOB_ID:-}" ] && [ -n "${INIT_FILE:-}" ]; then
    DUO_INIT_FILE=$INIT_FILE srun --kill-on-bad-exit=1 "$exe" "$@" "${extra_args[@]}"
  elif [ -n "${SLURM_JOB_ID:-}" ]; then
    srun --mpi=pmix "$exe" "$@" "${extra_args[@]}"
  elif [ "$RANKS" -gt 1 ]; then
    read -r -a mpirun_args <<<"${MPIRUN_ARGS:-}"
    mpirun -np "$RANKS" --bind-to none "${mpirun_args[@]}" "$exe" "$@" "${extra_args[@]}"
  else
    "$exe" "$@" "${extra_args[@]}"
  fi
}

# train EXE VOCAB ARGS...: a training row; DRY_RUN=1 prints its memory plan instead (vocabulary VOCAB, no data read).
train() {
  local exe=$1 vocab=$2
  shift 2
  if [ "${DRY_RUN:-0}" = 1 ]; then
    "$DUO_BIN/$exe" --dry_run --vocab_size "$vocab" "$@" "${extra_args[@]}"
    return
  fi
  launch "$exe" "$@"
}

# The papers' common settings (docs/training.md §12): AdamW 3e-4, warm-up 2500, clipping 1, dropout 0.1,
# EMA 0.9999, validation every 5000 steps, seed 1; OWT (GPT-2, L = 1024) and LM1B (BERT, L = 128).
COMMON=(--model small --optim.lr 3e-4 --lr_scheduler.num_warmup_steps 2500 --trainer.gradient_clip_val 1.0
  --model.dropout 0.1 --training.ema 0.9999 --trainer.val_check_interval 5000 --seed 1
  --callbacks.checkpoint_every_n_steps.every_n_train_steps 10000)
OWT=(--data.train "$DATA/openwebtext/train_*.bin" --data.valid "$DATA/openwebtext/valid_*.bin" --model.length 1024)
LM1B=(--data.train "$DATA/lm1b/train_*.bin" --data.valid "$DATA/lm1b/valid_*.bin" --model.length 128)
GPT2_VOCAB=50258  # GPT-2 + [PAD]
BERT_VOCAB=30522

# batch DEFAULT_BATCH DEFAULT_GLOBAL DEFAULT_STEPS: the batch and step options of a row, overridable.
batch() {
  echo --loader.batch_size "${BATCH:-$1}" --loader.global_batch_size "${GLOBAL_BATCH:-$2}" \
    --trainer.max_steps "${STEPS:-$3}" --loader.eval_batch_size "${BATCH:-$1}"
}
