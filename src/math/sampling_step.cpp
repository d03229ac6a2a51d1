// The samplers' rows: see sampling_step.h. Per-token math lives in uniform_posterior.h, absorbing_posterior.h and
// categorical.h (shared with the CUDA kernel, cuda/kernels/sampling.cu); this file walks the rows.
#include "math/sampling_step.h"

#include <algorithm>
#include <cmath>
#include <vector>
#include "core/error.h"
#include "core/finite.h"
#include "core/philox.h"
#include "core/rng_streams.h"
#include "core/simd.h"
#include "math/absorbing_posterior.h"
#include "math/categorical.h"
#include "math/exp_f64.h"
#include "math/log_softmax_row.h"
#include "math/loss_sedd.h"
#include "math/uniform_posterior.h"

namespace duo {

namespace {

constexpr float kNegInf = -1e6f;  // the reference's `neg_infinity` (a large finite number, not -inf)

bool absorbing(DiffusionFamily f) { return f != DiffusionFamily::uniform; }

// One step's update of every position. Its loops run over rows of V (50k) entries: the clones let them vectorise
// at the CPU's width (core/simd.h), which is most of the sampler's speed.
// lse: null (the rows are the post-processed ones), or the rows' log-normalisers: then every read of row n
// subtracts lse[n] (ln below; 0 without lse, which leaves every float as it is, -0 included).
template <class T>
DUO_SIMD_CLONES int64_t update_impl(const DiffusionStepArgs& a, const float* out, int64_t N, int64_t V,
                                    const uint8_t* keep, int32_t* z, const float* lse) {
  const Philox rng{a.seed, stream_id(streams::kSamplerStep, a.step)};
  const Philox mixture_rng{a.seed, stream_id(streams::kSamplerMixture, a.step)};
  const bool psi = a.psi && !a.final_step;
  const int32_t m = a.mask_id;
  const T a_t = (T)a.alpha_t, a_s = a.final_step ? T(1) : (T)a.alpha_s, kappa = (T)a.kappa;
  int64_t changed = 0;
#pragma omp parallel reduction(+ : changed)
  {
    std::vector<T> row((size_t)V), w((size_t)V), u((size_t)V);
    std::vector<int32_t> order;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      if (keep && keep[n]) continue;
      const uint64_t pos = (uint64_t)(a.first_position + n);
      const int32_t zt = z[n];
      // An unmasked token of an absorbing chain cannot change (carry-over), except under Ψ's re-masking.
      if (absorbing(a.family) && zt != m && !psi) continue;
      const float* o = out + n * V;
      const float ln = lse ? lse[n] : 0.0f;
      int32_t next = zt;
      if (a.family == DiffusionFamily::uniform && !a.filtered()) {
        // DUO's step (ancestral or Ψ) as the mixture it is (docs/sampling.md §4.1): stay at z_t, a uniform id, or
        // a draw from x̂. Only the last needs the row (x̂_j = exp(log p_j), then the race); the others cost O(1).
        const double xi = exp_f64((double)(T)(o[zt] - ln));
        const DuoMixture mix = psi ? duo_psi_posterior_mixture(xi, V, (double)a_t, (double)a_s, (double)kappa)
                                   : duo_posterior_mixture(xi, V, (double)a_t, (double)a_s);
        const double r = mixture_rng.uniform_double(2 * pos) * (mix.stay + mix.uniform + mix.predict);
        if (r >= mix.stay && r < mix.stay + mix.uniform) {
          next = (int32_t)std::min<int64_t>(V - 1, (int64_t)(mixture_rng.uniform_double(2 * pos + 1) * (double)V));
        } else if (r >= mix.stay + mix.uniform) {
          for (int64_t v = 0; v < V; ++v) w[(size_t)v] = (T)exp_f64((double)(T)(o[v] - ln));
          next = sample_categorical(w.data(), V, rng, pos, u);
        }
      } else {  // the posterior's V weights, then the race
        if (a.family == DiffusionFamily::sedd) {
          for (int64_t v = 0; v < V; ++v) row[(size_t)v] = (T)(o[v] - ln);
          // dsigma = sigma_t - sigma_s with sigma = -log alpha; the final step has alpha_s = 1.
          const T dsigma = std::log(a_s) - std::log(a_t);
          sedd_analytic_weights(row.data(), V, zt, m, dsigma, a.final_step, w.data());
        } else {
          for (int64_t v = 0; v < V; ++v) row[(size_t)v] = (T)(o[v] - ln);
          // Truncations act on the prediction x̂, before the posterior (docs/sampling.md §6): top-k, then top-p.
          if (a.top_k > 0) top_k_filter(row.data(), V, a.top_k, absorbing(a.family) ? m : -1, order);
          if (a.p_nucleus < 1) nucleus_filter(row.data(), V, a.p_nucleus, order);
          for (int64_t v = 0; v < V; ++v) row[(size_t)v] = (T)exp_f64((double)row[(size_t)v]);  // x̂
          if (a.family == DiffusionFamily::uniform) {  // filtered x̂
            if (psi) duo_psi_posterior(row.data(), V, zt, a_t, a_s, kappa, w.data());
            else duo_posterior(row.data(), V, zt, a_t, a_s, w.data());
          } else {
            if (psi) absorbing_psi_posterior(row.data(), V, zt, m, a_t, a_s, kappa, w.data());
            else absorbing_posterior(row.data(), V, zt, m, a_t, a_s, w.data());
          }
        }
        next = sample_categorical(w.data(), V, rng, pos, u);
      }
      if (next != zt) {
        z[n] = next;
        ++changed;
      }
    }
  }
  return changed;
}

// Cloned (core/simd.h) so that its loops over V vectorise at the CPU's width.
DUO_SIMD_CLONES int64_t postprocess_rows(const float* src, float* o, int64_t rows, int64_t V, int64_t L,
                                         const int32_t* z, const double* sigma, DiffusionFamily family,
                                         int32_t mask_id) {
  int64_t first_bad = rows;
#pragma omp parallel for schedule(static) reduction(min : first_bad)
  for (int64_t r = 0; r < rows; ++r) {
    float* row = o + r * V;
    if (src) std::copy(src + r * V, src + (r + 1) * V, row);
    if (!all_finite(row, V)) {
      first_bad = std::min(first_bad, r);
      continue;
    }
    switch (family) {
      case DiffusionFamily::uniform:
      case DiffusionFamily::d3pm: log_softmax_row_inplace(row, V); break;
      case DiffusionFamily::mdlm: subs_row(row, V, mask_id, z[r]); break;
      case DiffusionFamily::sedd: sedd_log_score_row(row, V, sigma[r / L], z[r]); break;
    }
  }
  return first_bad;
}

// Cloned like the rows' other passes.
DUO_SIMD_CLONES int64_t normalisers(const float* o, int64_t rows, int64_t V, float* lse) {
  int64_t first_bad = rows;
#pragma omp parallel for schedule(static) reduction(min : first_bad)
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = o + r * V;
    if (!all_finite(row, V)) {
      first_bad = std::min(first_bad, r);
      continue;
    }
    lse[r] = log_softmax_lse(row, V);
  }
  return first_bad;
}

}  // namespace

bool updates_from_normalisers(const DiffusionStepArgs& a) {
  return !a.greedy && (a.family == DiffusionFamily::uniform || a.family == DiffusionFamily::d3pm);
}

int64_t log_softmax_normalisers(const float* o, int64_t rows, int64_t V, float* lse) {
  return normalisers(o, rows, V, lse);
}

void subs_row(float* o, int64_t V, int32_t mask_id, int32_t z) {
  if (z != mask_id) {  // carry-over: an unmasked token is kept with probability 1
    std::fill(o, o + V, kNegInf);
    o[z] = 0.0f;
    return;
  }
  o[mask_id] += kNegInf;
  log_softmax_row_inplace(o, V);
}

void sedd_log_score_row(float* o, int64_t V, double sigma, int32_t z) {
  const float shift = (float)(sedd_log_expm1(sigma) + std::log((double)(V - 1)));
  for (int64_t v = 0; v < V; ++v) o[v] -= shift;
  o[z] = 0.0f;
}

int64_t denoiser_output_rows(const float* src, float* o, int64_t rows, int64_t V, int64_t L, const int32_t* z,
                             const double* sigma, DiffusionFamily family, int32_t mask_id) {
  return postprocess_rows(src, o, rows, V, L, z, sigma, family, mask_id);
}

int64_t diffusion_update_rows(const DiffusionStepArgs& a, const float* o, int64_t N, int64_t V, const uint8_t* keep,
                              int32_t* z, const float* lse) {
  DUO_CHECK(!lse || updates_from_normalisers(a),
            "diffusion_update_rows", "rows given with their log-normalisers are DUO's or D3PM's, and not greedy",
            "post-process the rows (denoiser_output_rows) for the other families and the greedy tail");
  if (a.greedy) {  // the greedy tail: no draw
    int64_t changed = 0;
#pragma omp parallel for schedule(static) reduction(+ : changed)
    for (int64_t n = 0; n < N; ++n) {
      if (keep && keep[n]) continue;
      const int32_t next = argmax_row(o + n * V, V);
      changed += next != z[n];
      z[n] = next;
    }
    return changed;
  }
  if (a.precision == SamplePrecision::f32) return update_impl<float>(a, o, N, V, keep, z, lse);
  return update_impl<double>(a, o, N, V, keep, z, lse);
}

}  // namespace duo
