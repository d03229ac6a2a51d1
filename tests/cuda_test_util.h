// Helpers of the CUDA backend tests: device copies of host vectors through CudaOps, error
// measures, bf16 rounding for the GEMM references, and the emulator's schedule switch for determinism checks.
//
// Tolerances (max |got - want| / max |want|, and no NaN/Inf where the reference has none):
//   kF32Tol   fp32 kernels vs the fp32 CPU backend: only summation order differs
//   kF32LongRowTol  the same for losses summed over long rows (hundreds of terms, with cancellation in a KL):
//                   the CPU adds sequentially, a block by a tree, each off the exact sum by ~√V ulps
//   kBf16Same bf16 GEMM ops vs the CPU backend fed the same bf16-rounded inputs: fp32 accumulation order
//   kBf16Tol  bf16 GEMM ops vs the fp32 CPU backend: the inputs' bf16 rounding (2^-9 relative, partly averaging out)
//
// The same test sources build two ways: with the host compiler against the SIMT emulator (suite cuda_emu, part
// of `make test`), and with nvcc against the real runtime and cuBLASLt (suite cuda_gpu, `make test-cuda`, needs
// a GPU). Emulator-only checks (thread schedules) sit behind DUO_CUDA_EMU.
#pragma once
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/philox.h"
#include "core/tensor.h"
#include "cuda_ops.h"
#include "runtime.cuh"  // defines DUO_CUDA_EMU under the host compiler

#if defined(DUO_CUDA_EMU)
#include "emu_test_util.h"  // ScopedEmuConfig: thread schedules for the determinism checks
#define DUO_CUDA_SUITE cuda_emu
#else
#define DUO_CUDA_SUITE cuda_gpu
#endif

namespace duo::test {

constexpr double kF32Tol = 1e-6;
constexpr double kF32LongRowTol = 1e-5;
constexpr double kBf16Same = 1e-5;
constexpr double kBf16Tol = 1e-2;

// Owns device copies of host vectors; everything is released when it goes out of scope.
class DeviceBuffers {
 public:
  explicit DeviceBuffers(Ops& ops) : ops_(ops) {}
  ~DeviceBuffers() {
    for (void* p : held_) ops_.release(p);
  }
  DeviceBuffers(const DeviceBuffers&) = delete;
  DeviceBuffers& operator=(const DeviceBuffers&) = delete;

  template <class T>
  Tensor up(const std::vector<T>& v, std::initializer_list<int64_t> dims) {
    Tensor t(ops_.alloc(v.size() * sizeof(T)), dtype_of<T>(), dims, ops_.device());
    held_.push_back(t.data);
    BOOST_REQUIRE_EQUAL(t.numel(), (int64_t)v.size());
    ops_.from_host(t, v.data());
    return t;
  }
  // A zero-filled device tensor.
  Tensor zeros(DType dt, std::initializer_list<int64_t> dims) {
    Tensor t(nullptr, dt, dims, ops_.device());
    t.data = ops_.alloc(t.nbytes());
    held_.push_back(t.data);
    return t;
  }
  template <class T>
  std::vector<T> down(const Tensor& t) {
    std::vector<T> v((size_t)t.numel());
    ops_.to_host(v.data(), t);
    return v;
  }
  // Floats in F32, or rounded to BF16 (to nearest, ties to even: the GPU's __float2bfloat16_rn) on the way up.
  Tensor up_as(DType dt, const std::vector<float>& v, std::initializer_list<int64_t> dims) {
    if (dt == DType::F32) return up(v, dims);
    BOOST_REQUIRE(dt == DType::BF16);
    std::vector<uint16_t> bits(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      uint32_t w;
      std::memcpy(&w, &v[i], 4);
      bits[i] = uint16_t((w + 0x7fffu + ((w >> 16) & 1u)) >> 16);
    }
    Tensor t(ops_.alloc(bits.size() * 2), DType::BF16, dims, ops_.device());
    held_.push_back(t.data);
    BOOST_REQUIRE_EQUAL(t.numel(), (int64_t)bits.size());
    ops_.from_host(t, bits.data());
    return t;
  }
  // An F32 or BF16 tensor's values as floats (bf16 widened exactly).
  std::vector<float> down_as_float(const Tensor& t) {
    if (t.dtype == DType::F32) return down<float>(t);
    BOOST_REQUIRE(t.dtype == DType::BF16);
    std::vector<uint16_t> h((size_t)t.numel());
    ops_.to_host(h.data(), t);
    std::vector<float> v(h.size());
    for (size_t i = 0; i < h.size(); ++i) {
      const uint32_t w = uint32_t(h[i]) << 16;
      std::memcpy(&v[i], &w, 4);
    }
    return v;
  }

 private:
  Ops& ops_;
  std::vector<void*> held_;
};

// A tensor view of a host vector that also binds to the Tensor& outputs of an op (the CPU reference's
// arguments are written inline: b.cpu.silu(hv(out, {n}), hv(x, {n}))).
struct HostView {
  Tensor t;
  operator Tensor&() { return t; }  // NOLINT: implicit on purpose
};
template <class T>
HostView hv(std::vector<T>& v, std::initializer_list<int64_t> dims) {
  Tensor t(v.data(), dtype_of<T>(), dims);
  BOOST_REQUIRE_EQUAL(t.numel(), (int64_t)v.size());
  return {t};
}

// n floats uniform in [lo, hi), replayable from the seed.
inline std::vector<float> rand_f(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  Philox rng{seed, 7};
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * (float)rng.uniform_double(i);
  return v;
}
inline std::vector<int32_t> rand_ids(size_t n, uint64_t seed, int V) {
  Philox rng{seed, 9};
  std::vector<int32_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = (int32_t)(rng.bits(i) % (uint32_t)V);
  return v;
}

// Round to the nearest bf16 (ties to even), kept as float: the GEMM inputs the GPU sees.
inline float bf16_round(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFFu + ((u >> 16) & 1u);
  u &= 0xFFFF0000u;
  std::memcpy(&f, &u, 4);
  return f;
}
inline std::vector<float> bf16_round(std::vector<float> v) {
  for (float& x : v) x = bf16_round(x);
  return v;
}

// max |got - want| / max |want| (0 when both are zero), with every value finite.
template <class T>
double max_rel_err(const std::vector<T>& got, const std::vector<T>& want) {
  BOOST_REQUIRE_EQUAL(got.size(), want.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite((double)got[i]) && std::isfinite((double)want[i])) return INFINITY;
    diff = std::max(diff, std::abs((double)got[i] - (double)want[i]));
    scale = std::max(scale, std::abs((double)want[i]));
  }
  return scale == 0 ? diff : diff / scale;
}

#define DUO_CHECK_CLOSE(what, got, want, tol)                                   \
  do {                                                                          \
    const double duo_err_ = ::duo::test::max_rel_err((got), (want));            \
    BOOST_TEST_INFO(what << ": max rel err " << duo_err_ << " (tol " << (tol) << ")"); \
    BOOST_TEST(duo_err_ <= (tol));                                              \
  } while (0)


}  // namespace duo::test
