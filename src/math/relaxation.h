// DUO's Gaussian relaxation of clean tokens, one row at a time: the per-row maths of the curriculum's input
// (docs/curriculum.md §4) that both backends compute (Ops::gaussian_relaxation: the CPU loop, the CUDA kernel)
// and the fixtures check. Part of the per-row maths floor (src/math/): it includes only core.
#pragma once
#include <cmath>
#include <cstdint>
#include "core/hd.h"
#include "core/philox.h"

namespace duo {

// One coordinate of the relaxed input: w_j = α̃·[j = x] + σ̃·ε_j in float32, in the reference's order (σ̃·ε rounded,
// then + α̃ on the clean coordinate; α̃·0 + σ̃ε is exact elsewhere). Shared with CUDA kernels, where the multiply
// and add must stay separate roundings (no FMA contraction) to reproduce the reference bit for bit.
DUO_HD float relaxed_coordinate(float eps, bool clean, float alpha_tilde, float sigma_tilde) {
#if defined(__CUDA_ARCH__)
  const float se = __fmul_rn(sigma_tilde, eps);
  return clean ? __fadd_rn(alpha_tilde, se) : se;
#else
  const float se = sigma_tilde * eps;
  return clean ? alpha_tilde + se : se;
#endif
}

// One token from a given ε (V floats): writes the soft-input logits y_j = w_j·β (float32 throughout, as the
// reference: w = α̃·e_x + σ̃·ε, then y = w·(1/τ)) when y is not null, and returns z_t = argmax_j w_j (the first
// maximum). This is the exact arithmetic the Philox-driven rows below use; fixtures call it with a stored ε.
inline int32_t simple_latent_row(const float* eps, int64_t V, int32_t x, float alpha_tilde, float sigma_tilde,
                                 float inverse_tau, float* y) {
  // z_t is the argmax of w (of y = w·(1/τ) too, but w cannot be flattened into ties by the scaling).
  int32_t z = 0;
  float best = -INFINITY;
  for (int64_t j = 0; j < V; ++j) {
    const float w = relaxed_coordinate(eps[j], j == x, alpha_tilde, sigma_tilde);
    if (w > best) { best = w; z = (int32_t)j; }
    if (y) y[j] = w * inverse_tau;
  }
  return z;
}

// Row r of a relaxation with ε_{r,j} = noise.normal(r·V + j) drawn into eps (V floats of scratch): simple_latent_row
// on that ε. What Ops::gaussian_relaxation computes per row (the CPU backend calls this; the CUDA kernel draws the
// same ε and calls relaxed_coordinate).
inline int32_t relaxation_row(const Philox& noise, int64_t r, int64_t V, int32_t x, float alpha_tilde,
                              float sigma_tilde, float inverse_tau, float* eps, float* y) {
  // ε_{r,j} = normal number r·V + j of the stream, drawn four at a time (one Philox block per call).
  const uint64_t first = (uint64_t)r * (uint64_t)V;
  for (int64_t j = 0; j < V;) {
    const uint64_t i = first + (uint64_t)j;
    float four[4];
    noise.normal4(i >> 2, four);
    for (int lane = (int)(i & 3); lane < 4 && j < V; ++lane, ++j) eps[j] = four[lane];
  }
  return simple_latent_row(eps, V, x, alpha_tilde, sigma_tilde, inverse_tau, y);
}

}  // namespace duo
