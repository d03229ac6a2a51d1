// Choosing the GPU: the CUDA side of --device (src/backend/select.cpp calls it in builds made by `make cuda`).
#pragma once
#include <memory>
#include "backend/ops.h"

namespace duo {

// A CudaOps on device `gpu` (the local rank of a multi-process run, else 0) after checking that a GPU answers and that its compute capability is one this build
// targets (8.0 or newer). required = false (--device auto): returns null instead of failing when no GPU answers.
// Prints the device name and memory. Under the emulator (tests), the emulated device.
std::unique_ptr<Ops> make_cuda_backend(bool required, int gpu = 0);

}  // namespace duo
