// The curriculum's τ schedule, per-sequence scalars and dense latent (docs/curriculum.md §2–§4).
#include "algo/curriculum.h"

#include <algorithm>
#include <cmath>
#include <vector>
#include "algo/transform_lookup.h"
#include "core/error.h"

namespace duo {

void CurriculumSettings::validate() const {
  const std::string hint_gamma = "the reference's runs use gamma_min = -3.55, gamma_max = -1.85 (OWT) or -3.5, -1.75 (LM1B)";
  DUO_CHECK(std::isfinite(gamma_min) && std::isfinite(gamma_max), "algo.curriculum.gamma_min/gamma_max",
            str("the Gaussian log-SNR range must be finite, got [", gamma_min, ", ", gamma_max, "]"), hint_gamma);
  DUO_CHECK(gamma_min < gamma_max, "algo.curriculum.gamma_min",
            str("gamma_min = ", gamma_min, " must be below gamma_max = ", gamma_max,
                " (γ(t) = γmin + t(γmax − γmin) must increase so that α_t decreases)"),
            hint_gamma);
  DUO_CHECK(std::isfinite(tau_log10_start) && std::isfinite(tau_log10_end), "algo.curriculum.gumbel_tau_log10_*",
            str("log10 τ must be finite, got start ", tau_log10_start, ", end ", tau_log10_end),
            "the reference's runs use -3 for both (τ = 0.001 throughout)");
  DUO_CHECK(start >= 0 && end >= start, "algo.curriculum.start/end",
            str("need 0 <= start <= end, got start ", start, ", end ", end),
            "start is where τ begins to anneal, end the last curriculum step (e.g. start 0, end 500000)");
}

double inverse_temperature(const CurriculumSettings& s, int64_t step) {
  double log10_tau;
  if (step < s.start)
    log10_tau = s.tau_log10_start;
  else if (step < s.end)  // start ≤ step < end, so end > start here
    log10_tau = s.tau_log10_start +
                (s.tau_log10_end - s.tau_log10_start) * (double)(step - s.start) / (double)(s.end - s.start);
  else
    log10_tau = -10.0;  // the reference's value at and after end (docs/differences.md §3.7: step == end still trains on it)
  return std::pow(10.0, -log10_tau);
}

bool curriculum_active(const CurriculumSettings& s, int64_t step, bool training) { return training && step <= s.end; }

void gaussian_scales(double gamma, double* alpha_tilde, double* sigma_tilde) {
  // sigmoid(−γ) = 1/(1 + e^γ), sigmoid(γ) = 1/(1 + e^−γ): each form is exact in relative terms for its own sign.
  *alpha_tilde = std::sqrt(1.0 / (1.0 + std::exp(gamma)));
  *sigma_tilde = std::sqrt(1.0 / (1.0 + std::exp(-gamma)));
}

CurriculumSequence curriculum_sequence(const TransformLookup& lookup, const CurriculumSettings& s, double t) {
  s.validate();
  const IntegralTable& table = lookup.table();
  DUO_CHECK(table.gamma_min() <= s.gamma_min && s.gamma_max <= table.gamma_max(), "algo.curriculum.gamma_min/gamma_max",
            str("the curriculum range [", s.gamma_min, ", ", s.gamma_max, "] is not inside the integral table's grid [",
                table.gamma_min(), ", ", table.gamma_max(), "]: α would be clipped to the grid's edge"),
            str("narrow the range, or build a table that covers it: ",
                IntegralTable::regenerate_command(lookup.model_vocab(), std::min(s.gamma_min, table.gamma_min()),
                                                  std::max(s.gamma_max, table.gamma_max()), table.num_points(),
                                                  "integral/<name>.bin")));
  DUO_CHECK(t >= 0.0 && t <= 1.0, "curriculum time", str("t = ", t, " is outside [0, 1]"),
            "times come from the stratified sampler of docs/diffusion.md §4");
  CurriculumSequence q;
  q.t = t;
  q.gamma = s.gamma_min + t * (s.gamma_max - s.gamma_min);
  ScheduleValue v = lookup.at_time(t, s.gamma_min, s.gamma_max);
  q.alpha = v.alpha;
  q.dalpha = v.dalpha_dt;
  DUO_CHECK(q.alpha > 0.0, "curriculum time",
            str("α_t = ", q.alpha, " at γ = ", q.gamma, ": the time input −log α_t would be infinite"),
            "raise gamma_min/lower gamma_max so that the curriculum stays where α_t > 0");
  gaussian_scales(q.gamma, &q.alpha_tilde, &q.sigma_tilde);
  q.sigma = -std::log(q.alpha);
  return q;
}

void CurriculumBatch::validate() const {
  DUO_CHECK(B > 0 && L > 0, "curriculum batch", str("empty batch B = ", B, ", L = ", L), "");
  DUO_CHECK(V >= 2, "curriculum batch", str("vocabulary V = ", V, " must be at least 2"), "");
  DUO_CHECK(x != nullptr && seq != nullptr, "curriculum batch", "tokens or per-sequence scalars missing",
            "set CurriculumBatch::x and ::seq");
  DUO_CHECK(inverse_tau > 0 && std::isfinite(inverse_tau), "curriculum batch",
            str("1/τ = ", inverse_tau, " must be positive and finite"), "use inverse_temperature(settings, step)");
  for (int64_t b = 0; b < B; ++b) {
    const CurriculumSequence& q = seq[b];
    DUO_CHECK(q.alpha_tilde > 0 && q.sigma_tilde > 0 && std::fabs(q.alpha_tilde * q.alpha_tilde +
                                                                  q.sigma_tilde * q.sigma_tilde - 1.0) < 1e-12,
              "curriculum batch", str("sequence ", b, ": α̃ = ", q.alpha_tilde, ", σ̃ = ", q.sigma_tilde,
                                      " are not Gaussian scales (α̃² + σ̃² = 1)"),
              "fill the per-sequence scalars with curriculum_sequence()");
  }
  for (int64_t r = 0; r < B * L; ++r)
    DUO_CHECK(x[r] >= 0 && x[r] < V, "curriculum batch", str("token ", x[r], " at row ", r, " is outside [0, ", V, ")"),
              "the data's vocabulary must match the model's");
}

void simple_latent_rows(const CurriculumBatch& batch, int64_t row0, int64_t row1, float* y, int32_t* z) {
  batch.validate();
  DUO_CHECK(0 <= row0 && row0 <= row1 && row1 <= batch.B * batch.L, "simple_latent_rows",
            str("rows [", row0, ", ", row1, ") outside the batch's ", batch.B * batch.L, " rows"), "");
  const int64_t V = batch.V;
  const float beta = (float)batch.inverse_tau;
#pragma omp parallel
  {
    std::vector<float> eps((size_t)V);
#pragma omp for schedule(static)
    for (int64_t r = row0; r < row1; ++r) {
      const CurriculumSequence& q = batch.seq[r / batch.L];
      const int32_t zr = relaxation_row(batch.noise, r, V, batch.x[r], (float)q.alpha_tilde, (float)q.sigma_tilde,
                                        beta, eps.data(), y ? y + (r - row0) * V : nullptr);
      if (z) z[r - row0] = zr;
    }
  }
}

SimpleMemory simple_memory(int64_t B, int64_t L, int64_t V, int64_t chunk_rows) {
  DUO_CHECK(B > 0 && L > 0 && V > 0 && chunk_rows > 0, "simple_memory",
            str("B, L, V and chunk_rows must be positive, got ", B, ", ", L, ", ", V, ", ", chunk_rows), "");
  SimpleMemory m;
  const size_t rows = (size_t)(B * L);
  const size_t chunk = std::min(rows, (size_t)chunk_rows);
  m.soft_logits = chunk * (size_t)V * sizeof(float);
  m.latents = rows * sizeof(int32_t);
  m.total = m.soft_logits + m.latents;
  m.reference = 4 * rows * (size_t)V * sizeof(float);
  return m;
}

}  // namespace duo
