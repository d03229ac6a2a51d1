#!/usr/bin/env bash
# A generic slurm job for any script of scripts/paper/: one task per GPU, the row script's srun starts the ranks.
#   sbatch --nodes 2 --gpus-per-node 8 --ntasks-per-node 8 scripts/paper/sbatch.sh scripts/paper/train_duo_owt.sh
# Partition, account and time limit are the site's: give them on the sbatch command line (-p, -A, -t), not here.
#SBATCH --job-name=duo
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=8
#SBATCH --output=%x-%j.out
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: sbatch [slurm options] scripts/paper/sbatch.sh scripts/paper/ROW.sh" >&2; exit 2; }
exec bash "$@"
