// The CUDA runtime API subset that host-side launcher code uses, implemented on host memory, and the
// kernel launch. With these, one launcher source compiles with nvcc and with the emulator.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <source_location>
#include <tuple>
#include <type_traits>

#include "emu/capture.h"
#include "emu/emu.h"

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureImplicit = 906,
  cudaErrorIllegalState = 401
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
// Streams are in order and their work runs as it is issued, except while a stream captures (capture.h).
struct CUstream_st : ::duo::emu::Stream {};
using cudaStream_t = CUstream_st*;

inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit:
      return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
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
// A "potentially unsafe" call (a wait, an allocation, a synchronous copy) while this thread captures a stream: refused,
// and the captures invalidated, as on a GPU (capture.h). cudaSuccess when the thread captures nothing.
inline cudaError_t duo_emu_refused_in_capture() {
  if (!::duo::emu::thread_captures_any()) return cudaSuccess;
  ::duo::emu::invalidate_thread_captures();
  return duo_emu_result(cudaErrorStreamCaptureUnsupported);
}
inline cudaError_t cudaDeviceSynchronize() { return duo_emu_refused_in_capture(); }

inline cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = nullptr;
  if (cudaError_t e = duo_emu_refused_in_capture()) return e;
  *p = ::duo::emu::device().alloc(bytes);
  return duo_emu_result(*p ? cudaSuccess : cudaErrorMemoryAllocation);
}
template <class T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
inline cudaError_t cudaFree(void* p) {
  if (cudaError_t e = duo_emu_refused_in_capture()) return e;
  return duo_emu_result(!p || ::duo::emu::device().free(p) ? cudaSuccess : cudaErrorInvalidValue);
}
// The kind must match where the pointers are (on a GPU a mismatch is undefined behaviour): device pointers lie
// inside one live allocation, host pointers outside device memory. cudaMemcpyDefault takes either.
inline bool duo_emu_copy_kind_ok(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
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
  return ok;
}
inline void duo_emu_copy_now(void* dst, const void* src, size_t n) {
  ::duo::emu::HostAccess access(::duo::emu::device().memory(), "cudaMemcpy");
  std::memmove(dst, src, n);
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  if (cudaError_t e = duo_emu_refused_in_capture()) return e;
  if (!n) return cudaSuccess;
  if (!duo_emu_copy_kind_ok(dst, src, n, kind)) return duo_emu_result(cudaErrorInvalidValue);
  duo_emu_copy_now(dst, src, n);
  return cudaSuccess;
}
// Issued in stream order. A capturing stream records the copy (the bytes move at each graph launch); its host side,
// if any, must be page-locked (cudaMallocHost), as a GPU requires.
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t s = nullptr) {
  if (!n) return cudaSuccess;
  if (!duo_emu_copy_kind_ok(dst, src, n, kind)) return duo_emu_result(cudaErrorInvalidValue);
  if (s && s->capture) {
    ::duo::emu::DeviceMemory& mem = ::duo::emu::device().memory();
    for (const void* p : {static_cast<const void*>(dst), src})
      if (!mem.in_region(p) && !::duo::emu::pinned(p, n)) {
        s->invalidated = true;
        return duo_emu_result(cudaErrorStreamCaptureUnsupported);
      }
  }
  if (::duo::emu::enqueue(s, [=] { duo_emu_copy_now(dst, src, n); }) == ::duo::emu::Enqueued::Implicit)
    return duo_emu_result(cudaErrorStreamCaptureImplicit);
  return cudaSuccess;
}
inline void duo_emu_set_now(void* p, int v, size_t n) {
  ::duo::emu::HostAccess access(::duo::emu::device().memory(), "cudaMemset");
  std::memset(p, v, n);
}
inline cudaError_t cudaMemset(void* p, int v, size_t n) {
  if (cudaError_t e = duo_emu_refused_in_capture()) return e;
  if (!n) return cudaSuccess;
  if (!::duo::emu::device().memory().holds(p, n)) return duo_emu_result(cudaErrorInvalidValue);
  duo_emu_set_now(p, v, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t s = nullptr) {
  if (!n) return cudaSuccess;
  if (!::duo::emu::device().memory().holds(p, n)) return duo_emu_result(cudaErrorInvalidValue);
  if (::duo::emu::enqueue(s, [=] { duo_emu_set_now(p, v, n); }) == ::duo::emu::Enqueued::Implicit)
    return duo_emu_result(cudaErrorStreamCaptureImplicit);
  return cudaSuccess;
}

inline cudaError_t cudaStreamCreate(cudaStream_t* s) {
  *s = new CUstream_st;
  return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return duo_emu_refused_in_capture(); }

// Page-locked host memory: ordinary host memory here (outside the device region, so copies check it as host), booked
// as pinned for the capture rules.
inline cudaError_t cudaMallocHost(void** p, size_t bytes) {
  *p = nullptr;
  if (cudaError_t e = duo_emu_refused_in_capture()) return e;
  *p = std::malloc(bytes ? bytes : 1);
  if (*p) ::duo::emu::pin(*p, bytes ? bytes : 1);
  return duo_emu_result(*p ? cudaSuccess : cudaErrorMemoryAllocation);
}
inline cudaError_t cudaFreeHost(void* p) {
  if (cudaError_t e = duo_emu_refused_in_capture()) return e;
  ::duo::emu::unpin(p);
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
inline cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  if (cudaError_t r = duo_emu_refused_in_capture()) return r;
  return duo_emu_result(e ? cudaSuccess : cudaErrorInvalidValue);
}

// CUDA graphs by stream capture (capture.h): between begin and end, the stream's work is recorded, not run; a graph
// launch runs what was recorded, in order, with the arguments it was recorded with.
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal = 0, cudaStreamCaptureModeThreadLocal = 1,
                             cudaStreamCaptureModeRelaxed = 2 };
enum cudaStreamCaptureStatus { cudaStreamCaptureStatusNone = 0, cudaStreamCaptureStatusActive = 1,
                               cudaStreamCaptureStatusInvalidated = 2 };
struct CUgraph_st : ::duo::emu::Recording {};
struct CUgraphExec_st : ::duo::emu::Recording {};
using cudaGraph_t = CUgraph_st*;
using cudaGraphExec_t = CUgraphExec_st*;

inline cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
  if (!s) return duo_emu_result(cudaErrorStreamCaptureUnsupported);  // the legacy stream cannot capture
  if (s->capture) return duo_emu_result(cudaErrorIllegalState);
  s->capture = std::make_unique<::duo::emu::Recording>();
  s->invalidated = false;
  if (mode != cudaStreamCaptureModeRelaxed) ::duo::emu::thread_captures().push_back(s);
  return cudaSuccess;
}
// Ends s's capture: the graph of its work, or (null graph) cudaErrorStreamCaptureInvalidated after an unsafe call.
inline cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph) {
  *graph = nullptr;
  if (!s || !s->capture) return duo_emu_result(cudaErrorIllegalState);
  auto& mine = ::duo::emu::thread_captures();
  const auto at = std::find(mine.begin(), mine.end(), static_cast<::duo::emu::Stream*>(s));
  if (at != mine.end()) mine.erase(at);
  const std::unique_ptr<::duo::emu::Recording> r = std::move(s->capture);
  if (s->invalidated) return duo_emu_result(cudaErrorStreamCaptureInvalidated);
  *graph = new CUgraph_st;
  (*graph)->work = std::move(r->work);
  return cudaSuccess;
}
inline cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status) {
  *status = !s || !s->capture ? cudaStreamCaptureStatusNone
            : s->invalidated  ? cudaStreamCaptureStatusInvalidated
                              : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}
inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long = 0) {
  *exec = nullptr;
  if (!graph) return duo_emu_result(cudaErrorInvalidValue);
  *exec = new CUgraphExec_st;
  (*exec)->work = graph->work;
  return cudaSuccess;
}
inline cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
  if (!exec) return duo_emu_result(cudaErrorInvalidValue);
  const auto run = [work = exec->work] {
    for (const ::duo::emu::Work& w : work) w();
  };
  if (::duo::emu::enqueue(s, run) == ::duo::emu::Enqueued::Implicit) return duo_emu_result(cudaErrorStreamCaptureImplicit);
  return cudaSuccess;
}
inline cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

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
  cudaStream_t stream;
  std::source_location at;

  // Runs the kernel now, or records it with its arguments when the stream captures (capture.h); work on the null
  // stream while this thread captures fails as on a GPU (cudaErrorStreamCaptureImplicit, for the launch check).
  template <class... A>
  void operator()(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(P), "DUO_LAUNCH: wrong number of kernel arguments");
    std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
    check_pointer_arguments(params, std::index_sequence_for<P...>{});
    auto run = [k = kernel, n = name, g = grid, b = block, sm = smem, where = at, params] {
      std::function<void()> body = [&] { std::apply(k, params); };
      device().launch(reinterpret_cast<const void*>(k), n, g, b, sm, body, where);
    };
    if (enqueue(stream, std::move(run)) == Enqueued::Implicit) duo_emu_result(cudaErrorStreamCaptureImplicit);
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
