// The tanh-GELU of the MLP on the device, shared by the activation kernels (kernels/activation.cu) and the
// emulated GEMM's GELU epilogue (gemm_emu.cpp); the formulas are the CPU backend's, term by term.
#pragma once
#include "runtime.cuh"

namespace duo::cuda {

// gelu(x) = 0.5 x (1 + tanh u), u = sqrt(2/pi) (x + 0.044715 x^3)
// gelu'(x) = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
struct Gelu {
  static constexpr float kC = 0.7978845608028654f, kCubic = 0.044715f, kCubic3 = float(3 * 0.044715);
  __device__ static float f(float x) {
    const float u = kC * (x + kCubic * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
  }
  __device__ static float df(float x) {
    const float u = kC * (x + kCubic * x * x * x);
    const float th = tanhf(u);
    const float du = kC * (1.0f + kCubic3 * x * x);
    return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
  }
};

}  // namespace duo::cuda
