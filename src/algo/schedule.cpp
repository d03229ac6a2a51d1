#include "algo/schedule.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace duo {

Schedule Schedule::from_name(const std::string& name, double eps, bool reference_bug) {
  DUO_CHECK(eps >= 0.0 && eps < 1.0, "noise.eps", str("must lie in [0, 1), got ", eps),
            "the reference uses 1e-3 (configs/noise/*.yaml)");
  Schedule s;
  s.eps = eps;
  s.reference_bug = reference_bug;
  if (name == "log-linear" || name == "loglinear") {
    s.kind = ScheduleKind::LogLinear;
  } else if (name == "cosine") {
    s.kind = ScheduleKind::Cosine;
  } else {
    fail("noise.type", str("unknown noise schedule '", name, "'"), "use log-linear (default) or cosine");
  }
  return s;
}

// log-linear: α = 1 − t',            α' = −(1 − ε)
// cosine:     α = 1 − cos(π/2 (1−t')), α' = −(π/2) sin(π/2 (1−t')) · (1 − ε)   [(1 − ε) dropped by the reference]
double Schedule::alpha(double t) const {
  double tp = (1.0 - eps) * t;
  if (kind == ScheduleKind::LogLinear) return 1.0 - tp;
  return 1.0 - std::cos(std::numbers::pi / 2 * (1.0 - tp));
}

double Schedule::dalpha(double t) const {
  if (kind == ScheduleKind::LogLinear) return -(1.0 - eps);
  double tp = (1.0 - eps) * t;
  double chain = reference_bug ? 1.0 : (1.0 - eps);
  return -std::numbers::pi / 2 * std::sin(std::numbers::pi / 2 * (1.0 - tp)) * chain;
}

double Schedule::sigma(double t) const { return -std::log(alpha(t)); }

double Schedule::t_for_alpha(double a) const {
  if (kind == ScheduleKind::LogLinear) return 1.0 - a;
  return 1.0 - 2.0 / std::numbers::pi * std::acos(1.0 - a);
}

double discrete_time(double t, int T) {
  DUO_CHECK(T > 0, "algo.T", str("discrete time needs T > 0, got ", T), "D3PM uses T = 1000; T = 0 is continuous time");
  return (double)(int64_t)(t * T) / T + 1.0 / T;
}

std::vector<double> TimeSampler::sample(const Philox& rng, int64_t n, int64_t offset, int64_t count) const {
  DUO_CHECK(n > 0 && offset >= 0 && count >= 0 && offset + count <= n, "time sampling",
            str("slice [", offset, ", ", offset + count, ") of a batch of ", n), "the slice must lie inside the batch");
  std::vector<double> t(count);
  for (int64_t k = 0; k < count; ++k) {
    int64_t i = offset + k;
    t[k] = time_from_uniform(rng.uniform_double(i), i, n, antithetic, sampling_eps);
  }
  return t;
}

std::vector<double> TimeSampler::from_uniforms(const std::vector<double>& u, int64_t offset, int64_t count) const {
  int64_t n = (int64_t)u.size();
  DUO_CHECK(n > 0 && offset >= 0 && count >= 0 && offset + count <= n, "time sampling",
            str("slice [", offset, ", ", offset + count, ") of a batch of ", n), "the slice must lie inside the batch");
  std::vector<double> t(count);
  for (int64_t k = 0; k < count; ++k)
    t[k] = time_from_uniform(u[offset + k], offset + k, n, antithetic, sampling_eps);
  return t;
}

BatchSlice batch_slice(int64_t global_batch, int world_size, int rank, int accum_steps, int micro_step) {
  DUO_CHECK(world_size > 0 && rank >= 0 && rank < world_size, "batch slice",
            str("rank ", rank, " of world size ", world_size), "rank must lie in [0, world_size)");
  DUO_CHECK(accum_steps > 0 && micro_step >= 0 && micro_step < accum_steps, "batch slice",
            str("micro-step ", micro_step, " of ", accum_steps, " accumulation steps"),
            "micro_step must lie in [0, accumulate_grad_batches)");
  int64_t parts = (int64_t)world_size * accum_steps;
  DUO_CHECK(global_batch > 0 && global_batch % parts == 0, "loader.global_batch_size",
            str(global_batch, " is not divisible by devices × accumulation steps = ", parts),
            "choose loader.global_batch_size = devices × accumulate_grad_batches × loader.batch_size");
  int64_t local = global_batch / parts;
  return {((int64_t)rank * accum_steps + micro_step) * local, local};
}

}  // namespace duo
