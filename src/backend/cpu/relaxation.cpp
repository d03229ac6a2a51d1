// DUO's curriculum input on the CPU (Ops::gaussian_relaxation): relaxation_row of src/math/relaxation.h per
// row, rows in parallel. A float64 output (the gradient checks' models) receives the float32 values widened; an
// empty one asks for z alone. Ops::embed_relaxed is the relaxation into this backend's scratch, then embed_soft.
#include <type_traits>
#include <vector>

#include "math/relaxation.h"
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/shape_checks.h"

namespace duo {

void CpuOps::do_gaussian_relaxation(Tensor& soft_logits, Tensor& z, const Tensor& x, const Tensor& scales,
                                    double inverse_tau, const Philox& noise) {
  const std::string where = "CpuOps::gaussian_relaxation";
  const auto [B, L, V] = checks::gaussian_relaxation(where, soft_logits, z, x, scales, inverse_tau);
  const int64_t N = B * L;
  const int32_t* xs = x.ptr<int32_t>();
  const double* sc = scales.ptr<double>();
  for (int64_t n = 0; n < N; ++n)
    DUO_CHECK(xs[n] >= 0 && xs[n] < V, where, str("token ", xs[n], " at row ", n, " is outside [0, ", V, ")"),
              "the data's vocabulary must match the model's --vocab_size");
  for (int64_t b = 0; b < B; ++b)
    DUO_CHECK(sc[2 * b] > 0 && sc[2 * b + 1] > 0, where,
              str("sequence ", b, ": scales (", sc[2 * b], ", ", sc[2 * b + 1], ") must be positive"),
              "fill them with gaussian_scales(γ)");
  int32_t* zs = z.ptr<int32_t>();
  const float beta = (float)inverse_tau;
  cpu::dispatch("gaussian_relaxation", soft_logits, [&](auto zero) {
    using T = decltype(zero);
    T* y = soft_logits.ptr<T>();  // null: an empty soft_logits, z alone
    constexpr bool widen = !std::is_same_v<T, float>;
#pragma omp parallel if (cpu::worth_threads(N * V))
    {
      std::vector<float> eps((size_t)V), row(widen && y ? (size_t)V : 0);
#pragma omp for schedule(static)
      for (int64_t n = 0; n < N; ++n) {
        const float at = (float)sc[2 * (n / L)], st = (float)sc[2 * (n / L) + 1];
        float* out = nullptr;  // where relaxation_row writes the row's soft logits (float32)
        if constexpr (widen) out = y ? row.data() : nullptr;
        else out = y ? y + n * V : nullptr;
        zs[n] = relaxation_row(noise, n, V, xs[n], at, st, beta, eps.data(), out);
        if constexpr (widen)
          if (y) for (int64_t j = 0; j < V; ++j) y[n * V + j] = T(row[(size_t)j]);
      }
    }
  });
}

void CpuOps::do_embed_relaxed(Tensor& out, Tensor& probs, Tensor& z, const Tensor& x, const Tensor& scales,
                              double inverse_tau, const Philox& noise, const Tensor& table) {
  const int64_t B = x.shape[0], L = x.shape[1], V = table.shape[0];
  const size_t words = (size_t)(B * L * V) * dtype_size(table.dtype) / sizeof(double) + 1;
  if (relaxed_.size() < words) relaxed_.resize(words);
  Tensor soft(relaxed_.data(), table.dtype, {B, L, V});
  do_gaussian_relaxation(soft, z, x, scales, inverse_tau, noise);
  do_embed_soft(out, probs, soft.view({B * L, V}), table);
}

}  // namespace duo
