// Host memory: aligned zero-filled allocations and plain copies.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"

namespace duo {
using namespace cpu;

void* CpuOps::alloc(size_t bytes) {
  constexpr size_t kAlign = 64;  // a cache line: enough for any SIMD load
  size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  if (rounded == 0) rounded = kAlign;  // a valid, unique pointer even for zero bytes
  void* p = std::aligned_alloc(kAlign, rounded);
  DUO_CHECK(p != nullptr, "CpuOps::alloc", str("out of host memory allocating ", bytes, " bytes"),
            "use a smaller batch, model or sequence length");
  std::memset(p, 0, rounded);
  return p;
}

void CpuOps::release(void* p) { std::free(p); }

size_t CpuOps::memory_in_use() const {
  // /proc/self/statm: total and resident pages (Linux); 0 where it cannot be read.
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long total = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &total, &resident);
  std::fclose(f);
  return n == 2 ? size_t(resident) * size_t(sysconf(_SC_PAGESIZE)) : 0;
}

void CpuOps::to_host(void* dst, const Tensor& src) {
  DUO_CHECK(src.is_contiguous(), "CpuOps::to_host", str("source ", src.shape_str(), " is not contiguous"), "");
  if (src.nbytes()) std::memcpy(dst, src.data, src.nbytes());
}

void CpuOps::from_host(Tensor& dst, const void* src) {
  DUO_CHECK(dst.is_contiguous(), "CpuOps::from_host", str("destination ", dst.shape_str(), " is not contiguous"), "");
  if (dst.nbytes()) std::memcpy(dst.data, src, dst.nbytes());
}

template <class T> static void fill_as(Tensor& t, double value) {
  T* p = t.ptr<T>();
  const T v = (T)value;
  const int64_t n = t.numel();
#pragma omp parallel for schedule(static) if (worth_threads(n))
  for (int64_t i = 0; i < n; ++i) p[i] = v;
}

void CpuOps::do_fill(Tensor& t, double value) {
  DUO_CHECK(t.is_contiguous(), "CpuOps::fill", str("tensor ", t.shape_str(), " is not contiguous"), "");
  switch (t.dtype) {
    case DType::F32: return fill_as<float>(t, value);
    case DType::F64: return fill_as<double>(t, value);
    case DType::I32: return fill_as<int32_t>(t, value);
    default:
      fail("CpuOps::fill", str("unsupported dtype ", dtype_name(t.dtype)), "fill takes F32, F64 or I32 tensors");
  }
}

void CpuOps::do_copy(Tensor& dst, const Tensor& src) {
  DUO_CHECK(dst.dtype == src.dtype && dst.numel() == src.numel(), "CpuOps::copy",
            str("cannot copy ", dtype_name(src.dtype), src.shape_str(), " into ", dtype_name(dst.dtype),
                dst.shape_str()),
            "source and destination need the same dtype and element count");
  DUO_CHECK(dst.is_contiguous() && src.is_contiguous(), "CpuOps::copy", "tensors must be contiguous", "");
  if (src.nbytes()) std::memmove(dst.data, src.data, src.nbytes());
}

}  // namespace duo
