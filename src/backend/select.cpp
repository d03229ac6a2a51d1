#include "backend/select.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/process_setup.h"
#include "core/error.h"
#if defined(DUO_WITH_CUDA)
#include "device.h"  // cuda/device.h: only in the executables `make cuda` links against the CUDA backend
#endif

namespace duo {

std::unique_ptr<Ops> make_backend(const std::string& device, int threads) {
  cpu::set_threads(threads, "--threads");
  if (device == "cpu") return std::make_unique<CpuOps>();
#if defined(DUO_WITH_CUDA)
  if (device == "cuda") return make_cuda_backend(/*required=*/true);
  if (device == "auto") {
    if (auto gpu = make_cuda_backend(/*required=*/false)) return gpu;
    return std::make_unique<CpuOps>();
  }
#else
  if (device == "auto") return std::make_unique<CpuOps>();
  if (device == "cuda")
    fail("--device cuda", "this executable was built without the CUDA backend",
         "build the GPU executables with `make cuda` and run build/cuda/" + std::string("duo-train (or duo-eval, ...)"));
#endif
  fail("--device", "unknown device '" + device + "'", "use auto, cpu or cuda");
}

}  // namespace duo
