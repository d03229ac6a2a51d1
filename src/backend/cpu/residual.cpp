// Gated residual with dropout (DiT blocks): h += gate[b] * dropout_p(branch).
// Element i = flat index into (B, L, D) is kept when rng.uniform(i) > p and then scaled by 1/(1-p); the mask
// is a pure function of (rng, i), so the backward recomputes it instead of storing it.
#include "core/simd.h"
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"

namespace duo {
using namespace cpu;

// The dropout factor of element i: 0 (dropped) or 1/(1-p) (kept). One Philox block serves four elements,
// so the block of the previous element is cached.
struct DropoutMask {
  const Philox& rng;
  float p;
  double keep_scale;
  uint64_t cached_block = UINT64_MAX;
  PhiloxBlock bits{};

  DropoutMask(const Philox& r, float p_) : rng(r), p(p_), keep_scale(p_ > 0 ? 1.0 / (1.0 - p_) : 1.0) {}
  double factor(uint64_t i) {
    if (p <= 0) return 1.0;
    if ((i >> 2) != cached_block) {
      cached_block = i >> 2;
      bits = rng.block(cached_block);
    }
    return Philox::to_uniform(bits.v[i & 3]) > p ? keep_scale : 0.0;
  }
};

using checks::ResidualShape;

static ResidualShape residual_shape(const char* op, const Tensor& h, const Tensor& gate, float p) {
  return checks::gated_residual(str("CpuOps::", op), h, gate, p);
}

template <class T>
DUO_SIMD_CLONES static void gated_residual_forward(Tensor& out_t, const Tensor& h_t, const Tensor& branch_t,
                                                   const Tensor& gate, float p, const Philox& rng, ResidualShape s) {
  const int64_t N = s.B * s.L, D = s.D;
#pragma omp parallel for schedule(static) if (worth_threads(N * D))
  for (int64_t n = 0; n < N; ++n) {
    DropoutMask mask(rng, p);
    const T* g = gate.empty() ? nullptr : row<T>(gate, n / s.L);
    const T* x = branch_t.ptr<T>() + n * D;
    const T* h = h_t.ptr<T>() + n * D;
    T* out = out_t.ptr<T>() + n * D;
    for (int64_t d = 0; d < D; ++d) {
      const T dropped = x[d] * (T)mask.factor((uint64_t)(n * D + d));
      out[d] = h[d] + (g ? g[d] * dropped : dropped);
    }
  }
}

void CpuOps::do_gated_residual(Tensor& out, const Tensor& h, const Tensor& branch, const Tensor& gate, float p,
                               const Philox& rng) {
  const char* op = "gated_residual";
  check_same_dtype(op, {&out, &h, &branch, &gate});
  ResidualShape s = residual_shape(op, out, gate, p);
  check_matrix(op, "branch", branch, s.B * s.L, s.D);
  dispatch(op, out, [&](auto tag) { gated_residual_forward<decltype(tag)>(out, h, branch, gate, p, rng, s); });
}

// dbranch = gate * mask * dh / (1-p);  dgate[b] = sum_l dh * dropout(branch). One sequence per iteration so
// that dgate's sums over l run in order.
template <class T>
DUO_SIMD_CLONES static void gated_residual_backward_impl(Tensor& dbranch_t, Tensor& dgate, const Tensor& dh_t,
                                         const Tensor& branch_t, const Tensor& gate, float p, const Philox& rng,
                                         ResidualShape s) {
  const int64_t L = s.L, D = s.D;
#pragma omp parallel for schedule(static) if (worth_threads(s.B * L * D))
  for (int64_t b = 0; b < s.B; ++b) {
    DropoutMask mask(rng, p);
    const T* g = gate.empty() ? nullptr : row<T>(gate, b);
    T* dg = dgate.empty() ? nullptr : row<T>(dgate, b);
    if (dg)
      for (int64_t d = 0; d < D; ++d) dg[d] = 0;
    for (int64_t l = 0; l < L; ++l) {
      const int64_t n = b * L + l;
      const T* dh = dh_t.ptr<T>() + n * D;
      const T* x = branch_t.ptr<T>() + n * D;
      T* dx = dbranch_t.empty() ? nullptr : dbranch_t.ptr<T>() + n * D;
      for (int64_t d = 0; d < D; ++d) {
        const T f = (T)mask.factor((uint64_t)(n * D + d));
        if (dx) dx[d] = (g ? g[d] : T(1)) * f * dh[d];
        if (dg) dg[d] += dh[d] * x[d] * f;
      }
    }
  }
}

void CpuOps::do_gated_residual_backward(Tensor& dbranch, Tensor& dgate, const Tensor& dh, const Tensor& branch,
                                        const Tensor& gate, float p, const Philox& rng) {
  const char* op = "gated_residual_backward";
  check_same_dtype(op, {&dh, &dbranch, &dgate, &branch, &gate});
  ResidualShape s = residual_shape(op, dh, gate, p);
  checks::gated_residual_grads(str("CpuOps::", op), s, dbranch, dgate, branch, gate);
  dispatch(op, dh, [&](auto tag) {
    gated_residual_backward_impl<decltype(tag)>(dbranch, dgate, dh, branch, gate, p, rng, s);
  });
}

}  // namespace duo
