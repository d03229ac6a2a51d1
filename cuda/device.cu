#include "device.h"
#include <cstdio>
#include "cuda_ops.h"
#include "runtime.cuh"

namespace duo {

std::unique_ptr<Ops> make_cuda_backend(bool required, int gpu) {
#if defined(DUO_CUDA_EMU)
  (void)required;
  (void)gpu;
  return std::make_unique<CudaOps>();  // the SIMT emulator's device
#else
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    if (!required) return nullptr;
    fail("--device cuda", str("no CUDA device answers (", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices", ")"),
         "check the driver with nvidia-smi, or run with --device cpu");
  }
  DUO_CHECK(gpu < n, "--device cuda", str("this process is local rank ", gpu, " but the machine has ", n, " GPUs"),
            "start at most one process per GPU on each machine (mpirun -np / srun --ntasks-per-node)");
  const cudaError_t set = cudaSetDevice(gpu);
  DUO_CHECK(set == cudaSuccess, "--device cuda", str("cannot select GPU ", gpu, ": ", cudaGetErrorString(set)),
            "check the driver with nvidia-smi");
  cudaDeviceProp p{};
  cudaGetDeviceProperties(&p, gpu);
  if (p.major < 8)
    fail("--device cuda", str(p.name, " has compute capability ", p.major, ".", p.minor, ", which this build does not target"),
         "duo.cu's kernels need sm_80 or newer (bf16 tensor cores); build for your GPU with GPU_ARCH=... make cuda "
         "only if it is sm_80+, else use --device cpu");
  std::printf("device: %s (sm_%d%d, %.1f GiB)\n", p.name, p.major, p.minor, p.totalGlobalMem / 1073741824.0);
  return std::make_unique<CudaOps>();
#endif
}

}  // namespace duo
