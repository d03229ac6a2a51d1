// Chooses the backend of a run from --device: auto | cpu | cuda, and the processes it runs in.
#pragma once
#include <memory>
#include <string>
#include "backend/comm.h"
#include "backend/ops.h"

namespace duo {

// auto = cuda when this build has the CUDA backend and a GPU answers, else cpu. Throws duo::Error with a HINT
// for cuda in a build without it. threads > 0 sets the CPU threads (--threads; the host side of a GPU run too),
// 0 keeps one per core. compute (--compute): the precision of the GEMMs (dense layers, attention), "auto" (fp32 on
// the CPU, bf16 tensor cores on a GPU), "fp32" (CPU only) or "bf16" (on the CPU: needs AVX512-BF16 or AMX).
// gpu: which GPU of the machine a CUDA backend takes.
std::unique_ptr<Ops> make_backend(const std::string& device, int threads = 0, const std::string& compute = "auto",
                                  int gpu = 0);

// The --compute option's help line, shared by the executables.
inline const char* compute_option_help() {
  return "GEMM precision (dense layers, attention): auto (fp32 on the CPU, bf16 on a GPU), fp32, or bf16 (CPU: bf16 "
         "inputs, fp32 sums; needs AVX512-BF16 or AMX; about 2x faster GEMMs, docs/cpu_performance.md)";
}

// The processes of a run and each one's backend. Launched by mpirun (or srun with PMIx), every process is a rank
// of an MPI communicator and takes the GPU of its local rank; a CUDA backend in a world of more than one then
// sums its buffers through NCCL, bootstrapped over MPI (DUO_NCCL_ALWAYS=1: through NCCL in a world of one as
// well, to check that path on one GPU). Launched by srun without MPI and with DUO_INIT_FILE set (CUDA only), the
// ranks come from slurm's environment and NCCL, joined through that file, carries every collective
// (backend/shared_file_launch.h). Started any other way: one process, SingleComm.
// Ranks other than 0 send their standard output to /dev/null (rank 0 alone logs; errors still reach stderr).
struct Processes {
  std::unique_ptr<Comm> launch;  // MPI or single: host collectives (none in a shared-file launch)
  std::unique_ptr<Ops> ops;
  std::unique_ptr<Comm> gpu;     // NCCL when the backend is CUDA and there are several ranks (over `launch`, or
                                 // joined through DUO_INIT_FILE), or DUO_NCCL_ALWAYS=1
  Comm& comm() { return gpu ? *gpu : *launch; }  // what the trainer, evaluation and sampling use
};
Processes start_processes(const std::string& device, int threads = 0, const std::string& compute = "auto");

}  // namespace duo
