// LayerNorm without bias (eps 1e-5, biased variance) fused with the adaLN modulate of the DiT:
//   xhat = (x - mean) * rstd,   out = (xhat * weight) * (1 + scale[b]) + shift[b]
// shift/scale are (B, D), usually column blocks of the adaLN output (strided rows); both empty = plain LN.
#include <cmath>
#include "core/simd.h"
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"

namespace duo {
using namespace cpu;

constexpr double kLayerNormEps = 1e-5;  // PyTorch's default

using checks::LnShape;

template <class T>
DUO_SIMD_CLONES static void layernorm_forward(Tensor& out, Tensor& mean_t, Tensor& rstd_t, const Tensor& x_t, const Tensor& weight,
                              const Tensor& shift, const Tensor& scale, LnShape s) {
  const int64_t D = s.D, N = s.B * s.L;
  const bool modulate = !shift.empty();
  const T* w = weight.ptr<T>();
  T* mean = mean_t.ptr<T>();
  T* rstd = rstd_t.ptr<T>();
#pragma omp parallel for schedule(static) if (worth_threads(N * D))
  for (int64_t n = 0; n < N; ++n) {
    const T* x = x_t.ptr<T>() + n * D;  // (D)
    T* y = out.ptr<T>() + n * D;        // (D)
    T m = 0;
    for (int64_t d = 0; d < D; ++d) m += x[d];
    m /= T(D);
    T var = 0;  // two passes: the variance of the centred values does not cancel catastrophically
    for (int64_t d = 0; d < D; ++d) var += (x[d] - m) * (x[d] - m);
    var /= T(D);
    const T r = T(1) / std::sqrt(var + T(kLayerNormEps));
    mean[n] = m;
    rstd[n] = r;
    if (modulate) {
      const int64_t b = n / s.L;
      const T* sh = row<T>(shift, b);
      const T* sc = row<T>(scale, b);
      for (int64_t d = 0; d < D; ++d) y[d] = ((x[d] - m) * r * w[d]) * (T(1) + sc[d]) + sh[d];
    } else {
      for (int64_t d = 0; d < D; ++d) y[d] = (x[d] - m) * r * w[d];
    }
  }
}

void CpuOps::do_layernorm_modulate(Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x, const Tensor& weight,
                                   const Tensor& shift, const Tensor& scale) {
  const char* op = "layernorm_modulate";
  check_same_dtype(op, {&x, &out, &mean, &rstd, &weight, &shift, &scale});
  const LnShape s = checks::layernorm(str("CpuOps::", op), x, weight, shift, scale);
  check_matrix(op, "out", out, s.B * s.L, s.D);
  check_numel(op, "mean", mean, s.B * s.L);
  check_numel(op, "rstd", rstd, s.B * s.L);
  dispatch(op, x, [&](auto tag) { layernorm_forward<decltype(tag)>(out, mean, rstd, x, weight, shift, scale, s); });
}

// With g = dout and a = 1 + scale[b]:
//   dshift[b] = sum_l g          dscale[b] = sum_l g * xhat * w          dweight += sum_rows g * a * xhat
//   dxhat = g * w * a            dx += rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
template <class T>
DUO_SIMD_CLONES static void layernorm_backward_impl(Tensor& dx_t, Tensor& dweight, Tensor& dshift, Tensor& dscale,
                                    const Tensor& dout, const Tensor& x_t, const Tensor& mean_t,
                                    const Tensor& rstd_t, const Tensor& weight, const Tensor& shift,
                                    const Tensor& scale, LnShape s) {
  const int64_t B = s.B, L = s.L, D = s.D, N = B * L;
  const bool modulate = !shift.empty();
  const T* w = weight.ptr<T>();
  const T* mean = mean_t.ptr<T>();
  const T* rstd = rstd_t.ptr<T>();
  const T* g_all = dout.ptr<T>();
  const T* x_all = x_t.ptr<T>();
  auto xhat = [&](int64_t n, int64_t d) { return (x_all[n * D + d] - mean[n]) * rstd[n]; };

  // dx: one row at a time (rows are independent).
  if (!dx_t.empty()) {
#pragma omp parallel for schedule(static) if (worth_threads(N * D))
    for (int64_t n = 0; n < N; ++n) {
      const T* g = g_all + n * D;
      const T* sc = modulate ? row<T>(scale, n / L) : nullptr;
      T* dx = dx_t.ptr<T>() + n * D;
      T sum_dxhat = 0, sum_dxhat_xhat = 0;
      for (int64_t d = 0; d < D; ++d) {
        T dxhat = g[d] * w[d] * (modulate ? T(1) + sc[d] : T(1));
        sum_dxhat += dxhat;
        sum_dxhat_xhat += dxhat * xhat(n, d);
      }
      const T mean_dxhat = sum_dxhat / T(D), mean_dxhat_xhat = sum_dxhat_xhat / T(D);
      for (int64_t d = 0; d < D; ++d) {
        T dxhat = g[d] * w[d] * (modulate ? T(1) + sc[d] : T(1));
        dx[d] += rstd[n] * (dxhat - mean_dxhat - xhat(n, d) * mean_dxhat_xhat);
      }
    }
  }

  // dshift, dscale: one sequence b at a time, summing its rows in order.
  if (modulate && (!dshift.empty() || !dscale.empty())) {
#pragma omp parallel for schedule(static) if (worth_threads(N * D))
    for (int64_t b = 0; b < B; ++b) {
      T* dsh = dshift.empty() ? nullptr : row<T>(dshift, b);
      T* dsc = dscale.empty() ? nullptr : row<T>(dscale, b);
      for (int64_t d = 0; d < D; ++d) {
        if (dsh) dsh[d] = 0;
        if (dsc) dsc[d] = 0;
      }
      for (int64_t l = 0; l < L; ++l) {
        const int64_t n = b * L + l;
        const T* g = g_all + n * D;
        for (int64_t d = 0; d < D; ++d) {
          if (dsh) dsh[d] += g[d];
          if (dsc) dsc[d] += g[d] * xhat(n, d) * w[d];
        }
      }
    }
  }

  // dweight: a block of columns per iteration, all rows summed in order (deterministic, no races).
  if (!dweight.empty()) {
    constexpr int64_t kCols = 64;
    T* dw = dweight.ptr<T>();
#pragma omp parallel for schedule(static) if (worth_threads(N * D))
    for (int64_t d0 = 0; d0 < D; d0 += kCols) {
      const int64_t d1 = d0 + kCols < D ? d0 + kCols : D;
      T acc[kCols] = {};
      for (int64_t n = 0; n < N; ++n) {
        const T* g = g_all + n * D;
        const T* sc = modulate ? row<T>(scale, n / L) : nullptr;
        for (int64_t d = d0; d < d1; ++d) acc[d - d0] += g[d] * xhat(n, d) * (modulate ? T(1) + sc[d] : T(1));
      }
      for (int64_t d = d0; d < d1; ++d) dw[d] += acc[d - d0];
    }
  }
}

void CpuOps::do_layernorm_modulate_backward(Tensor& dx, Tensor& dweight, Tensor& dshift, Tensor& dscale,
                                            const Tensor& dout, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                            const Tensor& weight, const Tensor& shift, const Tensor& scale) {
  const char* op = "layernorm_modulate_backward";
  check_same_dtype(op, {&x, &dx, &dweight, &dshift, &dscale, &dout, &mean, &rstd, &weight, &shift, &scale});
  const std::string where = str("CpuOps::", op);
  const LnShape s = checks::layernorm(where, x, weight, shift, scale);
  checks::layernorm_backward(where, s, dx, dweight, dshift, dscale, dout, mean, rstd, shift);
  dispatch(op, x, [&](auto tag) {
    layernorm_backward_impl<decltype(tag)>(dx, dweight, dshift, dscale, dout, x, mean, rstd, weight, shift, scale, s);
  });
}

}  // namespace duo
