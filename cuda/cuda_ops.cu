// CudaOps: construction (stream, GEMM engine), device memory, fill/copy, and the one growing workspace.
#include "cuda_ops.h"

#include <cstdlib>
#include <cstring>

#include "backend/device_peak.h"
#include "backend/weight_copies.h"

#include "cuda_common.cuh"
#include "gemm.h"

namespace duo {
using namespace cuda;

namespace {

// t[i] = value over n elements (grid-stride).
template <class T>
__global__ void fill_kernel(T* t, T value, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    t[i] = value;
}

}  // namespace

CudaOps::CudaOps() {
  cudaStream_t s = nullptr;
  const cudaError_t e = cudaStreamCreate(&s);  // the first runtime call: it fails when there is no usable GPU
  DUO_CHECK(e == cudaSuccess, "CudaOps", str("cannot start the CUDA backend: ", cudaGetErrorString(e)),
            "no usable GPU: check nvidia-smi and the driver version, or run with --device cpu");
  stream_ = s;
  if (const char* g = std::getenv("DUO_CUDA_GRAPHS")) {  // 0: launch every kernel (to compare, or to profile)
    DUO_CHECK(std::strcmp(g, "0") == 0 || std::strcmp(g, "1") == 0, "DUO_CUDA_GRAPHS",
              str("'", g, "' is neither 0 nor 1"), "set DUO_CUDA_GRAPHS=0 to launch every kernel, 1 (the default) to "
              "replay recorded forwards as CUDA graphs");
    graphs_on_ = g[0] == '1';
  }
  gemm_ = std::make_unique<cuda::Gemm>();
  DUO_CU("CudaOps", cudaMalloc(&id_slots_, kIdSlots * sizeof(unsigned long long)));
  DUO_CU("CudaOps", cudaMemsetAsync(id_slots_, 0xff, kIdSlots * sizeof(unsigned long long), s));
  copies_ = std::make_unique<WeightCopies>([this](size_t n) { return alloc(n); }, [this](void* p) { release(p); });
#if !defined(DUO_CUDA_EMU)
  int dev = 0, sms = 0, clock_khz = 0, major = 0, minor = 0;
  cudaDeviceProp p{};
  if (cudaGetDevice(&dev) == cudaSuccess && cudaGetDeviceProperties(&p, dev) == cudaSuccess &&
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess &&
      cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev) == cudaSuccess &&
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess)
    peak_flops_ = bf16_peak_flops(p.name, major, minor, sms, clock_khz * 1e3).flops;
#endif
}

CudaOps::~CudaOps() {
  copies_->clear();  // through release(), while the stream lives
  cudaStreamSynchronize(as_stream(stream_));
  if (staging_)  // every copy has finished with the stream
    for (StagingRing::Fence f : staging_->take_fences()) cudaEventDestroy(static_cast<cudaEvent_t>(f));
  if (staging_host_) cudaFreeHost(staging_host_);
  if (workspace_) cudaFree(workspace_);
  cudaFree(id_slots_);
  cudaStreamDestroy(as_stream(stream_));
}

void* CudaOps::alloc(size_t bytes) {
  refuse_while_recording("alloc");
  void* p = nullptr;
  const size_t n = bytes ? bytes : 1;  // a valid, unique pointer even for zero bytes
  const cudaError_t e = cudaMalloc(&p, n);
  if (e != cudaSuccess) cudaGetLastError();  // reported here: clear it, or the next launch check reports it again
  DUO_CHECK(e == cudaSuccess, "CudaOps::alloc",
            str("cudaMalloc of ", bytes, " bytes (", double(bytes) / (1 << 20), " MiB) failed: ",
                cudaGetErrorString(e)),
            "the GPU is out of memory: use a smaller batch, model or sequence length (the start-up banner prints "
            "the memory plan)");
  DUO_CU("alloc", cudaMemsetAsync(p, 0, n, as_stream(stream_)));
  copies_->written(p, n);  // memory that held frozen weights once
  return p;
}

void CudaOps::release(void* p) {
  refuse_while_recording("release");
  wait_for_stream("release", false);  // no kernel may still use it
  DUO_CU("release", cudaFree(p));
  ++epoch_;  // a recording may use it
  copies_->released(p);
}

void CudaOps::begin_frozen_weights(const void* weights, size_t bytes) {
  if (weight_copies_on_) copies_->begin(weights, bytes);
}
void CudaOps::end_frozen_weights(const void* weights) {
  if (weight_copies_on_) copies_->end(weights);
}
size_t CudaOps::weight_copy_bytes() const { return copies_->bytes(); }

void CudaOps::to_host(void* dst, const Tensor& src) {
  refuse_while_recording("to_host");
  check_on_device("to_host", src);
  DUO_CHECK(src.is_contiguous(), "CudaOps::to_host", str("source ", src.shape_str(), " is not contiguous"), "");
  if (!src.nbytes()) return;
  DUO_CU("to_host", cudaMemcpyAsync(dst, src.data, src.nbytes(), cudaMemcpyDeviceToHost, as_stream(stream_)));
  wait_for_stream("to_host");  // the id checks of the step so far come back with it
}

void CudaOps::from_host(Tensor& dst, const void* src) {
  refuse_while_recording("from_host");
  check_on_device("from_host", dst);
  DUO_CHECK(dst.is_contiguous(), "CudaOps::from_host", str("destination ", dst.shape_str(), " is not contiguous"),
            "");
  if (!dst.nbytes()) return;
  copies_->written(dst.data, dst.nbytes());
  // The caller may free or reuse the host buffer as soon as this returns: the bytes go to the staging ring first
  // (the device copies them from there in stream order, the host goes on), or, too large for it, are copied
  // before this returns.
  const size_t n = dst.nbytes();
  cudaStream_t s = as_stream(stream_);
  if (staging_ready() && staging_->takes(n)) {
    cudaEvent_t done = static_cast<cudaEvent_t>(staging_->reusable_fence());
    if (!done) DUO_CU("from_host", cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    char* staged = static_cast<char*>(staging_host_) + staging_->reserve(n);
    std::memcpy(staged, src, n);
    const cudaError_t copied = cudaMemcpyAsync(dst.data, staged, n, cudaMemcpyHostToDevice, s);
    const cudaError_t recorded = copied == cudaSuccess ? cudaEventRecord(done, s) : copied;
    staging_->issued(done);  // booked even on failure: the ring stays consistent for the error's unwinding
    DUO_CU("from_host", copied);
    DUO_CU("from_host", recorded);
    return;
  }
  DUO_CU("from_host", cudaMemcpyAsync(dst.data, src, n, cudaMemcpyHostToDevice, s));
  wait_for_stream("from_host");
}

bool CudaOps::staging_ready() {
  if (staging_) return true;
  if (staging_failed_) return false;
  if (cudaMallocHost(&staging_host_, kStagingBytes) != cudaSuccess) {
    cudaGetLastError();  // not an error of the run: uploads stay synchronous
    staging_host_ = nullptr;
    staging_failed_ = true;
    return false;
  }
  staging_ = std::make_unique<StagingRing>(kStagingBytes, [this](StagingRing::Fence f) {
    DUO_CU("from_host", cudaEventSynchronize(static_cast<cudaEvent_t>(f)));
    ++host_waits_;
  });
  return true;
}

void CudaOps::wait_for_stream(const char* op, bool read_id_checks) {
  refuse_while_recording(op);
  const bool ids = read_id_checks && !id_checks_.empty();
  if (ids) queue_id_readback();  // the same wait brings the id checks' slots back
  DUO_CU(op, cudaStreamSynchronize(as_stream(stream_)));
  ++host_waits_;
  if (ids) report_id_readback();
}

void CudaOps::do_fill(Tensor& t, double value) {
  check_on_device("fill", t);
  DUO_CHECK(t.is_contiguous(), "CudaOps::fill", str("tensor ", t.shape_str(), " is not contiguous"), "");
  const int64_t n = t.numel();
  if (n == 0) return;
  cudaStream_t s = as_stream(stream_);
  switch (t.dtype) {
    case DType::F32: DUO_LAUNCH(fill_kernel<float>, blocks_for(n), kThreads, 0, s)(fptr(t), float(value), n); break;
    case DType::F64:
      DUO_LAUNCH(fill_kernel<double>, blocks_for(n), kThreads, 0, s)(static_cast<double*>(t.data), value, n);
      break;
    case DType::I32:
      DUO_LAUNCH(fill_kernel<int32_t>, blocks_for(n), kThreads, 0, s)(static_cast<int32_t*>(t.data),
                                                                      int32_t(value), n);
      break;
    default:
      fail("CudaOps::fill", str("unsupported dtype ", dtype_name(t.dtype)), "fill takes F32, F64 or I32 tensors");
  }
  DUO_CU_LAUNCHED("fill");
}

void CudaOps::do_copy(Tensor& dst, const Tensor& src) {
  DUO_CHECK(dst.dtype == src.dtype && dst.numel() == src.numel(), "CudaOps::copy",
            str("cannot copy ", dtype_name(src.dtype), src.shape_str(), " into ", dtype_name(dst.dtype),
                dst.shape_str()),
            "source and destination need the same dtype and element count");
  check_on_device("copy", dst);
  check_on_device("copy", src);
  DUO_CHECK(dst.is_contiguous() && src.is_contiguous(), "CudaOps::copy", "tensors must be contiguous", "");
  if (src.nbytes())
    DUO_CU("copy", cudaMemcpyAsync(dst.data, src.data, src.nbytes(), cudaMemcpyDeviceToDevice, as_stream(stream_)));
}

size_t CudaOps::memory_in_use() const {
#if defined(DUO_CUDA_EMU)
  return emu::device().memory().in_use();
#else
  size_t free_bytes = 0, total = 0;
  return cudaMemGetInfo(&free_bytes, &total) == cudaSuccess ? total - free_bytes : 0;
#endif
}

void CudaOps::sync() {
  wait_for_stream("sync");
}

void* CudaOps::workspace(size_t bytes) {
  if (bytes <= workspace_bytes_) return workspace_;
  refuse_while_recording("workspace");
  ++epoch_;  // the recordings that use the old scratch are stale
  const size_t grown = bytes + bytes / 2;  // headroom: shapes grow a little between calls (the last batch)
  wait_for_stream("workspace", false);
  if (workspace_) DUO_CU("workspace", cudaFree(workspace_));
  workspace_ = nullptr;
  workspace_bytes_ = 0;
  const cudaError_t e = cudaMalloc(&workspace_, grown);
  if (e != cudaSuccess) cudaGetLastError();  // as in alloc
  DUO_CHECK(e == cudaSuccess, "CudaOps::workspace",
            str("cudaMalloc of ", grown, " bytes of scratch failed: ", cudaGetErrorString(e)),
            "the GPU is out of memory: use a smaller batch or sequence length");
  workspace_bytes_ = grown;
  return workspace_;
}

}  // namespace duo
