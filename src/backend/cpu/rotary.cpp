// Rotary position embedding, rotate-half (GPT-NeoX) convention, base 10000 (docs/model.md §6).
// For head_dim hd, half = hd/2, pairs (j, j + half) of every q and k head at position l are rotated by
// angle = l * 10000^(-2j/hd):
//   out_j = x_j cos - x_{j+half} sin,   out_{j+half} = x_{j+half} cos + x_j sin
// v is copied. The backward is the rotation by -angle (the transpose).
#include <cmath>
#include "core/simd.h"
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/shape_checks.h"

namespace duo {
using namespace cpu;

using checks::RotaryShape;

static RotaryShape rotary_shape(const char* op, const Tensor& out, const Tensor& in, int n_heads) {
  check_same_dtype(op, {&out, &in});
  return checks::rotary(str("CpuOps::", op), out, in, n_heads);
}

// direction = +1: forward rotation; -1: the backward (inverse) rotation. cos_sin: (L, half, 2) table.
template <class T>
DUO_SIMD_CLONES static void rotate(Tensor& out_t, const Tensor& in_t, const double* cos_sin, RotaryShape s, int direction) {
  const int64_t half = s.hd / 2, W = 3 * s.D, N = s.B * s.L;
#pragma omp parallel for schedule(static) if (worth_threads(N * W))
  for (int64_t n = 0; n < N; ++n) {
    const int64_t l = n % s.L;
    const T* x = in_t.ptr<T>() + n * W;  // (3D) = [q | k | v] of token n
    T* y = out_t.ptr<T>() + n * W;
    for (int64_t h = 0; h < 2 * s.H; ++h) {  // the H q heads, then the H k heads
      const T* xh = x + h * s.hd;
      T* yh = y + h * s.hd;
      for (int64_t j = 0; j < half; ++j) {
        const T c = (T)cos_sin[(l * half + j) * 2], sn = (T)(direction * cos_sin[(l * half + j) * 2 + 1]);
        const T x1 = xh[j], x2 = xh[j + half];
        yh[j] = x1 * c - x2 * sn;
        yh[j + half] = x2 * c + x1 * sn;
      }
    }
    for (int64_t d = 2 * s.D; d < W; ++d) y[d] = x[d];  // v passes through
  }
}

// cos and sin of l * 10000^(-2j/hd) for l < L, j < hd/2, computed in double.
static void fill_rotary_table(double* cos_sin, int64_t L, int64_t hd) {
  const int64_t half = hd / 2;
  for (int64_t j = 0; j < half; ++j) {
    const double inv_freq = std::pow(10000.0, -2.0 * (double)j / (double)hd);
    for (int64_t l = 0; l < L; ++l) {
      cos_sin[(l * half + j) * 2] = std::cos((double)l * inv_freq);
      cos_sin[(l * half + j) * 2 + 1] = std::sin((double)l * inv_freq);
    }
  }
}

void CpuOps::do_rotary(Tensor& out, const Tensor& in, int n_heads) {
  RotaryShape s = rotary_shape("rotary", out, in, n_heads);
  double* table = scratch<double>((size_t)(s.L * s.hd));
  fill_rotary_table(table, s.L, s.hd);
  dispatch("rotary", in, [&](auto tag) { rotate<decltype(tag)>(out, in, table, s, +1); });
}

void CpuOps::do_rotary_backward(Tensor& din, const Tensor& dout, int n_heads) {
  RotaryShape s = rotary_shape("rotary_backward", din, dout, n_heads);
  double* table = scratch<double>((size_t)(s.L * s.hd));
  fill_rotary_table(table, s.L, s.hd);
  dispatch("rotary_backward", dout, [&](auto tag) { rotate<decltype(tag)>(din, dout, table, s, -1); });
}

}  // namespace duo
