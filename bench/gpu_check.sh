#!/usr/bin/env bash
# Checks that need a real GPU (none of the build or test machines has one). Each section builds one program
# with nvcc into build/bench/ and runs it; a section fails the script when its program exits non-zero.
#   bench/gpu_check.sh               build and run every section
#   bench/gpu_check.sh --build-only  only compile (what a machine without a GPU can verify)
# GPU_ARCH picks the target (default sm_90a, the H100); NVCC the compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
GPU_ARCH=${GPU_ARCH:-sm_90a}
build_only=false
[ "${1:-}" = "--build-only" ] && build_only=true
mkdir -p build/bench
nvcc_build() {  # nvcc_build OUTPUT SOURCES...
  local out=$1
  shift
  "$NVCC" -O3 -std=c++20 -Isrc -Icuda -Xcompiler -Wall,-Wextra \
    -gencode "arch=${GPU_ARCH/sm_/compute_},code=$GPU_ARCH" -o "$out" "$@"
}

# ---- attention: flash forward/backward vs a naive fp32 kernel, determinism, TFLOP/s -------------------------
# Shapes: the small model (B=8, H=12, L=1024, hd=64) and the tiny model's head dim (hd=32).
nvcc_build build/bench/gpu_attention_bench bench/gpu_attention_bench.cu cuda/kernels/flash_attention.cu
if ! $build_only; then
  build/bench/gpu_attention_bench
  build/bench/gpu_attention_bench 8 8 1024 32
fi
echo "gpu_check: $($build_only && echo built || echo passed)"
