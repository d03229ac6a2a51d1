// Log-softmax of one host row in place, the sum of exponentials in float64 (V may be 50k): the samplers' and the
// AR scorer's post-processing of logits copied to the host. Part of the per-row maths floor (includes only core).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace duo {

inline void log_softmax_row_inplace(float* o, int64_t V) {
  const float mx = *std::max_element(o, o + V);
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp((double)(o[v] - mx));
  const float lse = mx + (float)std::log(sum);
  for (int64_t v = 0; v < V; ++v) o[v] -= lse;
}

}  // namespace duo
