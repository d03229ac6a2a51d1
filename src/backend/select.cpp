#include "backend/select.h"
#include <cstdio>
#include "backend/comm_mpi.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/process_setup.h"
#include "core/error.h"
#if defined(DUO_WITH_CUDA)
#include "device.h"            // cuda/device.h: only in the executables `make cuda` links against the CUDA backend
#include "nccl/comm_nccl.h"    // cuda/nccl/comm_nccl.h: likewise
#endif

namespace duo {

std::unique_ptr<Ops> make_backend(const std::string& device, int threads, int gpu) {
  cpu::set_threads(threads, "--threads");
  if (device == "cpu") return std::make_unique<CpuOps>();
#if defined(DUO_WITH_CUDA)
  if (device == "cuda") return make_cuda_backend(/*required=*/true, gpu);
  if (device == "auto") {
    if (auto g = make_cuda_backend(/*required=*/false, gpu)) return g;
    return std::make_unique<CpuOps>();
  }
#else
  (void)gpu;
  if (device == "auto") return std::make_unique<CpuOps>();
  if (device == "cuda")
    fail("--device cuda", "this executable was built without the CUDA backend",
         "build the GPU executables with `make cuda` and run build/cuda/" + std::string("duo-train (or duo-eval, ...)"));
#endif
  fail("--device", "unknown device '" + device + "'", "use auto, cpu or cuda");
}

Processes start_processes(const std::string& device, int threads) {
  Processes p;
  if (launched_by_mpi()) p.launch = make_mpi_comm();
  else p.launch = std::make_unique<SingleComm>();
  if (p.launch->rank() != 0 && !std::freopen("/dev/null", "w", stdout))
    fail("rank " + std::to_string(p.launch->rank()), "cannot silence its standard output", "check /dev/null");
  p.ops = make_backend(device, threads, mpi_local_rank());
#if defined(DUO_WITH_CUDA)
  if (p.ops->device() == Device::CUDA && p.launch->size() > 1) p.gpu = make_nccl_comm(*p.launch, *p.ops);
#endif
  return p;
}

}  // namespace duo
