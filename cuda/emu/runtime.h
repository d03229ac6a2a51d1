// The CUDA runtime API subset that host-side launcher code uses, implemented on host memory, and the
// kernel launch. With these, one launcher source compiles with nvcc and with the emulator.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <source_location>
#include <tuple>
#include <type_traits>

#include "emu/emu.h"

enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2 };
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
struct CUstream_st {};  // streams are in-order and launches synchronous here, so a stream is only a handle
using cudaStream_t = CUstream_st*;

inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
  }
  return "unknown error";
}
// CUDA's "last error": every runtime call that fails also leaves its error here, per host thread, until
// cudaGetLastError reads and clears it, so a failed cudaMalloc that nobody clears is reported by the next
// launch check (a real GPU program's classic false alarm; the emulator reproduces it). Launch errors
// themselves are thrown at the launch (a duo::Error naming the kernel).
inline cudaError_t& duo_emu_last_error() {
  thread_local cudaError_t e = cudaSuccess;
  return e;
}
inline cudaError_t duo_emu_result(cudaError_t e) {
  if (e != cudaSuccess) duo_emu_last_error() = e;
  return e;
}
inline cudaError_t cudaGetLastError() {
  const cudaError_t e = duo_emu_last_error();
  duo_emu_last_error() = cudaSuccess;
  return e;
}
inline cudaError_t cudaPeekAtLastError() { return duo_emu_last_error(); }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

inline cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = ::duo::emu::device().alloc(bytes);
  return duo_emu_result(*p ? cudaSuccess : cudaErrorMemoryAllocation);
}
template <class T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
inline cudaError_t cudaFree(void* p) {
  return duo_emu_result(!p || ::duo::emu::device().free(p) ? cudaSuccess : cudaErrorInvalidValue);
}
// The kind must match where the pointers are (on a GPU a mismatch is undefined behaviour): device pointers lie
// inside one live allocation, host pointers outside device memory. cudaMemcpyDefault takes either.
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  ::duo::emu::DeviceMemory& mem = ::duo::emu::device().memory();
  auto on_device = [&](const void* p) { return mem.holds(p, n); };
  auto on_host = [&](const void* p) { return !mem.in_region(p); };
  bool ok = true;
  switch (kind) {
    case cudaMemcpyHostToHost: ok = on_host(dst) && on_host(src); break;
    case cudaMemcpyHostToDevice: ok = on_device(dst) && on_host(src); break;
    case cudaMemcpyDeviceToHost: ok = on_host(dst) && on_device(src); break;
    case cudaMemcpyDeviceToDevice: ok = on_device(dst) && on_device(src); break;
    case cudaMemcpyDefault: ok = (on_device(dst) || on_host(dst)) && (on_device(src) || on_host(src)); break;
  }
  if (!n) return cudaSuccess;
  if (!ok) return duo_emu_result(cudaErrorInvalidValue);
  ::duo::emu::HostAccess access(mem, "cudaMemcpy");
  std::memmove(dst, src, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind k, cudaStream_t = nullptr) {
  return cudaMemcpy(dst, src, n, k);
}
inline cudaError_t cudaMemset(void* p, int v, size_t n) {
  if (!n) return cudaSuccess;
  ::duo::emu::DeviceMemory& mem = ::duo::emu::device().memory();
  if (!mem.holds(p, n)) return duo_emu_result(cudaErrorInvalidValue);
  ::duo::emu::HostAccess access(mem, "cudaMemset");
  std::memset(p, v, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t = nullptr) { return cudaMemset(p, v, n); }

inline cudaError_t cudaStreamCreate(cudaStream_t* s) {
  *s = new CUstream_st;
  return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }

// Page-locked host memory: ordinary host memory here (outside the device region, so copies check it as host).
inline cudaError_t cudaMallocHost(void** p, size_t bytes) {
  *p = std::malloc(bytes ? bytes : 1);
  return duo_emu_result(*p ? cudaSuccess : cudaErrorMemoryAllocation);
}
inline cudaError_t cudaFreeHost(void* p) {
  std::free(p);
  return cudaSuccess;
}
// Events: every copy and launch has finished when its call returns, so an event has always passed.
struct CUevent_st {};
using cudaEvent_t = CUevent_st*;
constexpr unsigned cudaEventDisableTiming = 2;
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  *e = new CUevent_st;
  return cudaSuccess;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t = nullptr) {
  return duo_emu_result(e ? cudaSuccess : cudaErrorInvalidValue);
}
inline cudaError_t cudaEventSynchronize(cudaEvent_t e) { return duo_emu_result(e ? cudaSuccess : cudaErrorInvalidValue); }

template <class... P>
cudaError_t cudaFuncSetAttribute(void (*kernel)(P...), cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0) return duo_emu_result(cudaErrorInvalidValue);
  if (size_t(value) > ::duo::emu::device().config().max_smem) return duo_emu_result(cudaErrorInvalidValue);
  ::duo::emu::device().set_max_dyn_smem(reinterpret_cast<const void*>(kernel), size_t(value));
  return cudaSuccess;
}

namespace duo::emu {

// What DUO_LAUNCH(kernel, grid, block, smem, stream) builds; calling it with the arguments launches. The
// arguments are converted to the kernel's parameter types once, as CUDA does, and every thread calls the
// kernel with its own copy of them.
template <class... P>
struct Launch {
  void (*kernel)(P...);
  const char* name;
  dim3 grid, block;
  size_t smem;
  std::source_location at;

  template <class... A>
  void operator()(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(P), "DUO_LAUNCH: wrong number of kernel arguments");
    std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
    check_pointer_arguments(params, std::index_sequence_for<P...>{});
    std::function<void()> body = [&] { std::apply(kernel, params); };
    device().launch(reinterpret_cast<const void*>(kernel), name, grid, block, smem, body, at);
  }

  // A kernel dereferencing host memory faults on a GPU; here it would quietly work. So every pointer argument
  // must be null or point into device memory (cudaMalloc).
  template <class Tuple, size_t... I>
  void check_pointer_arguments(const Tuple& params, std::index_sequence<I...>) const {
    (check_pointer(I, std::get<I>(params)), ...);
  }
  template <class T>
  void check_pointer(size_t index, const T& arg) const {
    if constexpr (std::is_pointer_v<T>) {
      if (arg != nullptr && !device().memory().in_region(arg))
        fail(str("kernel ", name, " launched at ", at.file_name(), ":", at.line()),
             str("argument ", index + 1, " is a host pointer"),
             "kernels read device memory only: allocate it with cudaMalloc (CudaOps::alloc) and copy with cudaMemcpy");
    }
  }
};

}  // namespace duo::emu
