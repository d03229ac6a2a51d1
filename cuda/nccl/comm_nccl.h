// NCCL between the GPUs of a data-parallel run (one process per GPU), bootstrapped through the launch's MPI
// communicator: rank 0 makes the NCCL unique id and broadcasts it. Float32 sums of GPU buffers go through NCCL
// (after the backend's stream has finished the work that wrote them); host collectives stay on the bootstrap.
// Built by `make cuda` only (nvcc and libnccl), like cuda/sm90/.
#pragma once
#include <memory>
#include "backend/comm.h"
#include "backend/ops.h"

namespace duo {

// `bootstrap` (MPI) and `ops` (the CudaOps of this rank's GPU) must outlive the communicator.
std::unique_ptr<Comm> make_nccl_comm(Comm& bootstrap, Ops& ops);

}  // namespace duo
