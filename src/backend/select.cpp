#include "backend/select.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/gemm_bf16.h"
#include "backend/cpu/process_setup.h"
#include "core/error.h"
#if defined(DUO_WITH_CUDA)
#include "device.h"  // cuda/device.h: only in the executables `make cuda` links against the CUDA backend
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
std::unique_ptr<Ops> gpu_backend(bool required, const std::string& compute) {
  auto gpu = make_cuda_backend(required);
  DUO_CHECK(!gpu || compute != "fp32", "--compute fp32",
            "the CUDA backend's dense layers run on bf16 tensor cores (with fp32 sums); it has no fp32 GEMM mode",
            "leave --compute at auto (or bf16) on a GPU, or run on the CPU with --device cpu");
  return gpu;
}
#endif

}  // namespace

std::unique_ptr<Ops> make_backend(const std::string& device, int threads, const std::string& compute) {
  DUO_CHECK(compute == "auto" || compute == "fp32" || compute == "bf16", "--compute",
            "unknown precision '" + compute + "'", "use auto, fp32 or bf16");
  cpu::set_threads(threads, "--threads");
  if (device == "cpu") return cpu_backend(compute);
#if defined(DUO_WITH_CUDA)
  if (device == "cuda") return gpu_backend(/*required=*/true, compute);
  if (device == "auto") {
    if (auto gpu = gpu_backend(/*required=*/false, compute)) return gpu;
    return cpu_backend(compute);
  }
#else
  if (device == "auto") return cpu_backend(compute);
  if (device == "cuda")
    fail("--device cuda", "this executable was built without the CUDA backend",
         "build the GPU executables with `make cuda` and run build/cuda/" + std::string("duo-train (or duo-eval, ...)"));
#endif
  fail("--device", "unknown device '" + device + "'", "use auto, cpu or cuda");
}

}  // namespace duo
