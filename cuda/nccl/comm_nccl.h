// NCCL between the GPUs of a data-parallel run (one process per GPU). Rank 0 makes the NCCL unique id and hands it
// to the others, either over the launch's MPI communicator or through a shared file (srun without MPI,
// backend/shared_file_launch.h). Float32 sums of GPU buffers go through NCCL (after the backend's stream has
// finished the work that wrote them); host collectives stay on MPI where there is one, else NCCL carries them too
// (float64 sums gathered and added in rank order on the host: the same bits as MPI's chain).
// Built by `make cuda` only (nvcc and libnccl), like cuda/sm90/.
#pragma once
#include <memory>
#include "backend/comm.h"
#include "backend/ops.h"
#include "backend/shared_file_launch.h"

namespace duo {

// `bootstrap` (MPI) and `ops` (the CudaOps of this rank's GPU) must outlive the communicator.
std::unique_ptr<Comm> make_nccl_comm(Comm& bootstrap, Ops& ops);
// Without MPI: the ranks of `launch`, the id exchanged through its file (rank 0 removes the file once all joined).
std::unique_ptr<Comm> make_nccl_comm_shared_file(const SharedFileLaunch& launch, Ops& ops);

}  // namespace duo
