#!/usr/bin/env bash
# Checks that need a real GPU (none of the build or test machines has one), as one script for a lent device
# machine, sized for one 600-second call: the whole script keeps to GPU_CHECK_BUDGET seconds (default 540), each
# section runs under its own cap and never past that budget, compute-sanitizer (the slowest and least essential)
# runs last with what is left, and summary.txt is written after every section (so a call cut short still reports
# what ran). Every section runs even after another failed; the script fails if any did.
# Results go to $OUT (default build/gpu): summary.txt, build.log, test-cuda.log, sanitizer.txt, bench.txt, train.txt.
#   bench/gpu_check.sh               build and run every section
#   bench/gpu_check.sh --build-only  only compile (what a machine without a GPU can verify)
# GPU_ARCH picks the target (default sm_90a, the H100); NVCC the compiler. The device machine has neither the
# build's libraries nor a network: prepare them here with bench/gpu_deps.sh (into .gpu-debs/, unpacked below into
# /opt/duo-deps) and the training section's shards with `data/tinyshakespeare.sh char`, then carry both:
#   carry [".gpu-debs", "data/tinyshakespeare/char"], command: bench/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
GPU_ARCH=${GPU_ARCH:-sm_90a}
OUT=${OUT:-build/gpu}
export NVCC GPU_ARCH
build_only=false
[ "${1:-}" = "--build-only" ] && build_only=true
mkdir -p build/bench "$OUT"
jobs=$(nproc)
make_vars=()
if [ -d .gpu-debs ]; then  # the build's libraries, carried (bench/gpu_deps.sh)
  deps=/opt/duo-deps
  mkdir -p "$deps"
  for f in .gpu-debs/*.deb; do dpkg -x "$f" "$deps"; done
  lib=$deps/usr/lib/x86_64-linux-gnu
  export CPATH=$deps/usr/include:$deps/usr/include/x86_64-linux-gnu/openblas-pthread${CPATH:+:$CPATH}
  export LIBRARY_PATH=$lib${LIBRARY_PATH:+:$LIBRARY_PATH}
  export LD_LIBRARY_PATH=$lib:$lib/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  make_vars=(OPENBLAS_DIR="$lib/openblas-openmp" MPI_HOME="$lib/openmpi")  # Open MPI's headers and libmpi, no mpirun
fi
nvcc_build() {  # nvcc_build OUTPUT SOURCES...
  local out=$1
  shift
  "$NVCC" -O3 -std=c++20 -Isrc -Icuda -Xcompiler -Wall,-Wextra \
    -gencode "arch=${GPU_ARCH/sm_/compute_},code=$GPU_ARCH" -o "$out" "$@"
}

budget=${GPU_CHECK_BUDGET:-540}
# ---- build: only what the sections run (the native kernel tests, the GPU and CPU duo-train, duo-sample, the
# benchmarks), not the CPU test suite or the other executables ---------------------------------------------------
targets=(build/cuda/duo-cuda-tests build/cuda/duo-train build/cuda/duo-sample build/duo-train build/cuda/gpu-ops-bench
         build/cuda/bench-ops build/cuda/bench-sample_throughput)
make -j"$jobs" "${targets[@]}" GPU_ARCH="$GPU_ARCH" "${make_vars[@]}" >"$OUT/build.log" 2>&1 ||
  { tail -40 "$OUT/build.log"; exit 1; }
nvcc_build build/bench/gpu_attention_bench bench/gpu_attention_bench.cu cuda/kernels/flash_attention.cu
echo "build: ${SECONDS}s" >"$OUT/summary.txt"
if $build_only; then
  echo "gpu_check: built"
  exit 0
fi
# Each section runs under a time limit and the script goes on after a failed one, so one call of the device tool
# reports on everything; $OUT/summary.txt lists the sections' results (the device tool returns at most 8 files).
failed=()
export OUT
section() {  # section NAME SECONDS FUNCTION: an exported function, in a child shell, under min(SECONDS, budget left)
  local name=$1 limit=$2 fn=$3 left=$((budget - SECONDS))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 10 ]; then
    echo "== $name: SKIPPED (the ${budget}s budget is spent)" | tee -a "$OUT/summary.txt"
    failed+=("$name")
    return
  fi
  echo "== $name (at ${SECONDS}s, limit ${limit}s)" | tee -a "$OUT/summary.txt"
  if timeout "$limit" bash -c "$fn"; then
    echo "   $name: passed (${SECONDS}s)" | tee -a "$OUT/summary.txt"
  else
    echo "   $name: FAILED (exit $?, ${SECONDS}s)" | tee -a "$OUT/summary.txt"
    failed+=("$name")
  fi
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a "$OUT/summary.txt"

# ---- the CUDA backend's tests natively (make test-cuda: every kernel vs the CPU op, whole DiT, training, resume,
# distillation and sampling against the CPU backend, determinism over repeated runs) -----------------------------
test_cuda() {
  scripts/run_tests.sh build/cuda/duo-cuda-tests --run_test=cuda_gpu >"$OUT/test-cuda.log" 2>&1
  local rc=$?
  tail -1 "$OUT/test-cuda.log" | tee -a "$OUT/summary.txt"
  return $rc
}
export -f test_cuda
section "make test-cuda" 150 test_cuda

# ---- attention (flash vs a naive fp32 kernel, determinism, TFLOP/s) and the row-wise heads (loss heads, KL,
# curriculum relaxation against the copy bandwidth of the same run) --------------------------------------------
# Attention shapes: the small model (B=8, H=12, L=1024, hd=64), the tiny model's head dim (hd=32), then the sweep
# (hd 32 and 64, L 128 ... 4096 at 16k tokens) next to FlashAttention-2's published H100 figures.
# Then every case of the op-test harness (tests/ops/) at 64 times its test size (build/cuda/bench-ops): achieved
# GFLOP/s, GB/s and % of the dense bf16 peak per op, from the same cost model the CPU figures use.
# Then sampling on the device (issue 15's goals): one batch-32 denoising step of the small model at L 1024 and
# GPT-2's vocabulary (goal <= 19 ms), and an 8-step sample of one 1024-token sequence (goal <= 10 ms in all).
bench() {
  build/bench/gpu_attention_bench && build/bench/gpu_attention_bench 8 8 1024 32 &&
    build/bench/gpu_attention_bench --sweep && build/cuda/gpu-ops-bench &&
    build/cuda/bench-ops --device cuda --scale 64 --repeat 5 &&
    build/cuda/bench-sample_throughput --device cuda --models small --length 1024 --batch 32 --steps 8 --torch none &&
    build/cuda/bench-sample_throughput --device cuda --models small --length 1024 --batch 1 --steps 8 --torch none &&
    echo "the same without CUDA graphs (every kernel launched; docs/architecture.md §5.6):" &&
    DUO_CUDA_GRAPHS=0 build/cuda/bench-sample_throughput --device cuda --models small --length 1024 --batch 1 \
      --steps 8 --torch none
}
export -f bench
section "benchmarks" 150 bench >>"$OUT/bench.txt" 2>&1
cat "$OUT/bench.txt"

# ---- training: the same short DUO run on the GPU and on the CPU backend; the validation NLL must agree to
# the bf16 tolerance, and the step rates go side by side; then samples on the GPU ---------------------------------
export data=data/tinyshakespeare/char runs=build/gpu_runs
train() {  # train DEVICE BINARY
  "$2" --device "$1" --algo duo --model tiny --model.hidden_size 128 --model.n_blocks 4 --model.n_heads 4 \
    --model.length 128 --model.dropout 0 --data.train "$data/train_*.bin" --data.valid "$data/valid_*.bin" \
    --loader.batch_size 16 --loader.global_batch_size 16 --loader.eval_batch_size 32 --optim.lr 2e-3 \
    --lr_scheduler.num_warmup_steps 20 --trainer.max_steps 100 --trainer.val_check_interval 100 \
    --trainer.limit_val_batches 4 --trainer.log_every_n_steps 25 --algo.curriculum.end 50 \
    --algo.curriculum.gamma_min -2.9 --algo.curriculum.gamma_max 0.75 \
    --algo.curriculum.integral_cache_path integral/tinyshakespeare-char.bin \
    --callbacks.checkpoint_every_n_steps.every_n_train_steps 0 --checkpointing.save_dir "$runs/${3:-$1}"
}
val_nll() { grep '"val/nll"' "$runs/$1/metrics.jsonl" | tail -1 | grep -o '"val/nll":[-0-9.e+]*' | cut -d: -f2; }
train_both() {
  if [ ! -f $data/train_000000.bin ]; then
    echo "gpu_check: $data is missing (HINT: data/tinyshakespeare.sh char here, then carry $data)"
    return 1
  fi
  rm -rf "$runs"
  train cuda build/cuda/duo-train && train cpu build/duo-train || return 1
  local gpu cpu
  gpu=$(val_nll cuda) cpu=$(val_nll cpu)
  echo "validation NLL after 100 steps: cuda $gpu, cpu $cpu"
  awk -v g="$gpu" -v c="$cpu" 'BEGIN { d = g - c; if (d < 0) d = -d; exit !(d <= 0.05 * c) }' ||
    { echo "gpu_check: the GPU and CPU runs disagree by more than 5%"; return 1; }
  build/cuda/duo-sample --device cuda --eval.checkpoint_path "$runs/cuda/last.safetensors" --sampling.steps 8 \
    --sampling.num_samples 4 --loader.eval_batch_size 4 --model.length 128 --progress false \
    --eval.generated_samples_path "$runs/samples_cuda.json"
}
export -f train val_nll train_both
section "training and sampling" 120 train_both >>"$OUT/train.txt" 2>&1
grep -E "^step|validation|device|NLL|gpu_check|tokens/s" "$OUT/train.txt" | tee -a "$OUT/summary.txt" || true

# ---- NCCL in a world of one (issue 19): the same GPU run with its gradients summed by NCCL over one rank
# (DUO_NCCL_ALWAYS=1); a sum of one is a copy, so every logged number must equal the plain GPU run's -------------
nccl_one() {
  [ -f "$runs/cuda/metrics.jsonl" ] || { echo "gpu_check: the plain GPU run is missing"; return 1; }
  DUO_NCCL_ALWAYS=1 train cuda build/cuda/duo-train nccl >"$runs/nccl.log" 2>&1
  local rc=$?
  cat "$runs/nccl.log"
  [ "$rc" -eq 0 ] || return 1
  grep -q "1 ranks (nccl)" "$runs/nccl.log" || { echo "gpu_check: the run does not say it used NCCL"; return 1; }
  grep -q "buckets over nccl" "$runs/nccl.log" ||
    { echo "gpu_check: the NCCL run does not sum its gradient in buckets during the backward"; return 1; }
  echo "validation NLL after 100 steps: cuda $(val_nll cuda), cuda over NCCL (one rank) $(val_nll nccl)"
  cmp <(grep -o '"train/loss":[-0-9.e+]*' "$runs/cuda/metrics.jsonl") \
      <(grep -o '"train/loss":[-0-9.e+]*' "$runs/nccl/metrics.jsonl") ||
    { echo "gpu_check: the losses over NCCL differ from the plain run's"; return 1; }
  [ "$(val_nll cuda)" = "$(val_nll nccl)" ] || { echo "gpu_check: the validation NLLs differ"; return 1; }
  # The same world of one launched as srun without MPI would start it: the ranks from slurm's variables, NCCL's id
  # through a shared file (DUO_INIT_FILE), which rank 0 removes once every rank joined; NCCL carries the host
  # collectives too
  DUO_INIT_FILE="$runs/nccl.init" SLURM_JOB_ID=1 SLURM_STEP_ID=0 SLURM_PROCID=0 SLURM_STEP_NUM_TASKS=1 \
    SLURM_LOCALID=0 train cuda build/cuda/duo-train nccl_file >"$runs/nccl_file.log" 2>&1
  rc=$?
  cat "$runs/nccl_file.log"
  [ "$rc" -eq 0 ] || return 1
  grep -q "1 ranks (nccl)" "$runs/nccl_file.log" || { echo "gpu_check: the shared-file run does not use NCCL"; return 1; }
  [ ! -e "$runs/nccl.init" ] || { echo "gpu_check: rank 0 left the launch file behind"; return 1; }
  echo "validation NLL after 100 steps: cuda over NCCL joined through a shared file (one rank) $(val_nll nccl_file)"
  cmp <(grep -o '"train/loss":[-0-9.e+]*' "$runs/cuda/metrics.jsonl") \
      <(grep -o '"train/loss":[-0-9.e+]*' "$runs/nccl_file/metrics.jsonl") ||
    { echo "gpu_check: the losses of the shared-file launch differ from the plain run's"; return 1; }
  [ "$(val_nll cuda)" = "$(val_nll nccl_file)" ] || { echo "gpu_check: the shared-file run's validation NLL differs"; return 1; }
}
export -f nccl_one
section "nccl world of one" 90 nccl_one >>"$OUT/train.txt" 2>&1
grep -E "NCCL|nccl" "$OUT/train.txt" | tee -a "$OUT/summary.txt" || true

# ---- last, with what is left of the budget: compute-sanitizer over the kernel tests (not the end-to-end ones, for
# time): memcheck (out-of-bounds and misaligned accesses, leaks of error state) and racecheck (shared-memory
# hazards), which real warps can show and the emulator only approximates -----------------------------------------
sanitize() {
  local san tests='cuda_gpu/cuda_ops_*:cuda_gpu/flash_attention_*'
  san=$(command -v compute-sanitizer || echo "$(dirname "$NVCC")/compute-sanitizer")
  [ -x "$san" ] || { echo "compute-sanitizer not found"; return 1; }
  "$san" --tool memcheck --error-exitcode 1 build/cuda/duo-cuda-tests --run_test="$tests" \
    --log_level=nothing --report_level=short &&
    "$san" --tool racecheck --error-exitcode 1 build/cuda/duo-cuda-tests --run_test="$tests" \
      --log_level=nothing --report_level=short
}
export -f sanitize
section "compute-sanitizer" 150 sanitize >>"$OUT/sanitizer.txt" 2>&1
grep -E "ERROR SUMMARY|RACECHECK SUMMARY|not found" "$OUT/sanitizer.txt" | tee -a "$OUT/summary.txt" || true

if [ ${#failed[@]} -gt 0 ]; then
  echo "gpu_check: failed: ${failed[*]}" | tee -a "$OUT/summary.txt"
  exit 1
fi
echo "gpu_check: passed" | tee -a "$OUT/summary.txt"
