// exp(x) in float64 without branches, so that a loop over a row vectorises (std::exp is a call per element):
// the samplers' x̂ = exp(log-probs) in float64. Part of the maths floor.
//
// exp(x) = 2^k exp(r) with k = round(x / ln 2) and r = x - k ln 2 (Cody-Waite: ln 2 in two parts, the first
// with trailing zeros so that k times it is exact), |r| <= ln(2)/2; exp(r) by its Taylor series to degree 13
// (remainder below 2^-62 relative); 2^k built from exponent bits in two halves, so that results down in the
// subnormals come out right. Within 2 ulp of the correctly rounded exp over the whole double range (tests:
// fast_math suite); NaN stays NaN, -inf gives 0, +inf gives inf, as std::exp.
#pragma once
#include <cstdint>
#include <cstring>
#include "core/hd.h"

namespace duo {

// Inlined into its callers' loops (the samplers' rows are DUO_SIMD_CLONES functions), where it vectorises; the CUDA
// sampling kernel calls it too.
DUO_HD_INLINE double exp_f64(double x) {
  x = x < -746.0 ? -746.0 : x;  // below: exp underflows to 0 either way (a NaN passes both tests unchanged)
  x = x > 710.0 ? 710.0 : x;    // above: inf
  constexpr double kShift = 0x1.8p52;  // x / ln2 + kShift has k in its low mantissa bits, rounded to nearest
  const double kd = x * 0x1.71547652b82fep0 + kShift;
  const double k = kd - kShift;
  const double r = (x - k * 0x1.62e42fee00000p-1) - k * 0x1.a39ef35793c76p-33;  // ln2 = hi + lo
  double p = 1.0 / 6227020800.0;                                                // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  int64_t kbits, sbits;
  std::memcpy(&kbits, &kd, 8);
  std::memcpy(&sbits, &kShift, 8);
  const int64_t ki = kbits - sbits;  // k as an integer, in [-1077, 1025]
  const int64_t k1 = ki / 2, k2 = ki - k1;
  const int64_t b1 = (k1 + 1023) << 52, b2 = (k2 + 1023) << 52;
  double s1, s2;
  std::memcpy(&s1, &b1, 8);
  std::memcpy(&s2, &b2, 8);
  return p * s1 * s2;
}

}  // namespace duo
