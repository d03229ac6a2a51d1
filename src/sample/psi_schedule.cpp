// Sampling time grids and Ψ κ schedules: see psi_schedule.h.
#include "sample/psi_schedule.h"

#include <algorithm>
#include <cmath>
#include "core/error.h"

namespace duo {

namespace {

// The last dash-separated field of a mode / profile as a number ("max-capped-0.05" -> 0.05).
double parse_field(const std::string& text, size_t field_start, const std::string& what) {
  const std::string field = text.substr(field_start);
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(field, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != field.size() || !std::isfinite(value))
    fail(what, str("cannot read a number from '", field, "' in '", text, "'"),
         "write the number as the last dash-separated field, e.g. max-capped-0.01");
  return value;
}

double last_field(const std::string& mode) {
  const size_t dash = mode.rfind('-');
  if (dash == std::string::npos) fail("sampling.psi mode", str("unknown mode '", mode, "'"), "");
  return parse_field(mode, dash + 1, "sampling.psi mode");
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

struct Segments { int64_t n_hi, n_mid; };

Segments segment_sizes(int64_t n, const PsiConfig& cfg) {
  const int64_t n_hi = python_round(cfg.high_frac * (double)n);
  const int64_t n_mid = python_round(cfg.middle_frac * (double)n);
  if (cfg.high_frac < 0 || cfg.middle_frac < 0 || n_hi + n_mid > n)
    fail("sampling.psi", str("segment fractions high_frac=", cfg.high_frac, " middle_frac=", cfg.middle_frac,
                             " give ", n_hi, " + ", n_mid, " of ", n, " grid points"),
         "use non-negative fractions with high_frac + middle_frac <= 1");
  return {n_hi, n_mid};
}

}  // namespace

int64_t python_round(double x) {
  const double fl = std::floor(x);
  const double diff = x - fl;
  if (diff > 0.5) return (int64_t)fl + 1;
  if (diff < 0.5) return (int64_t)fl;
  return ((int64_t)fl % 2 == 0) ? (int64_t)fl : (int64_t)fl + 1;
}

std::vector<double> linspace(double a, double b, int64_t n) {
  std::vector<double> out((size_t)std::max<int64_t>(n, 0));
  if (n == 1) out[0] = a;
  if (n <= 1) return out;
  const double step = (b - a) / (double)(n - 1);
  // From both ends (as torch does), so both end points are exact.
  for (int64_t i = 0; i < n; ++i) out[(size_t)i] = (i < n / 2) ? a + step * (double)i : b - step * (double)(n - 1 - i);
  return out;
}

std::vector<double> sampling_time_grid(int64_t steps, double eps, bool psi, const PsiConfig& cfg,
                                       const AlphaSchedule& schedule) {
  DUO_CHECK(steps >= 1, "sampling.steps", str("got ", steps, " steps"), "use at least one sampling step");
  const int64_t n = steps + 1;
  if (!psi || cfg.time_profile == "linear") return linspace(1.0, eps, n);
  const std::string& profile = cfg.time_profile;
  if (!starts_with(profile, "linear-constant-linear-"))
    fail("sampling.psi.time_profile", str("unknown profile '", profile, "'"),
         "use linear or linear-constant-linear-<c>[-inv], e.g. linear-constant-linear-0.9-inv");
  // The 4th dash-separated field is c; "-inv" means c is an alpha level: c <- t_for_alpha(c).
  const size_t start = std::string("linear-constant-linear-").size();
  const bool inv = profile.find("inv") != std::string::npos;
  const size_t end = inv ? profile.rfind("-inv") : profile.size();
  if (end == std::string::npos || end < start)
    fail("sampling.psi.time_profile", str("cannot parse '", profile, "'"), "e.g. linear-constant-linear-0.9-inv");
  double c = parse_field(profile.substr(0, end), start, "sampling.psi.time_profile");
  if (inv) {
    DUO_CHECK(bool(schedule.t_for_alpha), "sampling.psi.time_profile", "an -inv profile needs the schedule's inverse",
              "give AlphaSchedule::t_for_alpha (log-linear: t = 1 - alpha)");
    c = schedule.t_for_alpha(c);
  }
  const Segments seg = segment_sizes(n, cfg);
  std::vector<double> grid = linspace(1.0, c, seg.n_hi);
  grid.insert(grid.end(), (size_t)seg.n_mid, c);
  const std::vector<double> low = linspace(c, eps, n - seg.n_hi - seg.n_mid);
  grid.insert(grid.end(), low.begin(), low.end());
  return grid;
}

std::vector<double> segment_kappas(const std::string& mode, const double* tau, int64_t m,
                                   const AlphaSchedule& schedule, bool reference_bug) {
  if (mode == "pure-posterior") return std::vector<double>((size_t)m, 1.0);
  if (mode == "pure-pc") return std::vector<double>((size_t)m, 0.0);
  const double eta = last_field(mode);
  if (starts_with(mode, "constant-") && !starts_with(mode, "constant-remdm-"))
    return std::vector<double>((size_t)m, eta);
  const bool capped = starts_with(mode, "max-capped-"), rescale = starts_with(mode, "max-rescale-"),
             remdm = starts_with(mode, "constant-remdm-");
  if (!capped && !rescale && !remdm)
    fail("sampling.psi mode", str("unknown mode '", mode, "'"),
         "use pure-posterior, pure-pc, constant-<eta>, max-capped-<eta>, max-rescale-<eta> or constant-remdm-<eta>");
  std::vector<double> kappa;
  for (int64_t j = 0; j + 1 < m; ++j) {
    const double a_t = schedule.alpha(tau[j]), a_s = schedule.alpha(tau[j + 1]);
    // sigma: the probability that an unmasked token is re-masked in this step (ReMDM).
    double sigma = eta;
    if (capped && a_t != 0) sigma = std::min(eta, (1 - a_s) / a_t);
    if (rescale && a_t > 0) sigma = eta * std::min(reference_bug ? eta : 1.0, (1 - a_s) / a_t);
    kappa.push_back(std::clamp(1 - sigma / (1 - a_s), 0.0, 1.0));
  }
  if (!kappa.empty()) kappa.push_back(1.0);  // the segment's last step is a pure posterior step
  return kappa;
}

std::vector<double> psi_kappas(const std::vector<double>& grid, const PsiConfig& cfg, const AlphaSchedule& schedule) {
  const int64_t n = (int64_t)grid.size();
  const Segments seg = segment_sizes(n, cfg);
  const int64_t bounds[4] = {0, seg.n_hi, seg.n_hi + seg.n_mid, n};
  const std::string* modes[3] = {&cfg.high_mode, &cfg.middle_mode, &cfg.low_mode};
  std::vector<double> kappa;
  for (int k = 0; k < 3; ++k) {
    const std::vector<double> part =
        segment_kappas(*modes[k], grid.data() + bounds[k], bounds[k + 1] - bounds[k], schedule, cfg.reference_bug);
    kappa.insert(kappa.end(), part.begin(), part.end());
  }
  // A ReMDM-style segment of exactly one time point has no step pair and yields no kappa (the reference's
  // length assertion fires there too).
  if ((int64_t)kappa.size() != n)
    fail("sampling.psi", str("the kappa schedule has ", kappa.size(), " entries for ", n, " grid points"),
         "a segment with a ReMDM-style mode (max-capped, max-rescale, constant-remdm) needs 0 or >= 2 grid points; "
         "change the fractions or the step count");
  for (double k : kappa)
    DUO_CHECK(k >= 0 && k <= 1, "sampling.psi", str("kappa ", k, " is outside [0, 1]"),
              "constant-<eta> takes eta in [0, 1]");
  return kappa;
}

}  // namespace duo
