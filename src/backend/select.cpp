#include "backend/select.h"
#include "backend/cpu/cpu_ops.h"
#include "core/error.h"

namespace duo {

std::unique_ptr<Ops> make_backend(const std::string& device) {
  if (device == "cpu" || device == "auto") return std::make_unique<CpuOps>();
  if (device == "cuda")
    fail("--device cuda", "this executable was built without the CUDA backend",
         "use --device cpu (or auto); the CUDA kernels are built and tested with `make cuda` and the emulator, "
         "and are not yet wired into the executables");
  fail("--device", "unknown device '" + device + "'", "use auto, cpu or cuda");
}

}  // namespace duo
