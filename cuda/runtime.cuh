// The one header a kernel source (cuda/**/*.cu) includes. Under nvcc it is the CUDA runtime plus three
// macros; under the host compiler (DUO_CUDA_EMU, set by the Makefile and implied whenever __CUDACC__ is not)
// it maps the CUDA C++ vocabulary onto the SIMT emulator in cuda/emu/.
//
//   __global__ void scale(float* x, float a, int n) {
//     int i = blockIdx.x * blockDim.x + threadIdx.x;
//     DUO_SHARED(float, tile, 256);            // __shared__ float tile[256]   (16-byte aligned)
//     DUO_DYN_SHARED(float, dyn);              // extern __shared__ float dyn[] (the launch's smem bytes)
//     ...
//   }
//   DUO_LAUNCH(scale, grid, block, smem_bytes, stream)(x, 2.0f, n);   // scale<<<grid, block, smem, stream>>>
//   DUO_UNROLL for (int t = 0; t < 2; ++t) acc[t] ...   // #pragma unroll: a loop that indexes a register array
//                                                        // (left rolled, nvcc puts the array on the stack)
//
// A kernel template with several arguments is launched through a pointer (commas break macro arguments):
//   auto* k = my_kernel<64, 4>;  DUO_LAUNCH(k, grid, block, 0, stream)(args...);
// The emulator names a launch (traffic counts, errors) by the macro's first argument; inside a template, where that
// would read "my_kernel<T>", DUO_LAUNCH_NAMED(k, "my_kernel<float>", ...) names it (a string of static lifetime).
#pragma once
#include "core/error.h"

#if !defined(__CUDACC__) && !defined(DUO_CUDA_EMU)
#define DUO_CUDA_EMU
#endif

// T name[N] as one type, so that DUO_SHARED(float[33], tile, 32) declares float tile[32][33].
template <class T, unsigned long N>
using duo_smem_array = T[N];

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define DUO_SHARED(T, name, N) __shared__ __align__(16) duo_smem_array<T, N> name
#define DUO_DYN_SHARED(T, name)                                 \
  extern __shared__ __align__(16) unsigned char duo_dyn_smem[]; \
  T* name = reinterpret_cast<T*>(duo_dyn_smem)
#define DUO_LAUNCH(kernel, grid, block, smem, stream) kernel<<<(grid), (block), (smem), (stream)>>>
#define DUO_LAUNCH_NAMED(kernel, name, grid, block, smem, stream) kernel<<<(grid), (block), (smem), (stream)>>>
#define DUO_UNROLL _Pragma("unroll")

#else  // the SIMT emulator
#include <source_location>

#include "emu/emu.h"
#include "emu/intrinsics.h"
#include "emu/math.h"
#include "emu/runtime.h"
#include "emu/types.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define DUO_UNROLL

// The built-in index variables of the running emulated thread.
#define threadIdx (::duo::emu::cur().thread_idx)
#define blockIdx (::duo::emu::cur().block_idx)
#define blockDim (::duo::emu::cur().block_dim)
#define gridDim (::duo::emu::cur().grid_dim)

// Static shared memory: the address of a function-local tag identifies the declaration, so all threads of a
// block that execute it get the same (freshly poisoned) array; `name` is a reference to T[N] as on a GPU.
#define DUO_SHARED(T, name, N)                                                        \
  static_assert(alignof(T) <= 16, "shared arrays are 16-byte aligned");               \
  static const char duo_shared_key_##name = 0;                                        \
  duo_smem_array<T, N>& name = *static_cast<duo_smem_array<T, N>*>(                   \
      ::duo::emu::shared_static(&duo_shared_key_##name, sizeof(duo_smem_array<T, N>), \
                                ::duo::emu::Site::here("DUO_SHARED(" #name ")", std::source_location::current())))
#define DUO_DYN_SHARED(T, name) T* name = static_cast<T*>(::duo::emu::shared_dynamic())

namespace duo::emu {
template <class... P>
Launch<P...> make_launch(void (*kernel)(P...), const char* name, dim3 grid, dim3 block, size_t smem,
                         cudaStream_t stream, std::source_location at) {
  return {kernel, name, grid, block, smem, stream, at};
}
}  // namespace duo::emu
#define DUO_LAUNCH(kernel, grid, block, smem, stream) \
  ::duo::emu::make_launch(kernel, #kernel, (grid), (block), (smem), (stream), std::source_location::current())
#define DUO_LAUNCH_NAMED(kernel, name, grid, block, smem, stream) \
  ::duo::emu::make_launch(kernel, (name), (grid), (block), (smem), (stream), std::source_location::current())
#endif

// Host-side check of a runtime call: DUO_CUDA_CHECK(cudaMalloc(&p, bytes));
#define DUO_CUDA_CHECK(call)                                                                              \
  do {                                                                                                    \
    cudaError_t duo_cuda_err_ = (call);                                                                   \
    if (duo_cuda_err_ != cudaSuccess)                                                                     \
      ::duo::fail(#call, cudaGetErrorString(duo_cuda_err_),                                               \
                  "check the sizes and pointers passed; on a GPU, run under compute-sanitizer for more"); \
  } while (0)
