// Finite checks of host arrays: where a NaN or inf first appears, for errors that name it (README "Failure
// behaviour"). One pass, no allocation.
#pragma once
#include <cmath>
#include <cstdint>
#include "core/simd.h"

namespace duo {

// Whether every element of v[0, n) is finite, without an early exit, so that the loop vectorises in a
// DUO_SIMD_CLONES caller (x − x is 0 for every finite x, NaN for NaN and ±inf). The fast path of a check;
// first_non_finite then names the culprit.
template <class T>
DUO_INLINE_INTO_CLONES bool all_finite(const T* v, int64_t n) {
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) bad |= (int)!(v[i] - v[i] == T(0));
  return bad == 0;
}

// Index of the first non-finite element of v[0, n), or -1 when every element is finite.
template <class T>
int64_t first_non_finite(const T* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i])) return i;
  return -1;
}

// How many elements of v[0, n) are NaN or ±inf.
template <class T>
int64_t count_non_finite(const T* v, int64_t n) {
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) bad += !std::isfinite(v[i]);
  return bad;
}

}  // namespace duo
