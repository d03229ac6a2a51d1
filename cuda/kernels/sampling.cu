// One step of the diffusion samplers on the device (Ops::diffusion_step): the network's rows are post-processed and
// drawn from where they are, and only the ids (and a two-int status) go back to the host. One block per row: the
// row's statistics (finiteness, the maximum, the sum of exponentials: the log-softmax of DUO, D3PM and MDLM's SUBS;
// SEDD's sum of scores) are block reductions, then the update of math/sampling_step.cpp's update_impl from the same
// entry functions (uniform_posterior.h, absorbing_posterior.h, categorical.h), its Philox streams and counters:
//   DUO       the posterior as a mixture: thread 0 picks stay / uniform / predict; predict races over x̂
//   MDLM/D3PM the absorbing posterior (or its Ψ form), then the race
//   SEDD      the analytic weights, then the race
//   greedy    the first argmax of the post-processed row
// The race is the exponential race of sample_categorical over every entry (the host prunes entries that cannot win;
// the winner is the same); its argmax keeps the lowest id among equal keys, as the host's scan does. Each thread
// walks whole Philox blocks of the row's counters (two float64 or four float32 uniforms per block).
//
// Where the host gives the same bits: the draws, the mixture's choice and the entry functions are the same code;
// the log-normaliser is a block reduction (the host sums in 16 float64 lanes), so x̂ may differ from the host's in
// its last bits, and a draw only where two race keys lie within that rounding (tests/test_cuda_sampling.cpp).
//
// top-k and top-p (a sort of each row) run on the host: the rows are copied there and drawn by the CPU's functions.
#include <cfloat>
#include <climits>

#include "core/rng_streams.h"
#include "math/absorbing_posterior.h"
#include "math/categorical.h"
#include "math/exp_f64.h"
#include "math/loss_sedd.h"
#include "math/sampling_step.h"
#include "math/uniform_posterior.h"
#include "cuda_common.cuh"

namespace duo {
using namespace cuda;

namespace {

constexpr float kNegInf = -1e6f;  // the reference's `neg_infinity` (math/sampling_step.cpp)

// The family's post-processing of one row, entry by entry, once its statistics are known (docs/model.md §9).
struct RowOutput {
  DiffusionFamily family;
  int32_t mask_id, z;
  float lse = 0;     // log-softmax: the row's log-sum-exp (of SUBS' masked row for MDLM)
  float shift = 0;   // SEDD: log(e^sigma - 1) + log(V - 1)
  // The network's raw entry j as the log-softmax sees it (MDLM: the [MASK] logit lowered first).
  __device__ float raw(const float* o, int j) const {
    return family == DiffusionFamily::mdlm && j == mask_id ? o[j] + kNegInf : o[j];
  }
  __device__ float operator()(const float* o, int j) const {
    switch (family) {
      case DiffusionFamily::mdlm:
        if (z != mask_id) return j == z ? 0.0f : kNegInf;  // carry-over
        return raw(o, j) - lse;
      case DiffusionFamily::sedd: return j == z ? 0.0f : o[j] - shift;
      default: return o[j] - lse;
    }
  }
};

// status (2) = {0 tokens changed, no row not finite (N)}.
__global__ void diffusion_step_status_kernel(int32_t* status, int N) {
  if (threadIdx.x != 0) return;
  status[0] = 0;
  status[1] = N;
}

// grid (B·L), block kThreads. z (B·L) in place; logits (B·L, V); keep (B·L) or null; sigma (B) or null (SEDD reads it).
// rng, mixture_rng: the step's streams (the race's uniforms, DUO's choice of mixture component).
template <class T>
__global__ void diffusion_step_kernel(int32_t* z, int32_t* status, const float* logits, const uint8_t* keep,
                                      const double* sigma, int L, int V, DiffusionStepArgs a, Philox rng,
                                      Philox mixture_rng) {
  DUO_SHARED(double, dscratch, 32);
  DUO_SHARED(float, fscratch, 32);
  DUO_SHARED(T, kv, 32);
  DUO_SHARED(int, kj, 32);
  DUO_SHARED(int, choice, 1);
  const int n = int(blockIdx.x);
  const float* o = logits + int64_t(n) * V;
  const int32_t zt = valid_id(z[n], V);  // an id outside [0, V) fails at the next synchronisation (check_ids)
  const int32_t m = a.mask_id;
  const bool absorbing = a.family != DiffusionFamily::uniform;
  RowOutput out{a.family, m, zt};

  // The row's statistics: finite, its maximum (as the log-softmax sees the row).
  float mx = -INFINITY;
  int bad = 0;
  for (int j = int(threadIdx.x); j < V; j += int(blockDim.x)) {
    const float x = o[j];
    bad |= !(fabsf(x) <= FLT_MAX);  // NaN or ±inf
    mx = fmaxf(mx, out.raw(o, j));
  }
  if (block_sum(bad, kj) > 0) {
    if (threadIdx.x == 0) atomicMin(&status[1], n);
    return;
  }
  if (keep && keep[n]) return;
  const bool psi = a.psi && !a.final_step;
  // An unmasked token of an absorbing chain cannot change (carry-over), except under Ψ's re-masking.
  if (!a.greedy && absorbing && zt != m && !psi) return;
  if (a.family == DiffusionFamily::sedd) {
    out.shift = float(sedd_log_expm1(sigma[n / L]) + std::log(double(V - 1)));
  } else if (!(a.family == DiffusionFamily::mdlm && zt != m)) {
    mx = block_max(mx, fscratch);
    double s = 0;
    for (int j = int(threadIdx.x); j < V; j += int(blockDim.x)) s += double(expf(out.raw(o, j) - mx));
    out.lse = mx + float(std::log(block_sum(s, dscratch)));
  }

  int32_t next = zt;
  if (a.greedy) {
    float best = -INFINITY;
    int best_j = INT_MAX;
    for (int j = int(threadIdx.x); j < V; j += int(blockDim.x)) keep_first_max(best, best_j, out(o, j), j);
    next = block_first_argmax<float>(best, best_j, fscratch, kj);
  } else {
    const uint64_t pos = uint64_t(a.first_position) + uint64_t(n);
    const T a_t = T(a.alpha_t), a_s = a.final_step ? T(1) : T(a.alpha_s), kappa = T(a.kappa);
    if (a.family == DiffusionFamily::uniform) {
      // The mixture (math/sampling_step.cpp): 0 stay, 1 a uniform id, 2 a draw from x̂.
      if (threadIdx.x == 0) {
        const double xi = exp_f64(double(T(out(o, zt))));
        const DuoMixture mix = psi ? duo_psi_posterior_mixture(xi, V, double(a_t), double(a_s), double(kappa))
                                   : duo_posterior_mixture(xi, V, double(a_t), double(a_s));
        const double r = mixture_rng.uniform_double(2 * pos) * (mix.stay + mix.uniform + mix.predict);
        choice[0] = 0;
        if (r >= mix.stay && r < mix.stay + mix.uniform) {
          const int64_t id = int64_t(mixture_rng.uniform_double(2 * pos + 1) * double(V));
          choice[0] = 1;
          next = int32_t(id < V - 1 ? id : V - 1);
        } else if (r >= mix.stay + mix.uniform) {
          choice[0] = 2;
        }
      }
      __syncthreads();
      const bool predict = choice[0] == 2;
      __syncthreads();
      if (!predict) {
        if (threadIdx.x == 0 && next != zt) {
          z[n] = next;
          atomicAdd(&status[0], 1);
        }
        return;
      }
    }
    // SEDD: the sum of the scores r_y = exp(log-score), in T as the host sums it.
    const SeddStep<T> sedd = a.family == DiffusionFamily::sedd ? sedd_step(T(std::log(a_s) - std::log(a_t))) : SeddStep<T>{};
    T sum_r = 0;
    if (a.family == DiffusionFamily::sedd) {
      T s = 0;
      for (int j = int(threadIdx.x); j < V; j += int(blockDim.x)) s += std::exp(T(out(o, j)));
      sum_r = block_sum(s, kv);
    }
    // The race over the posterior's weights: uniform counter pos·V + j of the step's stream.
    constexpr int per = sizeof(T) == sizeof(double) ? 2 : 4;  // uniforms per Philox block
    const uint64_t first = pos * uint64_t(V), last = first + uint64_t(V);
    T best = -INFINITY;
    int best_j = INT_MAX;
    for (uint64_t blk = first / per + threadIdx.x; blk < (last + per - 1) / per; blk += blockDim.x) {
      const PhiloxBlock bits = rng.block(blk);  // uniform_double(c) and uniform(c) both read block c / per
      for (int k = 0; k < per; ++k) {
        const uint64_t c = per * blk + uint64_t(k);
        if (c < first || c >= last) continue;  // a neighbouring row's share of a boundary block
        const int j = int(c - first);
        T u;
        if constexpr (sizeof(T) == sizeof(double)) {
          u = T(Philox::to_uniform_double(bits.v[2 * k], bits.v[2 * k + 1]));
        } else {
          u = T(Philox::to_uniform(bits.v[k]));
        }
        const T lp = T(out(o, j));
        T w;
        if (a.family == DiffusionFamily::uniform) {
          w = T(exp_f64(double(lp)));  // x̂_j
        } else if (a.family == DiffusionFamily::sedd) {
          w = sedd_analytic_entry(sedd, lp, j, zt, m, a.final_step, sum_r);
        } else {
          const T xhat = T(exp_f64(double(lp)));
          w = psi ? absorbing_psi_posterior_entry(xhat, j, zt, m, a_t, a_s, kappa)
                  : absorbing_posterior_entry(xhat, j, zt, m, a_t, a_s);
        }
        keep_first_max(best, best_j, exp_race_key(w, u), j);
      }
    }
    next = block_first_argmax<T>(best, best_j, kv, kj);
  }
  if (threadIdx.x == 0 && next != zt) {
    z[n] = next;
    atomicAdd(&status[0], 1);
  }
}

}  // namespace

void CudaOps::do_diffusion_step(Tensor& z, Tensor& status, const Tensor& logits, const Tensor& keep,
                                const Tensor& sigma, const DiffusionStepArgs& a) {
  const char* op = "diffusion_step";
  check_on_device(op, z);
  check_on_device(op, status);
  check_f32(op, {&logits});
  if (!keep.empty()) check_on_device(op, keep);
  if (!sigma.empty()) check_on_device(op, sigma);
  const auto [B, L, V] = checks::diffusion_step(str("CudaOps::", op), z, status, logits, keep, sigma, a);
  const int64_t N = B * L;
  DUO_CHECK(V < INT_MAX && N < INT_MAX, str("CudaOps::", op),
            str(N, " rows of ", V, " entries exceed the kernel's int indices"), "sample fewer sequences per call");
  check_ids(op, z, V);
  if (N == 0) return;
  if (a.filtered()) {
    // top-k / top-p sort each row: on the host, by the CPU's functions (the rows copied there, the ids back).
    std::vector<float> rows((size_t)(N * V));
    std::vector<int32_t> ids((size_t)N);
    std::vector<uint8_t> kept(keep.empty() ? 0 : (size_t)N);
    std::vector<double> sig(sigma.empty() ? 0 : (size_t)B);
    to_host(rows.data(), logits);
    to_host(ids.data(), z);
    if (!keep.empty()) to_host(kept.data(), keep);
    if (!sigma.empty()) to_host(sig.data(), sigma);
    const int64_t bad = denoiser_output_rows(nullptr, rows.data(), N, V, L, ids.data(), sig.empty() ? nullptr : sig.data(),
                                             a.family, a.mask_id);
    int32_t st[2] = {0, int32_t(bad)};
    if (bad == N) {
      st[0] = int32_t(diffusion_update_rows(a, rows.data(), N, V, kept.empty() ? nullptr : kept.data(), ids.data()));
      from_host(z, ids.data());
    }
    from_host(status, st);
    return;
  }
  cudaStream_t st = as_stream(stream_);
  int32_t* zs = static_cast<int32_t*>(z.data);
  int32_t* ss = static_cast<int32_t*>(status.data);
  DUO_LAUNCH(diffusion_step_status_kernel, 1, 32, 0, st)(ss, int(N));
  const uint8_t* kp = keep.empty() ? nullptr : static_cast<const uint8_t*>(keep.data);
  const double* sp = sigma.empty() ? nullptr : static_cast<const double*>(sigma.data);
  const Philox rng{a.seed, stream_id(streams::kSamplerStep, a.step)};  // the host sampler's streams
  const Philox mixture_rng{a.seed, stream_id(streams::kSamplerMixture, a.step)};
  if (a.precision == SamplePrecision::f32)
    DUO_LAUNCH_NAMED(diffusion_step_kernel<float>, "diffusion_step_kernel", unsigned(N), kThreads, 0, st)(
        zs, ss, fptr(logits), kp, sp, int(L), int(V), a, rng, mixture_rng);
  else
    DUO_LAUNCH_NAMED(diffusion_step_kernel<double>, "diffusion_step_kernel", unsigned(N), kThreads, 0, st)(
        zs, ss, fptr(logits), kp, sp, int(L), int(V), a, rng, mixture_rng);
  DUO_CU_LAUNCHED(op);
}

}  // namespace duo
