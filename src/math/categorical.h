// The categorical sampling primitive (docs/sampling.md §1, `sample_categorical`), top-p (nucleus) filtering
// (docs/sampling.md §6) and top-k filtering (docs/sampling.md §6.1).
//
// Sampling is an exponential race: with u ~ U(0,1) per entry and g = 1e-10 - log(u + 1e-10) (≈ Exp(1)),
// argmax_v p_v / g_v is distributed as p / sum(p) (equivalent to Gumbel-max on log p). The weights need not be
// normalised. Determinism: u for entry v of sample position `pos` is Philox counter pos * V + v of the step's
// stream, so a position's draw depends only on (seed, step, pos), never on thread count or order.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>
#include "core/hd.h"
#include "core/philox.h"

namespace duo {

// The race key p / g of one entry, given its uniform u.
template <class T>
DUO_HD T exp_race_key(T p, T u) {
  const T g = T(1e-10) - std::log(u + T(1e-10));
  return p / g;
}

// u for (counter) in the precision of the sampler: float64 uses 53 random bits (curand_uniform_double order),
// fp32 uses curand_uniform.
template <class T>
inline T philox_uniform(const Philox& rng, uint64_t counter) {
  if constexpr (sizeof(T) == sizeof(double)) return (T)rng.uniform_double(counter);
  else return (T)rng.uniform(counter);
}

// The uniforms of counters c, c+1, ... in the sampler's precision, each Philox block computed once: a block holds
// two float64 uniforms or four float32 ones (the same values as philox_uniform, by construction).
template <class T>
class UniformRun {
 public:
  explicit UniformRun(const Philox& rng) : rng_(rng) {}
  T operator()(uint64_t counter) {
    constexpr uint64_t per_block = sizeof(T) == sizeof(double) ? 2 : 4;
    const uint64_t j = counter / per_block;
    if (j != cached_) {
      block_ = rng_.block(j);
      cached_ = j;
    }
    if constexpr (sizeof(T) == sizeof(double)) {
      const int k = (int)(counter % 2) * 2;
      return (T)Philox::to_uniform_double(block_.v[k], block_.v[k + 1]);
    } else {
      return (T)Philox::to_uniform(block_.v[counter % 4]);
    }
  }

 private:
  const Philox& rng_;
  uint64_t cached_ = ~uint64_t(0);
  PhiloxBlock block_{};
};

// One draw from weights w[0..V) (non-negative, unnormalised). Ties (e.g. all-zero weights) go to the lowest id.
// Most entries cannot win, and their logarithm is skipped: since -log x >= 1 - x, the race key w / g is at most
// w / (1 - u), so an entry with w <= best · (1 - u) loses to the best key so far. The check keeps a margin of
// 1e-4, far above the rounding of g in either precision, so the draw is the one the full race gives, bit for bit.
template <class T>
inline int32_t sample_categorical(const T* w, int64_t V, const Philox& rng, uint64_t pos) {
  int32_t best = 0;
  T best_key = -std::numeric_limits<T>::infinity();
  UniformRun<T> uniform(rng);
  for (int64_t v = 0; v < V; ++v) {
    const T u = uniform((uint64_t)(pos * V + v));
    if (best_key > T(0) && w[v] <= best_key * (T(1) - u) * T(1 - 1e-4)) continue;
    const T key = exp_race_key(w[v], u);
    if (key > best_key) { best_key = key; best = (int32_t)v; }
  }
  return best;
}

// First index of the largest entry (torch.argmax picks the first maximum as well).
template <class T>
inline int32_t argmax_row(const T* x, int64_t V) {
  int64_t best = 0;
  for (int64_t v = 1; v < V; ++v)
    if (x[v] > x[best]) best = v;
  return (int32_t)best;
}

// In-place log-softmax of a row: l - logsumexp(l). Entries at -inf stay -inf.
template <class T>
inline void log_softmax_row(T* l, int64_t V) {
  T mx = *std::max_element(l, l + V);
  T sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp(l[v] - mx);
  const T lse = mx + std::log(sum);
  for (int64_t v = 0; v < V; ++v) l[v] -= lse;
}

// Top-p filtering of a row of log-probabilities, in place (docs/sampling.md §6): sort descending, cumulative softmax, drop the
// entries whose cumulative probability exceeds p -- shifted right by one, so the token that crosses p is kept
// and the top token always is -- set them to -inf, then renormalise (log(exp(l) / sum exp(l))).
// order: scratch of size V. Equal values keep their id order (stable sort), so the result is deterministic.
template <class T>
inline void nucleus_filter(T* logp, int64_t V, double p, std::vector<int32_t>& order) {
  order.resize((size_t)V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logp[a] > logp[b]; });
  const T mx = logp[order[0]];
  T total = 0;
  for (int64_t k = 0; k < V; ++k) total += std::exp(logp[order[k]] - mx);
  T cum = 0;
  bool previous_exceeds = false;  // the shifted "remove" flag: entry k is removed if cum_{k-1} > p
  for (int64_t k = 0; k < V; ++k) {
    const int32_t v = order[k];
    cum += std::exp(logp[v] - mx) / total;
    const bool exceeds = cum > (T)p;
    if (previous_exceeds) logp[v] = -std::numeric_limits<T>::infinity();
    previous_exceeds = exceeds;
  }
  log_softmax_row(logp, V);
}

// Top-k filtering of a row of log-probabilities, in place (docs/sampling.md §6.1): keep the k largest entries
// (equal values in id order, so the result is deterministic), set the others to -inf, renormalise. k = 1 is the
// one-hot of the first argmax. exclude >= 0: an id that is never kept (the absorbing families' [MASK], whose
// posterior entry does not come from x̂). order: scratch of size V.
template <class T>
inline void top_k_filter(T* logp, int64_t V, int64_t k, int32_t exclude, std::vector<int32_t>& order) {
  if (exclude >= 0 && exclude < V) logp[exclude] = -std::numeric_limits<T>::infinity();
  if (k >= V) {
    log_softmax_row(logp, V);
    return;
  }
  order.resize((size_t)V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logp[a] > logp[b]; });
  for (int64_t r = k; r < V; ++r) logp[order[(size_t)r]] = -std::numeric_limits<T>::infinity();
  log_softmax_row(logp, V);
}

}  // namespace duo
