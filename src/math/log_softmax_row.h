// Log-softmax of one host row in place, the sum of exponentials in float64 (V may be 50k): the samplers' and the
// AR scorer's post-processing of logits copied to the host. Part of the per-row maths floor (includes only core).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include "core/simd.h"
#include "math/exp_f32.h"

namespace duo {

// The terms exp(o_v − max) are float (exp_f32, relative error < 2.5e-7: the log-sum-exp moves by at most that,
// about two float ulps of a log-probability near 1, where the reference takes its log-softmax on bf16 logits),
// summed in 16 interleaved float64 lanes added at the end (a fixed order on every CPU), so that the loop
// vectorises in a DUO_SIMD_CLONES caller with enough independent chains; any order of 50k float64 terms is exact
// far below float's rounding of the result.
// The row's log-normaliser: log_softmax_row_inplace(o) stores o[v] − log_softmax_lse(o, V) at v.
DUO_INLINE_INTO_CLONES float log_softmax_lse(const float* o, int64_t V) {
  constexpr int kMaxLanes = 16;  // the maximum in independent lanes (an elementwise max, which vectorises)
  float lanes[kMaxLanes];
  for (int l = 0; l < kMaxLanes; ++l) lanes[l] = o[0];
  int64_t i = 0;
  for (; i + kMaxLanes <= V; i += kMaxLanes)
    for (int l = 0; l < kMaxLanes; ++l) lanes[l] = o[i + l] > lanes[l] ? o[i + l] : lanes[l];
  float mx = o[0];
  for (; i < V; ++i) mx = std::max(mx, o[i]);
  for (int l = 0; l < kMaxLanes; ++l) mx = std::max(mx, lanes[l]);
  constexpr int kLanes = 16;
  double lane[kLanes] = {};
  int64_t v = 0;
  for (; v + kLanes <= V; v += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] += (double)exp_f32(o[v + l] - mx);
  double sum = 0;
  for (; v < V; ++v) sum += (double)exp_f32(o[v] - mx);
  for (int l = 0; l < kLanes; ++l) sum += lane[l];
  return mx + (float)std::log(sum);
}

DUO_INLINE_INTO_CLONES void log_softmax_row_inplace(float* o, int64_t V) {
  const float lse = log_softmax_lse(o, V);
  for (int64_t v = 0; v < V; ++v) o[v] -= lse;
}

}  // namespace duo
