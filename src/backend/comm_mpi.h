// Open MPI between the processes of a run launched by mpirun (or srun with PMIx): the communicator of the CPU
// backend, and the bootstrap of NCCL's on the GPU (cuda/nccl/). Its float32 all-reduce takes host memory.
#pragma once
#include <memory>
#include "backend/comm.h"

namespace duo {

// True when this process was started by an MPI launcher (mpirun's OMPI_COMM_WORLD_SIZE, PMIx's PMIX_RANK).
bool launched_by_mpi();
// Which of the ranks on this machine this process is (the GPU it takes), 0 outside an MPI launch.
int mpi_local_rank();

// Initialises MPI (once per process: a second communicator is an error) and finalises it when destroyed.
std::unique_ptr<Comm> make_mpi_comm();

}  // namespace duo
