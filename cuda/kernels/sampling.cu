// One step of the diffusion samplers on the device (Ops::diffusion_step): the network's rows are post-processed and
// drawn from where they are, and only the ids (and a two-int status) go back to the host. One block per row: the
// row's statistics (finiteness, the maximum, the sum of exponentials: the log-softmax of DUO, D3PM and MDLM's SUBS;
// SEDD's sum of scores) are block reductions, then the update of math/sampling_step.cpp's update_impl from the same
// entry functions (uniform_posterior.h, absorbing_posterior.h, categorical.h), its Philox streams and counters:
//   DUO       the posterior as a mixture: thread 0 picks stay / uniform / predict; predict races over x̂
//             (with top-k / top-p: the posterior's entries over the truncated x̂, then the race)
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
// top-k and top-p: the cut of each row found without a sort (radix select, below), then x̂ renormalised as the host's
// filters leave it.
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

// ---- top-k and top-p on the device ------------------------------------------------------------------------------
// The host sorts each row (math/categorical.h: top_k_filter, nucleus_filter, equal values in id order). A block
// finds the same cut without sorting: a radix select over the entries' order keys (four passes of 8 bits, integer
// histograms: counts for top-k, fixed-point masses for top-p, exact in any order) gives the key of the last entry
// kept, and a scan in id order finds how many of the entries with that key are kept (the first ones by id, as the
// stable sort keeps them).

// A float's order as an unsigned key: a larger float has a larger key; -0 is +0 (the host compares them equal).
__device__ __forceinline__ uint32_t order_key(float x) {
  uint32_t b = __float_as_uint(x);
  if (b == 0x80000000u) b = 0;
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float key_float(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

constexpr double kMassScale = 70368744177664.0;  // 2^46: a row of up to 2^18 masses ≤ 1 sums below 2^64

struct SelectShared {
  unsigned long long bins[256];
  int warp_counts[32];
  unsigned long long above;
  uint32_t prefix;
  int found, cut;
};

// Among the entries j with in_set(j), the key K at which the running sum of weight(j), taken in descending key
// order, first reaches target. Returns false when the whole set sums below target; else K and the sum over the
// keys above K (`above`).
template <class InSet, class Key, class Weight>
__device__ bool radix_select(int V, InSet in_set, Key key_of, Weight weight, unsigned long long target,
                             SelectShared& sh, uint32_t& K, unsigned long long& above) {
  uint32_t prefix = 0;
  unsigned long long acc = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    const uint32_t hi = shift == 24 ? 0u : ~0u << (shift + 8);  // the bits fixed by the passes before
    for (int i = int(threadIdx.x); i < 256; i += int(blockDim.x)) sh.bins[i] = 0;
    __syncthreads();
    for (int j = int(threadIdx.x); j < V; j += int(blockDim.x)) {
      if (!in_set(j)) continue;
      const uint32_t k = key_of(j);
      if ((k & hi) == (prefix & hi)) atomicAdd(&sh.bins[(k >> shift) & 255u], weight(j));
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      sh.found = 0;
      for (int d = 255; d >= 0; --d) {
        if (acc + sh.bins[d] >= target) {
          prefix |= uint32_t(d) << shift;
          sh.found = 1;
          break;
        }
        acc += sh.bins[d];
      }
      sh.prefix = prefix;
      sh.above = acc;
    }
    __syncthreads();
    const bool found = sh.found != 0;
    prefix = sh.prefix;
    acc = sh.above;
    __syncthreads();
    if (!found) return false;
  }
  K = prefix;
  above = acc;
  return true;
}

// The id of the need-th entry (1-based) with pred(j), in id order; V when fewer have it. One block scan per
// blockDim entries (warp ballots), stopping at the chunk that holds it.
template <class Pred>
__device__ int nth_in_id_order(int V, Pred pred, unsigned long long need, SelectShared& sh) {
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, warps = int(blockDim.x) / 32;
  if (threadIdx.x == 0) sh.cut = V;
  unsigned long long base = 0;
  for (int c0 = 0; c0 < V; c0 += int(blockDim.x)) {
    const int j = c0 + int(threadIdx.x);
    const bool flag = j < V && pred(j);
    const unsigned ballot = __ballot_sync(0xffffffffu, flag);
    if (lane == 0) sh.warp_counts[warp] = __popc(ballot);
    __syncthreads();
    unsigned long long before = base, total = 0;
    for (int w = 0; w < warps; ++w) {
      if (w < warp) before += unsigned(sh.warp_counts[w]);
      total += unsigned(sh.warp_counts[w]);
    }
    if (flag && before + unsigned(__popc(ballot & ((1u << lane) - 1u))) + 1 == need) sh.cut = j;
    __syncthreads();
    base += total;
    if (base >= need) break;
  }
  __syncthreads();
  const int cut = sh.cut;
  __syncthreads();
  return cut;
}

template <class T>
__device__ T block_max_of(T v, T* scratch) {
  for (int off = 16; off > 0; off /= 2) {
    const T o = __shfl_xor_sync(0xffffffffu, v, off);
    v = o > v ? o : v;
  }
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T m = scratch[0];
  for (int w = 1; w < int(blockDim.x) / 32; ++w) m = scratch[w] > m ? scratch[w] : m;
  __syncthreads();
  return m;
}

// The log-sum-exp over the entries with in_set(j) of val(j), in T: log_softmax_row's normaliser (categorical.h).
template <class T, class InSet, class Val>
__device__ T block_logsumexp_of(int V, InSet in_set, Val val, T* scratch) {
  T mx = -INFINITY;
  for (int j = int(threadIdx.x); j < V; j += int(blockDim.x))
    if (in_set(j)) mx = val(j) > mx ? val(j) : mx;
  mx = block_max_of(mx, scratch);
  T s = 0;
  for (int j = int(threadIdx.x); j < V; j += int(blockDim.x))
    if (in_set(j)) s += std::exp(val(j) - mx);
  return mx + std::log(block_sum(s, scratch));
}

// x̂ after top-k then top-p, as top_k_filter and nucleus_filter leave the row: entry j is kept when it passes
// both cuts (key above the cut's key, or equal to it with an id up to the cut's id), and its log-probability is the
// post-processed value less each filter's renormaliser.
template <class T>
struct Truncated {
  int exclude = -1;                     // top-k's excluded id (the absorbing families' [MASK]) or -1
  bool k_cut = false, p_cut = false;    // whether each filter removes anything
  uint32_t k_key = 0, p_key = 0;
  int k_id = 0, p_id = 0;
  bool renorm_k = false, renorm_p = false;
  T lse_k = 0, lse_p = 0;
  __device__ bool kept_k(uint32_t key, int j) const {
    return j != exclude && (!k_cut || key > k_key || (key == k_key && j <= k_id));
  }
  __device__ bool kept(uint32_t key, int j) const {
    return kept_k(key, j) && (!p_cut || key > p_key || (key == p_key && j <= p_id));
  }
  __device__ T after_k(T t) const { return renorm_k ? t - lse_k : t; }
  __device__ T xhat(float value, int j) const {
    if (!kept(order_key(value), j)) return T(0);
    const T l = after_k(T(value));
    return T(exp_f64(double(renorm_p ? l - lse_p : l)));
  }
};

// The two cuts of one row whose post-processed values are value(j).
template <class T, class Value>
__device__ Truncated<T> truncate_row(int V, const DiffusionStepArgs& a, Value value, SelectShared& sh, T* scratch) {
  Truncated<T> tr;
  auto key_of = [&](int j) { return order_key(value(j)); };
  if (a.top_k > 0) {
    tr.exclude = a.family != DiffusionFamily::uniform ? a.mask_id : -1;
    tr.renorm_k = true;
    if (a.top_k < V) {  // the k largest but the excluded id: the k-th's key, then how many of its ties
      unsigned long long above = 0;
      const int ex = tr.exclude;
      tr.k_cut = radix_select(V, [&](int j) { return j != ex; }, key_of, [](int) { return 1ull; },
                              (unsigned long long)a.top_k, sh, tr.k_key, above);
      if (tr.k_cut) {
        const uint32_t kk = tr.k_key;
        tr.k_id = nth_in_id_order(V, [&](int j) { return j != ex && key_of(j) == kk; },
                                  (unsigned long long)a.top_k - above, sh);
      }
    }
    tr.lse_k = block_logsumexp_of<T>(V, [&](int j) { return tr.kept_k(key_of(j), j); },
                                     [&](int j) { return T(value(j)); }, scratch);
  }
  if (a.p_nucleus < 1) {  // the smallest prefix of the order whose mass exceeds p, the entry that crosses p kept
    tr.renorm_p = true;
    auto in_k = [&](int j) { return tr.kept_k(key_of(j), j); };
    auto l_of = [&](int j) { return tr.after_k(T(value(j))); };
    T mx = -INFINITY;
    for (int j = int(threadIdx.x); j < V; j += int(blockDim.x))
      if (in_k(j)) mx = l_of(j) > mx ? l_of(j) : mx;
    mx = block_max_of(mx, scratch);
    auto mass = [&](int j) { return (unsigned long long)(double(std::exp(l_of(j) - mx)) * kMassScale); };
    unsigned long long total = 0;
    for (int j = int(threadIdx.x); j < V; j += int(blockDim.x))
      if (in_k(j)) total += mass(j);
    total = block_sum(total, reinterpret_cast<unsigned long long*>(sh.bins));
    const unsigned long long P = (unsigned long long)(a.p_nucleus * double(total));
    unsigned long long above = 0;
    tr.p_cut = radix_select(V, in_k, key_of, mass, P + 1, sh, tr.p_key, above);
    if (tr.p_cut) {  // the tie of rank i (0-based, id order) at the cut's key is kept while above + i·m ≤ P
      const T l = tr.after_k(T(key_float(tr.p_key)));
      const unsigned long long m1 = (unsigned long long)(double(std::exp(l - mx)) * kMassScale);
      const uint32_t pk = tr.p_key;
      tr.p_id = nth_in_id_order(V, [&](int j) { return in_k(j) && key_of(j) == pk; }, (P - above) / m1 + 1, sh);
    }
    tr.lse_p = block_logsumexp_of<T>(V, [&](int j) { return tr.kept(key_of(j), j); }, l_of, scratch);
  }
  return tr;
}

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
  DUO_SHARED(SelectShared, select, 1);
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
    if (a.family == DiffusionFamily::uniform && !a.filtered()) {
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
    // top-k / top-p: x̂ truncated (not SEDD, whose output is a score).
    Truncated<T> tr;
    if (a.filtered()) tr = truncate_row<T>(V, a, [&](int j) { return out(o, j); }, select[0], kv);
    const T xi = a.filtered() ? tr.xhat(out(o, zt), zt) : T(0);  // DUO: x̂ at the current token
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
        const float v = out(o, j);
        T w;
        if (a.family == DiffusionFamily::sedd) {
          w = sedd_analytic_entry(sedd, T(v), j, zt, m, a.final_step, sum_r);
        } else {
          const T xhat = a.filtered() ? tr.xhat(v, j) : T(exp_f64(double(T(v))));
          if (a.family != DiffusionFamily::uniform)
            w = psi ? absorbing_psi_posterior_entry(xhat, j, zt, m, a_t, a_s, kappa)
                    : absorbing_posterior_entry(xhat, j, zt, m, a_t, a_s);
          else if (!a.filtered())
            w = xhat;  // the mixture's predict component: x̂ itself
          else
            w = psi ? duo_psi_posterior_entry(xhat, xi, j == zt, V, a_t, a_s, kappa)
                    : duo_posterior_entry(xhat, xi, j == zt, V, a_t, a_s);
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
