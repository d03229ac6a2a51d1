// Generative metrics: see gen_metrics.h.
#include "eval/gen_metrics.h"

#include <algorithm>
#include <cmath>
#include <vector>
#include "core/error.h"

namespace duo {

double unigram_entropy(const int32_t* ids, int64_t L) {
  DUO_CHECK(L >= 1, "entropy", "empty sequence", "sample at least one token");
  // Sorted copy: runs of equal ids are the counts, summed in id order (deterministic on every platform).
  std::vector<int32_t> sorted(ids, ids + L);
  std::sort(sorted.begin(), sorted.end());
  double h = 0;
  for (int64_t a = 0; a < L;) {
    int64_t b = a;
    while (b < L && sorted[(size_t)b] == sorted[(size_t)a]) ++b;
    const double p = (double)(b - a) / (double)L;
    h -= p * std::log(p);
    a = b;
  }
  return h;
}

double mean_unigram_entropy(const int32_t* ids, int64_t B, int64_t L) {
  DUO_CHECK(B >= 1, "entropy", "no sequences", "sample at least one sequence");
  double sum = 0;
  for (int64_t b = 0; b < B; ++b) sum += unigram_entropy(ids + b * L, L);
  return sum / (double)B;
}

}  // namespace duo
