#!/usr/bin/env bash
# Run here, on a machine with apt (a Debian 12 like the build machines): downloads the Debian packages that
# `make` needs beyond a compiler into .gpu-debs/ (ignored by git). The device machine has nvcc and g++ but none
# of these libraries and no network; carry the folder there and bench/gpu_check.sh unpacks it into
# /opt/duo-deps (not over /, so nothing of the machine's own is replaced) and builds against it:
#   bench/gpu_deps.sh                          # here, once (about 25 MB)
#   data/tinyshakespeare.sh char               # here: the training section's shards
#   device run, carry [".gpu-debs", "data/tinyshakespeare/char"]:  bench/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(libboost1.74-dev
      libboost-program-options1.74-dev libboost-program-options1.74.0
      libboost-test1.74-dev libboost-test1.74.0
      libboost-context1.74-dev libboost-context1.74.0
      libopenblas0-openmp libopenblas-pthread-dev libgfortran5
      libpcre2-dev libpcre2-8-0 libutf8proc-dev libutf8proc2 nlohmann-json3-dev zlib1g-dev zlib1g
      libopenmpi-dev libopenmpi3 libhwloc15 libevent-core-2.1-7 libevent-pthreads-2.1-7 libudev1)  # MPI: src/backend/comm_mpi.cpp
rm -rf .gpu-debs
mkdir -p .gpu-debs
cd .gpu-debs
apt-get download "${pkgs[@]}" 2>&1 | grep -v "unsandboxed" || true
[ "$(ls ./*.deb | wc -l)" -eq "${#pkgs[@]}" ] || { echo "gpu_deps: some packages did not download" >&2; exit 1; }
du -sh .
