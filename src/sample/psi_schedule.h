// Sampling time grids and the Ψ-sampler κ schedules (docs/sampling.md §1, §7.2–§7.3).
//
// The noise schedule is taken as plain functions (alpha(t) and its inverse), so this module does not depend
// on any particular schedule implementation: the log-linear alpha_t = 1 - (1 - eps) t is one lambda away.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace duo {

struct AlphaSchedule {
  std::function<double(double)> alpha;        // alpha(t), t in [0, 1], decreasing
  std::function<double(double)> t_for_alpha;  // inverse (the reference's get_t_for_alpha); only "-inv" profiles
};

// sampling.psi.* of the reference.
struct PsiConfig {
  // "linear" or "linear-constant-linear-<c>[-inv]" (c is a time, or an alpha level with -inv).
  std::string time_profile = "linear";
  double high_frac = 0.45, middle_frac = 0.5;  // segment fractions of the S+1 grid points
  // Per segment: pure-posterior | pure-pc | constant-<eta> | max-capped-<eta> | max-rescale-<eta> |
  // constant-remdm-<eta>.
  std::string high_mode = "pure-posterior", middle_mode = "pure-posterior", low_mode = "pure-posterior";
  // max-rescale-eta: false (default) = ReMDM's sigma = eta * min(1, (1 - a_s)/a_t); true = the reference code's
  // eta * min(eta, (1 - a_s)/a_t) (docs/differences.md §4.1), to reproduce its numbers.
  bool reference_bug = false;
};

// Python's round(): halves go to the even neighbour (round(128.5) = 128), as the reference's segment sizes.
int64_t python_round(double x);

// n points from a to b inclusive (torch.linspace; n = 1 gives {a}).
std::vector<double> linspace(double a, double b, int64_t n);

// The S+1 times t_0 = 1 > ... > t_S = eps: linspace(1, eps, S+1), or with psi = true the configured profile:
// linspace(1, c, n_hi) ++ [c] * n_mid ++ linspace(c, eps, n - n_hi - n_mid), n = S+1,
// n_hi = round(high_frac n), n_mid = round(middle_frac n). Non-Ψ predictors always use the linear grid.
std::vector<double> sampling_time_grid(int64_t steps, double eps, bool psi, const PsiConfig& cfg,
                                       const AlphaSchedule& schedule);

// κ of one segment of m grid points tau (the reference's _mode_to_psi_kappas). ReMDM-style modes give m - 1
// values from consecutive pairs, kappa_j = clip(1 - sigma_j / (1 - a_s), 0, 1), plus a final 1 (m = 0: none).
std::vector<double> segment_kappas(const std::string& mode, const double* tau, int64_t m,
                                   const AlphaSchedule& schedule, bool reference_bug);

// κ for the whole grid (length S+1; step i uses kappa[i]): the three segments, each with its own mode.
std::vector<double> psi_kappas(const std::vector<double>& grid, const PsiConfig& cfg, const AlphaSchedule& schedule);

}  // namespace duo
