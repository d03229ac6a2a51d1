// Elementwise activations: SiLU (time conditioning) and GELU with the tanh approximation (MLP).
#include <cmath>
#include "core/simd.h"
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/fast_math.h"

namespace duo {
using namespace cpu;

// silu(x) = x * sigmoid(x);  silu'(x) = s (1 + x (1 - s)) with s = sigmoid(x)
template <class T> static DUO_INLINE_INTO_CLONES T silu_value(T x) { return x / (T(1) + std::exp(-x)); }
template <class T> static DUO_INLINE_INTO_CLONES T silu_grad(T x) {
  T s = T(1) / (T(1) + std::exp(-x));
  return s * (T(1) + x * (T(1) - s));
}

// gelu(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
// gelu'(x) = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kGeluCubic = 0.044715;
template <class T> static DUO_INLINE_INTO_CLONES T gelu_value(T x) {
  T u = T(kSqrt2OverPi) * (x + T(kGeluCubic) * x * x * x);
  return T(0.5) * x * (T(1) + fast_tanh(u));
}
template <class T> static DUO_INLINE_INTO_CLONES T gelu_grad(T x) {
  T u = T(kSqrt2OverPi) * (x + T(kGeluCubic) * x * x * x);
  T th = fast_tanh(u);
  T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluCubic) * x * x);
  return T(0.5) * (T(1) + th) + T(0.5) * x * (T(1) - th * th) * du;
}

// out = f(in) over all elements; the f is a function template instantiated for T.
template <class T, T (*f)(T)>
DUO_SIMD_CLONES static void map_forward(Tensor& out, const Tensor& in) {
  T* y = out.ptr<T>();
  const T* x = in.ptr<T>();
  const int64_t n = in.numel();
#pragma omp parallel for simd schedule(static) if (worth_threads(n))
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}
// din = dout * f'(in)
template <class T, T (*df)(T)>
DUO_SIMD_CLONES static void map_backward(Tensor& din, const Tensor& dout, const Tensor& in) {
  T* dx = din.ptr<T>();
  const T* dy = dout.ptr<T>();
  const T* x = in.ptr<T>();
  const int64_t n = in.numel();
#pragma omp parallel for simd schedule(static) if (worth_threads(n))
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * df(x[i]);
}

// The shapes were checked by the Ops front (checks::elementwise); here only the dtypes the CPU computes in.
static void check_elementwise(const char* op, const Tensor& a, const Tensor& b) { check_same_dtype(op, {&a, &b}); }

void CpuOps::do_silu(Tensor& out, const Tensor& in) {
  check_elementwise("silu", out, in);
  dispatch("silu", in, [&](auto tag) {
    using T = decltype(tag);
    map_forward<T, silu_value<T>>(out, in);
  });
}

void CpuOps::do_silu_backward(Tensor& din, const Tensor& dout, const Tensor& in) {
  check_elementwise("silu_backward", din, in);
  check_elementwise("silu_backward", dout, in);
  dispatch("silu_backward", in, [&](auto tag) {
    using T = decltype(tag);
    map_backward<T, silu_grad<T>>(din, dout, in);
  });
}

void CpuOps::do_gelu(Tensor& out, const Tensor& in) {
  check_elementwise("gelu", out, in);
  dispatch("gelu", in, [&](auto tag) {
    using T = decltype(tag);
    map_forward<T, gelu_value<T>>(out, in);
  });
}

void CpuOps::do_gelu_backward(Tensor& din, const Tensor& dout, const Tensor& in) {
  check_elementwise("gelu_backward", din, in);
  check_elementwise("gelu_backward", dout, in);
  dispatch("gelu_backward", in, [&](auto tag) {
    using T = decltype(tag);
    map_backward<T, gelu_grad<T>>(din, dout, in);
  });
}

}  // namespace duo
