// exp(x) for float without branches, so that a loop over a row vectorises (glibc's expf is a scalar call): the
// CPU backend's GELU and attention softmax (backend/cpu/fast_math.h) and the log-sum-exp of the samplers' rows
// (math/log_softmax_row.h). Relative error below 2.5e-7 over the whole float range (fast_math tests). Part of the
// maths floor (includes only core).
#pragma once
#include <bit>
#include <cstdint>
#include "core/simd.h"

namespace duo {

// exp(x) = 2^k · exp(r), k = round(x / ln 2), r = x − k ln 2 (two-part ln 2 so r is exact), exp(r) by its
// degree-6 Taylor polynomial (|r| ≤ ln2/2: truncation < 1.3e-7 relative). NaN stays NaN (a poisoned
// activation must reach the checks of the network output, not turn into exp(-87)); ±inf clamp like any large x.
DUO_INLINE_INTO_CLONES float exp_f32(float in) {
  // Selects, not fmin/fmax (whose NaN rules block vectorisation); with -fno-trapping-math they if-convert.
  float x = in > -87.0f ? in : -87.0f;  // NaN -> -87 here, so the integer conversion below stays defined
  x = x < 88.0f ? x : 88.0f;
  const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest (1.5·2^23 trick)
  const float r = (x - k * 0.693145751953125f) - k * 1.428606765330187e-06f;
  const float p =
      1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666679f + r * (0.00833333377f + r * 0.00138888892f)))));
  const int32_t bits = ((int32_t)k + 127) << 23;
  const float e = p * std::bit_cast<float>(bits);
  return in == in ? e : in;
}

}  // namespace duo
