#include "backend/select.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include "backend/comm_mpi.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/gemm_bf16.h"
#include "backend/cpu/process_setup.h"
#include "backend/shared_file_launch.h"
#include "core/error.h"
#if defined(DUO_WITH_CUDA)
#include "device.h"            // cuda/device.h: only in the executables `make cuda` links against the CUDA backend
#include "nccl/comm_nccl.h"    // cuda/nccl/comm_nccl.h: likewise
#endif

namespace duo {

namespace {

std::unique_ptr<Ops> cpu_backend(const std::string& compute) {
  const bool bf16 = compute == "bf16";
  DUO_CHECK(!bf16 || cpu::cpu_has_bf16_gemm(), "--compute bf16",
            "this CPU has no bf16 dot-product instructions (AVX512-BF16 or AMX), so bf16 GEMMs would be slower",
            "use --compute fp32 (the CPU's default)");
  return std::make_unique<CpuOps>(bf16);
}

#if defined(DUO_WITH_CUDA)
std::unique_ptr<Ops> gpu_backend(bool required, const std::string& compute, int gpu_index) {
  auto gpu = make_cuda_backend(required, gpu_index);
  DUO_CHECK(!gpu || compute != "fp32", "--compute fp32",
            "the CUDA backend's dense layers run on bf16 tensor cores (with fp32 sums); it has no fp32 GEMM mode",
            "leave --compute at auto (or bf16) on a GPU, or run on the CPU with --device cpu");
  return gpu;
}
#endif

// DUO_NCCL_ALWAYS=1: NCCL carries the gradients even for a single CUDA process (a world of one), so that the NCCL
// path can be checked on a machine with one GPU (bench/gpu_check.sh). Unset or 0: NCCL only with several ranks.
bool nccl_always(const Ops& ops) {
  const char* v = std::getenv("DUO_NCCL_ALWAYS");
  if (!v || std::strcmp(v, "0") == 0 || *v == 0) return false;
  DUO_CHECK(std::strcmp(v, "1") == 0, "DUO_NCCL_ALWAYS", str("'", v, "' is neither 0 nor 1"),
            "set DUO_NCCL_ALWAYS=1 to use NCCL with a single GPU process, or unset it");
  DUO_CHECK(ops.device() == Device::CUDA, "DUO_NCCL_ALWAYS", "NCCL carries GPU buffers, and this run is on the CPU",
            "unset DUO_NCCL_ALWAYS (the CPU backend's ranks talk over MPI), or run with --device cuda");
  return true;
}

}  // namespace

std::unique_ptr<Ops> make_backend(const std::string& device, int threads, const std::string& compute, int gpu) {
  DUO_CHECK(compute == "auto" || compute == "fp32" || compute == "bf16", "--compute",
            "unknown precision '" + compute + "'", "use auto, fp32 or bf16");
  cpu::set_threads(threads, "--threads");
  if (device == "cpu") return cpu_backend(compute);
#if defined(DUO_WITH_CUDA)
  if (device == "cuda") return gpu_backend(/*required=*/true, compute, gpu);
  if (device == "auto") {
    if (auto g = gpu_backend(/*required=*/false, compute, gpu)) return g;
    return cpu_backend(compute);
  }
#else
  (void)gpu;
  if (device == "auto") return cpu_backend(compute);
  if (device == "cuda")
    fail("--device cuda", "this executable was built without the CUDA backend",
         "build the GPU executables with `make cuda` and run build/cuda/" + std::string("duo-train (or duo-eval, ...)"));
#endif
  fail("--device", "unknown device '" + device + "'", "use auto, cpu or cuda");
}

Processes start_processes(const std::string& device, int threads, const std::string& compute) {
  Processes p;
  // mpirun (or srun with PMIx) makes an MPI world; DUO_INIT_FILE without MPI is srun's plain launch, whose ranks
  // NCCL joins through the shared file; anything else is one process.
  const std::optional<SharedFileLaunch> file_launch =
      launched_by_mpi() ? std::nullopt : shared_file_launch_from_env();
  if (launched_by_mpi()) p.launch = make_mpi_comm();
  else if (!file_launch) p.launch = std::make_unique<SingleComm>();
  const int rank = p.launch ? p.launch->rank() : file_launch->rank;
  if (rank != 0 && !std::freopen("/dev/null", "w", stdout))
    fail("rank " + std::to_string(rank), "cannot silence its standard output", "check /dev/null");
  p.ops = make_backend(device, threads, compute, file_launch ? file_launch->local_rank : mpi_local_rank());
  DUO_CHECK(!file_launch || p.ops->device() == Device::CUDA, "DUO_INIT_FILE",
            "a launch without MPI joins its ranks through NCCL, which carries GPU buffers, and this run is on the CPU",
            "launch the CPU backend's ranks with mpirun or srun --mpi=pmix (Open MPI), or unset DUO_INIT_FILE");
  const bool always = nccl_always(*p.ops);
#if defined(DUO_WITH_CUDA)
  if (file_launch) p.gpu = make_nccl_comm_shared_file(*file_launch, *p.ops);
  else if (p.ops->device() == Device::CUDA && (p.launch->size() > 1 || always))
    p.gpu = make_nccl_comm(*p.launch, *p.ops);
#else
  (void)always;  // a CPU run: nccl_always has refused it, and the check above a shared-file launch
#endif
  return p;
}

}  // namespace duo
