// Sinusoidal features of the noise level sigma (docs/model.md §4): cos first, then sin.
#include <cmath>
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"

namespace duo {
using namespace cpu;

// out[b] = [cos(sigma_b f_0), ..., cos(sigma_b f_{h-1}), sin(sigma_b f_0), ..., sin(sigma_b f_{h-1})]
// with h = F/2 and f_i = exp(-ln(10000) i / h). Computed in double, stored as T.
template <class T> static void timestep_forward(Tensor& out_t, const Tensor& sigma_t) {
  const int64_t B = out_t.shape[0], F = out_t.shape[1], half = F / 2;
  const T* sigma = sigma_t.ptr<T>();
  for (int64_t b = 0; b < B; ++b) {
    T* out = out_t.ptr<T>() + b * F;
    for (int64_t i = 0; i < half; ++i) {
      const double freq = std::exp(-std::log(10000.0) * (double)i / (double)half);
      const double angle = (double)sigma[b] * freq;
      out[i] = (T)std::cos(angle);
      out[half + i] = (T)std::sin(angle);
    }
  }
}

void CpuOps::do_timestep_embedding(Tensor& out, const Tensor& sigma) {
  const char* op = "timestep_embedding";
  check_same_dtype(op, {&out, &sigma});  // the shapes were checked by Ops::timestep_embedding
  dispatch(op, out, [&](auto tag) { timestep_forward<decltype(tag)>(out, sigma); });
}

}  // namespace duo
