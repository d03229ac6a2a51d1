// cuRAND's device API (curand_init, curand, curand4, curand_uniform, curand_uniform_double, curand_normal4 on
// curandStatePhilox4_32_10_t): <curand_kernel.h> under nvcc, the emulator's version of the same calls otherwise
// (emu/curand_kernel.h). The engine's kernels draw with core/philox.h, whose streams are cuRAND's Philox4_32_10
// word for word (tests/test_cuda_curand.cpp); this header is for code that wants cuRAND's own calls.
#pragma once
#include "runtime.cuh"

#if defined(__CUDACC__)
#include <curand_kernel.h>
#else
#include "emu/curand_kernel.h"
#endif
