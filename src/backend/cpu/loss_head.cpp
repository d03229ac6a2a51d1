// Loss heads on the CPU: one call of the per-row math of src/math/loss_*.h per token (the same DUO_HD
// functions the CUDA kernels call), rows in parallel.
#include "math/loss_rows.h"
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/shape_checks.h"

namespace duo {

void CpuOps::do_loss_head(const LossHeadArgs& a, Tensor& losses, Tensor& dlogits, const Tensor& logits,
                          const Tensor& x, const Tensor& z, const Tensor& alpha, const Tensor& dalpha,
                          const Tensor& weight) {
  const char* op = "loss_head";
  cpu::check_same_dtype(op, {&logits, &losses, &dlogits});
  const auto [N, V] = checks::loss_head("CpuOps::loss_head", losses, dlogits, logits, x, z, alpha, dalpha, weight);
  const int32_t* xs = x.ptr<int32_t>();
  const int32_t* zs = z.ptr<int32_t>();
  for (int64_t n = 0; n < N; ++n)
    DUO_CHECK(xs[n] >= 0 && xs[n] < V && zs[n] >= 0 && zs[n] < V, "CpuOps::loss_head",
              str("token id out of range at row ", n, ": x = ", xs[n], ", z = ", zs[n], ", vocabulary ", V),
              "the data's vocabulary must match the model's --vocab_size");
  cpu::dispatch(op, logits, [&](auto zero) {
    using T = decltype(zero);
    const T* o = logits.ptr<T>();
    T* l = losses.ptr<T>();
    T* d = dlogits.empty() ? nullptr : dlogits.ptr<T>();
    const double *al = alpha.ptr<double>(), *da = dalpha.ptr<double>(), *w = weight.ptr<double>();
#pragma omp parallel for schedule(static) if (cpu::worth_threads(N * V))
    for (int64_t n = 0; n < N; ++n) {
      T* dn = d ? d + n * V : nullptr;
      l[n] = loss_row<T>(a, o + n * V, (int)V, xs[n], zs[n], al[n], da[n], dn);
      if (dn)
        for (int64_t j = 0; j < V; ++j) dn[j] *= T(w[n]);
    }
  });
}

}  // namespace duo
