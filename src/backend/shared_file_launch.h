// A data-parallel launch without MPI: `srun` starts one process per GPU (no --mpi=pmix), each process learns its
// rank from slurm's environment, and rank 0 hands the others NCCL's unique id through a file on a filesystem every
// node sees (DUO_INIT_FILE). NCCL then carries every collective, host ones included (cuda/nccl/comm_nccl.h).
//
//   DUO_INIT_FILE=$HOME/runs/owt.init srun --kill-on-bad-exit=1 --ntasks-per-node 8 build/cuda/duo-train ...
//
// The file holds the run's key (slurm's job and step ids), so a file that an earlier, killed run left behind is
// never taken for this run's: the other ranks wait until rank 0 has written theirs. Rank 0 removes it once every
// rank has joined. Only the exchange lives here (it is plain file I/O, tested on the CPU); the NCCL side is in cuda/.
#pragma once
#include <cstddef>
#include <optional>
#include <string>

namespace duo {

struct SharedFileLaunch {
  int rank = 0, size = 1;  // SLURM_PROCID, SLURM_STEP_NUM_TASKS
  int local_rank = 0;      // SLURM_LOCALID: which GPU of its node the process takes
  std::string file;        // DUO_INIT_FILE
  std::string key;         // SLURM_JOB_ID.SLURM_STEP_ID
  double timeout_s = 600;  // DUO_INIT_TIMEOUT: how long a rank waits for rank 0's file
};

// From the environment: nothing when DUO_INIT_FILE is unset. Fails naming the variable when it is set and slurm's
// are missing or malformed (the ranks would not know who they are).
std::optional<SharedFileLaunch> shared_file_launch_from_env();

// Rank 0: writes the key and `bytes` bytes of data to the file, through a temporary file renamed over it, so a
// reader sees all of it or nothing. Fails naming the file when it cannot be written.
void publish_launch_data(const SharedFileLaunch& launch, const void* data, size_t bytes);

// The other ranks: waits for the file to hold this run's key, then reads `bytes` bytes of data. Fails naming the
// file after timeout_s (saying when a file of another run is in the way), or when the file is malformed.
void wait_for_launch_data(const SharedFileLaunch& launch, void* data, size_t bytes);

// Rank 0, once every rank has read the file: removes it (a file already gone is not an error).
void withdraw_launch_data(const SharedFileLaunch& launch);

}  // namespace duo
