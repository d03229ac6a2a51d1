# Sourced by scripts/run_default.sh (`make run`) and bench/step_rate.sh: the training command line of the default
# run, so the benchmark measures exactly what `make run` trains.
#   default_train_args STEPS SAVE_DIR [LOG_EVERY]  -> fills the array DEFAULT_TRAIN_ARGS (LOG_EVERY: 25)
# The curriculum's Gaussian log-SNR range for this vocabulary (V = 67): it spans the same discrete signal levels
# as the reference's OWT range does for GPT-2 (alpha from ~0.95 down to ~0.05; see integral/README.md).
default_train_args() {
  local steps=$1 run=$2 log_every=${3:-25} data=data/tinyshakespeare/char
  DEFAULT_TRAIN_ARGS=(--algo duo --model tiny --model.hidden_size 128 --model.n_blocks 4 --model.n_heads 4
    --model.length 128 --model.dropout 0
    --data.train "$data/train_*.bin" --data.valid "$data/valid_*.bin"
    --loader.batch_size 16 --loader.global_batch_size 16 --loader.eval_batch_size 32
    --optim.lr 2e-3 --lr_scheduler.num_warmup_steps 50 --training.ema 0.99
    --trainer.max_steps "$steps" --trainer.val_check_interval $((steps / 4)) --trainer.limit_val_batches 4
    --trainer.log_every_n_steps "$log_every"
    --algo.curriculum.end $((steps / 2)) --algo.curriculum.gamma_min -2.9 --algo.curriculum.gamma_max 0.75
    --callbacks.checkpoint_every_n_steps.every_n_train_steps 0 --checkpointing.save_dir "$run")
}
