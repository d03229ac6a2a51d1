// Tensor: a non-owning view of memory (dtype, shape, element strides, device, pointer).
// Memory is owned elsewhere (an Arena, a parameter buffer, a mapped file); a Tensor is cheap to copy.
// Shapes are written outermost first, as in PyTorch: a (B, L, D) activation has shape {B, L, D}.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include "core/dtype.h"
#include "core/error.h"

namespace duo {

struct Tensor {
  static constexpr int kMaxDims = 4;
  void* data = nullptr;
  DType dtype = DType::F32;
  Device device = Device::CPU;
  int ndim = 0;
  int64_t shape[kMaxDims] = {1, 1, 1, 1};
  int64_t stride[kMaxDims] = {1, 1, 1, 1};  // in elements

  Tensor() = default;
  Tensor(void* p, DType t, std::initializer_list<int64_t> dims, Device dev = Device::CPU)
      : data(p), dtype(t), device(dev) {
    DUO_ASSERT(dims.size() <= (size_t)kMaxDims);
    ndim = (int)dims.size();
    int i = 0;
    for (int64_t d : dims) shape[i++] = d;
    set_contiguous_strides();
  }

  void set_contiguous_strides() {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; --i) { stride[i] = s; s *= shape[i]; }
  }
  bool empty() const { return data == nullptr; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  size_t nbytes() const { return (size_t)numel() * dtype_size(dtype); }
  int64_t dim(int i) const { return shape[i < 0 ? ndim + i : i]; }
  bool is_contiguous() const {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; --i) {
      if (shape[i] != 1 && stride[i] != s) return false;
      s *= shape[i];
    }
    return true;
  }
  // Typed pointer; checks the dtype so a float64 test never reads float32 memory by accident.
  template <class T> T* ptr() const {
    DUO_ASSERT(dtype == dtype_of<T>());
    return static_cast<T*>(data);
  }
  // Same memory, new shape (must be contiguous and have the same element count).
  Tensor view(std::initializer_list<int64_t> dims) const {
    DUO_ASSERT(is_contiguous());
    Tensor t(data, dtype, dims, device);
    DUO_ASSERT(t.numel() == numel());
    return t;
  }
  // Columns [begin, begin+count) of a 2-D tensor: keeps the row stride (used to split adaLN's (B, 6D) output).
  Tensor cols(int64_t begin, int64_t count) const {
    DUO_ASSERT(ndim == 2 && begin >= 0 && begin + count <= shape[1]);
    Tensor t = *this;
    t.data = static_cast<char*>(data) + (size_t)begin * stride[1] * dtype_size(dtype);
    t.shape[1] = count;
    return t;
  }
  // Rows [begin, begin+count) along the first axis.
  Tensor rows(int64_t begin, int64_t count) const {
    DUO_ASSERT(ndim >= 1 && begin >= 0 && begin + count <= shape[0]);
    Tensor t = *this;
    t.data = static_cast<char*>(data) + (size_t)begin * stride[0] * dtype_size(dtype);
    t.shape[0] = count;
    return t;
  }
  std::string shape_str() const {
    std::string s = "(";
    for (int i = 0; i < ndim; ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + ")";
  }
};

}  // namespace duo
