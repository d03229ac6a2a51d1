// The standard normal distribution in float64: density φ, distribution Φ and log Φ accurate in both tails.
// log Φ is the delicate one: the Diffusion Transformation raises Φ to the power V−1 ≈ 5·10⁴, so log Φ must keep
// its full relative precision where Φ → 1 (there log Φ ≈ −Φ(−z), tiny) and where Φ → 0 (erfc underflows
// below z ≈ −38).
#pragma once
#include <cmath>
#include <numbers>

namespace duo {

inline constexpr double kLogSqrt2Pi = 0.91893853320467274178;  // ½·log(2π)

inline double normal_pdf(double z) { return std::exp(-0.5 * z * z - kLogSqrt2Pi); }

inline double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }

// log Φ(z) to a few ulps everywhere:
//   z > 0:       log(1 − Φ(−z)) via log1p, with Φ(−z) = ½·erfc(z/√2) exact in relative terms;
//   −20 ≤ z ≤ 0: log(½·erfc(−z/√2)), erfc keeps full relative precision down to ~1e-300;
//   z < −20:     the asymptotic (Mills ratio) series
//                log Φ(z) = −z²/2 − log(−z) − ½log(2π) + log(1 − 1/z² + 3/z⁴ − 15/z⁶ + …),
//                whose k-th term (2k−1)!!/z^{2k} is below 2e-20 at k = 12 when |z| ≥ 20.
inline double log_normal_cdf(double z) {
  if (z > 0) return std::log1p(-0.5 * std::erfc(z / std::numbers::sqrt2));
  if (z >= -20) return std::log(0.5 * std::erfc(-z / std::numbers::sqrt2));
  const double inv_z2 = 1.0 / (z * z);
  double term = 1.0, series = 1.0;
  for (int k = 1; k <= 12; ++k) {
    term *= -(2 * k - 1) * inv_z2;
    series += term;
  }
  return -0.5 * z * z - std::log(-z) - kLogSqrt2Pi + std::log(series);
}

}  // namespace duo
