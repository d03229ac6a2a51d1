// Noise schedules and training-time sampling (docs/diffusion.md §3, §4).
//
// Every diffusion algorithm (DUO, MDLM, SEDD, D3PM) needs, per sequence, a time t in [1e-3, 1], the discrete
// signal level α_t, its derivative α'_t (the ELBO weight) and the network's conditioning scalar
// s_t = −log α_t. The per-token losses in loss_*.h take α_t and α'_t as plain numbers; this file is where
// those numbers come from.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/hd.h"
#include "core/philox.h"

namespace duo {

enum class ScheduleKind { LogLinear, Cosine };

// α_t for t ∈ [0, 1]; time is first shrunk, t' = (1 − ε) t, so α_1 = ε (log-linear) and α_0 = 1.
struct Schedule {
  ScheduleKind kind = ScheduleKind::LogLinear;
  double eps = 1e-3;  // noise.eps
  // Cosine only: the reference returns α' without the chain factor (1 − ε) of t' = (1 − ε) t (docs/differences.md §2.2).
  // false = the true derivative (default); true = the reference's numbers (for bit-matching its losses).
  bool reference_bug = false;

  // "log-linear" | "cosine" (the reference's `noise.type`); throws duo::Error with a HINT otherwise.
  static Schedule from_name(const std::string& name, double eps = 1e-3, bool reference_bug = false);

  double alpha(double t) const;   // α_t
  double dalpha(double t) const;  // α'_t = dα/dt (≤ 0)
  // s_t = −log α_t: the "sigma" the time-conditioned networks see (SEDD's σ̄ too).
  double sigma(double t) const;
  // The reference's get_t_for_alpha: the inverse of α ignoring ε (docs/diffusion.md §3, docs/differences.md §2.2), kept as is.
  double t_for_alpha(double alpha) const;
};

// D3PM's discrete time (docs/diffusion.md §4.3): t ← ⌊tT⌋/T + 1/T (float → int truncation).
double discrete_time(double t, int T);

// Stratified ("antithetic") time sampling over a GLOBAL batch of n sequences (docs/diffusion.md §4):
//   e_i = (u_i/n + i/n) mod 1   (or e_i = u_i without `antithetic`),   t_i = (1 − ε_s) e_i + ε_s.
// u_i is uniform_double(i) of `rng`, so time i of a step is the same on every rank and micro-step layout.
struct TimeSampler {
  bool antithetic = true;      // training.antithetic_sampling
  double sampling_eps = 1e-3;  // training.sampling_eps

  // The time of element i of the global batch of n, given its uniform draw u ∈ [0, 1).
  DUO_HD static double time_from_uniform(double u, int64_t i, int64_t n, bool antithetic, double sampling_eps) {
    double e = u;
    if (antithetic) {
      e = u / (double)n + (double)i / (double)n;
      e -= (double)(int64_t)e;  // mod 1 (e ≥ 0)
    }
    return (1.0 - sampling_eps) * e + sampling_eps;
  }
  // Times for the global-batch elements [offset, offset + count) of a batch of n.
  std::vector<double> sample(const Philox& rng, int64_t n, int64_t offset, int64_t count) const;
  // Same, from given uniforms u[0..n) (used by the test vector of docs/test_vectors.md §1 and by callers with their own draws).
  std::vector<double> from_uniforms(const std::vector<double>& u, int64_t offset, int64_t count) const;
};

// Which contiguous slice of the global batch a (rank, micro-step) trains on: the reference splits the global
// vector into world_size chunks (nodes, then devices: global rank = node_rank·devices + local_rank) and each
// chunk into accum_steps chunks. Requires n = world_size · accum_steps · local_batch exactly.
struct BatchSlice {
  int64_t offset = 0;
  int64_t count = 0;
};
BatchSlice batch_slice(int64_t global_batch, int world_size, int rank, int accum_steps, int micro_step);

}  // namespace duo
