// The distillation KL head on the CPU (Ops::kl_head): one call of distill_kl_row (src/math/loss_distill.h,
// the same DUO_HD function the CUDA kernel calls) per token, rows in parallel.
#include "math/loss_distill.h"
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/shape_checks.h"

namespace duo {

void CpuOps::do_kl_head(KlDirection dir, Tensor& losses, Tensor& dstudent, const Tensor& student, const Tensor& teacher,
                        const Tensor& weight) {
  const char* op = "kl_head";
  cpu::check_same_dtype(op, {&student, &teacher, &losses, &dstudent});
  const auto [N, V] = checks::kl_head("CpuOps::kl_head", losses, dstudent, student, teacher, weight);
  const bool forward_kl = dir == KlDirection::Forward;
  cpu::dispatch(op, student, [&](auto zero) {
    using T = decltype(zero);
    const T *s = student.ptr<T>(), *t = teacher.ptr<T>();
    T* l = losses.ptr<T>();
    T* d = dstudent.empty() ? nullptr : dstudent.ptr<T>();
    const double* w = weight.ptr<double>();
#pragma omp parallel for schedule(static) if (cpu::worth_threads(N * V))
    for (int64_t n = 0; n < N; ++n) {
      T* dn = d ? d + n * V : nullptr;
      l[n] = distill_kl_row<T>(s + n * V, t + n * V, (int)V, forward_kl, dn);
      if (dn)
        for (int64_t j = 0; j < V; ++j) dn[j] *= T(w[n]);
    }
  });
}

}  // namespace duo
