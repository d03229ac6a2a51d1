// Helpers of the tests that drive the SIMT emulator directly (suite cuda_emu): scoped emulator settings, the
// message of an expected duo::Error, and test data in device memory.
#pragma once
#include <algorithm>
#include <string>
#include <vector>

#include "error_util.h"
#include "runtime.cuh"

namespace duo::testing {

// Sets emulator options for one scope and restores them afterwards:
//   ScopedEmuConfig cfg;  cfg->schedule = duo::emu::Schedule::Reverse;  cfg->threads = 2;
struct ScopedEmuConfig {
  duo::emu::Config saved = duo::emu::device().config();
  ScopedEmuConfig() = default;
  ScopedEmuConfig(const ScopedEmuConfig&) = delete;
  ScopedEmuConfig& operator=(const ScopedEmuConfig&) = delete;
  ~ScopedEmuConfig() { duo::emu::device().config() = saved; }
  duo::emu::Config* operator->() { return &duo::emu::device().config(); }
};

// Test data in emulated device memory (kernels may not read host memory, as on a GPU): cudaMalloc'd and filled
// from a host vector or one value, passed to DUO_LAUNCH as a T*, read back with host(), freed with the scope.
template <class T>
class DeviceVec {
 public:
  explicit DeviceVec(const std::vector<T>& v) : n_(v.size()) {
    DUO_CUDA_CHECK(cudaMalloc(&p_, std::max<size_t>(n_, 1) * sizeof(T)));
    if (n_) DUO_CUDA_CHECK(cudaMemcpy(p_, v.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  DeviceVec(size_t n, T value) : DeviceVec(std::vector<T>(n, value)) {}
  ~DeviceVec() { cudaFree(p_); }
  DeviceVec(const DeviceVec&) = delete;
  DeviceVec& operator=(const DeviceVec&) = delete;
  operator T*() const { return p_; }  // NOLINT: implicit on purpose, for kernel arguments
  std::vector<T> host() const {
    std::vector<T> v(n_);
    if (n_) DUO_CUDA_CHECK(cudaMemcpy(v.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }

 private:
  T* p_ = nullptr;
  size_t n_;
};

}  // namespace duo::testing
