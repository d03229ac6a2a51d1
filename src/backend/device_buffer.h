// One buffer of a backend's memory (Ops::alloc), released with its owner: a member holding it is freed even when
// the owner's constructor throws after allocating.
#pragma once
#include <cstddef>
#include <utility>
#include "backend/ops.h"

namespace duo {

struct DeviceBuffer {
  Ops* ops = nullptr;
  void* ptr = nullptr;

  DeviceBuffer() = default;
  DeviceBuffer(Ops& o, size_t bytes) : ops(&o), ptr(o.alloc(bytes)) {}
  DeviceBuffer(DeviceBuffer&& b) noexcept : ops(b.ops), ptr(std::exchange(b.ptr, nullptr)) {}
  DeviceBuffer& operator=(DeviceBuffer&& b) noexcept {
    std::swap(ops, b.ops);
    std::swap(ptr, b.ptr);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr) ops->release(ptr);
  }
};

}  // namespace duo
