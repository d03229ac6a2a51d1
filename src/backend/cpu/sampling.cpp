// One step of the diffusion samplers on the CPU (Ops::diffusion_step): the rows post-processed into scratch, then
// updated, by the functions the host sampling loop runs (math/sampling_step.h), so the draws are its bits. DUO's and
// D3PM's rows (log-softmax) are not written out: each row's log-normaliser is taken where the logits are, and the
// update reads logit − normaliser, the float the stored row would hold (a (B·L, V) copy and pass less a step).
#include <algorithm>

#include "math/sampling_step.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/shape_checks.h"

namespace duo {

void CpuOps::do_diffusion_step(Tensor& z, Tensor& status, const Tensor& logits, const Tensor& keep,
                               const Tensor& sigma, const DiffusionStepArgs& a) {
  const std::string where = "CpuOps::diffusion_step";
  const auto [B, L, V] = checks::diffusion_step(where, z, status, logits, keep, sigma, a);
  const int64_t N = B * L;
  int32_t* zs = z.ptr<int32_t>();
  for (int64_t n = 0; n < N; ++n)
    DUO_CHECK(zs[n] >= 0 && zs[n] < V, where, str("token ", zs[n], " at position ", n, " is outside [0, ", V, ")"),
              "the sampler's ids must be the model's");
  const uint8_t* kept = keep.empty() ? nullptr : keep.ptr<uint8_t>();
  int64_t bad = N, changed = 0;
  if (updates_from_normalisers(a) && logits.dtype == DType::F32) {
    float* lse = scratch<float>((size_t)N);
    bad = log_softmax_normalisers(logits.ptr<float>(), N, V, lse);
    if (bad == N) changed = diffusion_update_rows(a, logits.ptr<float>(), N, V, kept, zs, lse);
  } else {
    float* rows = scratch<float>((size_t)(N * V));
    const float* src = nullptr;  // F32: read where they are; F64 (the gradient-check models): as float, here
    if (logits.dtype == DType::F32) src = logits.ptr<float>();
    else std::copy(logits.ptr<double>(), logits.ptr<double>() + N * V, rows);
    bad = denoiser_output_rows(src, rows, N, V, L, zs, sigma.empty() ? nullptr : sigma.ptr<double>(), a.family,
                               a.mask_id);
    if (bad == N) changed = diffusion_update_rows(a, rows, N, V, kept, zs);
  }
  int32_t* st = status.ptr<int32_t>();
  st[0] = (int32_t)changed;
  st[1] = (int32_t)bad;
}

}  // namespace duo
