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
#include "core/simd.h"

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

// u[0..n) = the uniforms of counters first, first+1, ... in the sampler's precision (the values philox_uniform
// gives), each Philox block computed once: a block holds two float64 uniforms or four float32 ones. The loop
// over blocks has no branches, so it vectorises in a DUO_SIMD_CLONES caller (Philox is integer arithmetic).
template <class T>
DUO_INLINE_INTO_CLONES void philox_uniforms(const Philox& rng, uint64_t first, int64_t n, T* u) {
  constexpr int64_t per_block = sizeof(T) == sizeof(double) ? 2 : 4;
  int64_t i = 0;
  for (; i < n && (first + (uint64_t)i) % per_block != 0; ++i) u[i] = philox_uniform<T>(rng, first + (uint64_t)i);
  const uint64_t j0 = (first + (uint64_t)i) / per_block;
  const int64_t whole = (n - i) / per_block;
  T* out = u + i;
  for (int64_t j = 0; j < whole; ++j) {
    const PhiloxBlock b = rng.block(j0 + (uint64_t)j);
    if constexpr (sizeof(T) == sizeof(double)) {
      out[2 * j] = Philox::to_uniform_double(b.v[0], b.v[1]);
      out[2 * j + 1] = Philox::to_uniform_double(b.v[2], b.v[3]);
    } else {
      for (int k = 0; k < 4; ++k) out[4 * j + k] = Philox::to_uniform(b.v[k]);
    }
  }
  for (i += whole * per_block; i < n; ++i) u[i] = philox_uniform<T>(rng, first + (uint64_t)i);
}

// One draw from weights w[0..V) (non-negative, unnormalised): the entry with the largest race key w / g, ties to
// the lowest id (e.g. all-zero weights give 0). The logarithm in g is computed only for the few entries that can
// win. With y = u + 1e-10, -log y is at least 1 - y and at most (1 - y) / y, so every key lies in
//   [w / (1e-10 + (1 - y) / y), w / (1 - u)].
// The winner's key is at least the largest lower bound `lo` of any entry, so an entry whose upper bound is below
// lo cannot win; the keys of the others are computed exactly. Both bounds keep a margin of 1e-4, far above
// their rounding in either precision, so the draw is the one the full race gives, bit for bit (a test compares).
// Every pass but the last few exact keys is branch-free over the row, so it vectorises in a DUO_SIMD_CLONES caller.
// scratch: grown to 2 V (the row's uniforms and lower bounds).
template <class T>
DUO_INLINE_INTO_CLONES int32_t sample_categorical(const T* w, int64_t V, const Philox& rng, uint64_t pos,
                                                  std::vector<T>& scratch) {
  if ((int64_t)scratch.size() < 2 * V) scratch.resize((size_t)(2 * V));
  T* u = scratch.data();
  T* lower = u + V;
  philox_uniforms(rng, pos * (uint64_t)V, V, u);
  for (int64_t v = 0; v < V; ++v) {
    const T y = u[v] + T(1e-10);
    lower[v] = w[v] * y / (T(1e-10) * y + (T(1) - y));
  }
  constexpr int kLanes = 8;  // the maximum in independent lanes: an elementwise max, which vectorises
  T lane[kLanes] = {};
  int64_t v = 0;
  for (; v + kLanes <= V; v += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] = lower[v + l] > lane[l] ? lower[v + l] : lane[l];
  T lo = 0;
  for (; v < V; ++v) lo = std::max(lo, lower[v]);
  for (int l = 0; l < kLanes; ++l) lo = std::max(lo, lane[l]);
  lo *= T(1 - 1e-4);
  // Exact keys of the entries whose upper bound reaches lo (w / (1 - u) >= lo, with the margin), in id order; a
  // chunk of 16 entries with none is skipped after one vectorised test.
  constexpr int64_t kChunk = 16;
  int32_t best = 0;
  T best_key = -std::numeric_limits<T>::infinity();
  for (int64_t v0 = 0; v0 < V; v0 += kChunk) {
    const int64_t end = std::min(V, v0 + kChunk);
    if (end - v0 == kChunk) {
      int any = 0;
      for (int64_t l = 0; l < kChunk; ++l) any |= (int)(w[v0 + l] * T(1 + 1e-4) >= lo * (T(1) - u[v0 + l]));
      if (!any) continue;
    }
    for (v = v0; v < end; ++v) {
      if (!(w[v] * T(1 + 1e-4) >= lo * (T(1) - u[v]))) continue;
      const T key = exp_race_key(w[v], u[v]);
      if (key > best_key) { best_key = key; best = (int32_t)v; }
    }
  }
  return best;
}

template <class T>
inline int32_t sample_categorical(const T* w, int64_t V, const Philox& rng, uint64_t pos) {
  std::vector<T> u;
  return sample_categorical(w, V, rng, pos, u);
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
