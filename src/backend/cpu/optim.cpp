// Optimiser ops: deterministic sum of squares (global grad norm), scaling, AdamW and the EMA of weights.
#include <cmath>
#include "core/simd.h"
#include "backend/comm.h"
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"

namespace duo {
using namespace cpu;

// Fixed chunks (sum_squares_chunks returns them), each summed in double in index order, then the chunk sums added
// in chunk order: the result depends only on the data, never on the number of threads.
constexpr int64_t kSumChunk = 4096;
static_assert(kShardGrain % kSumChunk == 0, "ZeRO-1's shards start at whole chunks");

template <class T> static void chunk_sums_impl(const Tensor& x_t, double* partial) {
  const T* x = x_t.ptr<T>();
  const int64_t n = x_t.numel(), chunks = (n + kSumChunk - 1) / kSumChunk;
#pragma omp parallel for schedule(static) if (worth_threads(n))
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t end = (c + 1) * kSumChunk < n ? (c + 1) * kSumChunk : n;
    double s = 0;
    for (int64_t i = c * kSumChunk; i < end; ++i) s += (double)x[i] * (double)x[i];
    partial[c] = s;
  }
}

double CpuOps::do_sum_squares(const Tensor& x) {
  check_numel("sum_squares", "x", x, x.numel());
  const int64_t chunks = (x.numel() + kSumChunk - 1) / kSumChunk;
  double* partial = scratch<double>((size_t)chunks + 1);
  dispatch("sum_squares", x, [&](auto tag) { chunk_sums_impl<decltype(tag)>(x, partial); });
  double total = 0;
  for (int64_t c = 0; c < chunks; ++c) total += partial[c];
  return total;
}

int64_t CpuOps::sum_squares_chunk() const { return kSumChunk; }

std::vector<double> CpuOps::do_sum_squares_chunks(const Tensor& x) {
  check_numel("sum_squares_chunks", "x", x, x.numel());
  std::vector<double> partial((size_t)((x.numel() + kSumChunk - 1) / kSumChunk));
  dispatch("sum_squares_chunks", x, [&](auto tag) { chunk_sums_impl<decltype(tag)>(x, partial.data()); });
  return partial;
}

template <class T> DUO_SIMD_CLONES static void scale_impl(Tensor& x_t, double s) {
  T* x = x_t.ptr<T>();
  const int64_t n = x_t.numel();
  const T factor = (T)s;
#pragma omp parallel for schedule(static) if (worth_threads(n))
  for (int64_t i = 0; i < n; ++i) x[i] *= factor;
}

void CpuOps::do_scale(Tensor& x, double s) {
  check_numel("scale", "x", x, x.numel());
  dispatch("scale", x, [&](auto tag) { scale_impl<decltype(tag)>(x, s); });
}

// PyTorch's AdamW (torch.optim.AdamW, single-tensor path):
//   p -= lr * wd * p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
template <class T>
DUO_SIMD_CLONES static void adamw_impl(Tensor& params, const Tensor& grads, Tensor& m_t, Tensor& v_t, const AdamWArgs& a) {
  T* p = params.ptr<T>();
  const T* g = grads.ptr<T>();
  T* m = m_t.ptr<T>();
  T* v = v_t.ptr<T>();
  const int64_t n = params.numel();
  const T decay = (T)(1.0 - a.lr * a.weight_decay);
  const T b1 = (T)a.beta1, b2 = (T)a.beta2, eps = (T)a.eps;
  const T step_size = (T)(a.lr / (1.0 - std::pow(a.beta1, (double)a.step)));
  const T bc2_sqrt = (T)std::sqrt(1.0 - std::pow(a.beta2, (double)a.step));
#pragma omp parallel for schedule(static) if (worth_threads(n))
  for (int64_t i = 0; i < n; ++i) {
    p[i] *= decay;
    m[i] = b1 * m[i] + (T(1) - b1) * g[i];
    v[i] = b2 * v[i] + (T(1) - b2) * g[i] * g[i];
    p[i] -= step_size * m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps);
  }
}

void CpuOps::do_adamw(Tensor& params, const Tensor& grads, Tensor& m, Tensor& v, const AdamWArgs& a) {
  const char* op = "adamw";
  check_same_dtype(op, {&params, &grads, &m, &v});
  checks::adamw(str("CpuOps::", op), params, grads, m, v, a.step);
  dispatch(op, params, [&](auto tag) { adamw_impl<decltype(tag)>(params, grads, m, v, a); });
}

template <class T> DUO_SIMD_CLONES static void ema_impl(Tensor& shadow, const Tensor& params, double decay) {
  T* s = shadow.ptr<T>();
  const T* p = params.ptr<T>();
  const int64_t n = shadow.numel();
  const T rate = (T)(1.0 - decay);
#pragma omp parallel for schedule(static) if (worth_threads(n))
  for (int64_t i = 0; i < n; ++i) s[i] -= rate * (s[i] - p[i]);
}

void CpuOps::do_ema_update(Tensor& shadow, const Tensor& params, double decay) {
  const char* op = "ema_update";
  check_same_dtype(op, {&shadow, &params});
  check_numel(op, "shadow", shadow, shadow.numel());
  check_numel(op, "params", params, shadow.numel());
  dispatch(op, shadow, [&](auto tag) { ema_impl<decltype(tag)>(shadow, params, decay); });
}

}  // namespace duo
