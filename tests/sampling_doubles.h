// Test doubles for the samplers: denoisers whose output distribution is known exactly, and a chi-square check.
#pragma once
#include <boost/math/distributions/chi_squared.hpp>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>
#include "core/philox.h"
#include "sample/denoiser.h"

namespace duo::testing {

// A random point of the simplex of size V (entry zero_at, if any, is 0).
inline std::vector<double> random_simplex(int64_t V, uint64_t seed, int64_t zero_at = -1) {
  Philox rng{seed, 2};
  std::vector<double> x((size_t)V);
  for (int64_t v = 0; v < V; ++v) x[(size_t)v] = v == zero_at ? 0.0 : 0.2 - std::log(rng.uniform_double((uint64_t)v));
  const double s = std::accumulate(x.begin(), x.end(), 0.0);
  for (auto& e : x) e /= s;
  return x;
}

// x̂ depends on the position only: rows (L, V) of probabilities. With mask >= 0 it behaves like MDLM's SUBS
// output (carry-over at unmasked inputs); `sedd` turns it into the exact absorbing score of x̂ at the time
// sigma: log r_y = log(a_t x̂_y / (1 - a_t)), with the entry at the input token set to 0.
class TableDenoiser : public Denoiser {
 public:
  TableDenoiser(int64_t V, std::vector<std::vector<double>> rows, int32_t mask = -1, bool time_cond = true,
                bool sedd = false)
      : V_(V), rows_(std::move(rows)), mask_(mask), time_cond_(time_cond), sedd_(sedd) {}
  int64_t vocab_size() const override { return V_; }
  bool time_conditioned() const override { return time_cond_; }
  void log_probs(const int32_t* z, int64_t B, int64_t L, const double* sigma, float* out) override {
    ++calls;
    inputs.emplace_back(z, z + B * L);
    for (int64_t b = 0; b < B; ++b) {
      const double a_t = std::exp(-sigma[b]);
      for (int64_t l = 0; l < L; ++l) {
        const int32_t zt = z[b * L + l];
        const std::vector<double>& x = rows_[(size_t)l % rows_.size()];
        float* o = out + (b * L + l) * V_;
        for (int64_t v = 0; v < V_; ++v) {
          if (sedd_) o[v] = v == zt ? 0.0f : (float)std::log(a_t * x[(size_t)v] / (1 - a_t));
          else if (mask_ >= 0 && zt != mask_) o[v] = v == zt ? 0.0f : -1e6f;
          else o[v] = x[(size_t)v] > 0 ? (float)std::log(x[(size_t)v]) : -1e6f;
        }
      }
    }
  }
  int64_t calls = 0;
  std::vector<std::vector<int32_t>> inputs;  // z at every call

 private:
  int64_t V_;
  std::vector<std::vector<double>> rows_;
  int32_t mask_;
  bool time_cond_, sedd_;
};

// Pearson chi-square p-value of counts against probabilities p (cells with p = 0 must be empty: else 0).
inline double chi_square_p(const std::vector<int64_t>& counts, const std::vector<double>& p) {
  const double n = (double)std::accumulate(counts.begin(), counts.end(), int64_t(0));
  const double total_p = std::accumulate(p.begin(), p.end(), 0.0);
  double stat = 0;
  int cells = 0;
  for (size_t k = 0; k < counts.size(); ++k) {
    const double e = n * p[k] / total_p;
    if (e == 0) {
      if (counts[k] != 0) return 0.0;
      continue;
    }
    stat += (counts[k] - e) * (counts[k] - e) / e;
    ++cells;
  }
  if (cells < 2) return 1.0;
  boost::math::chi_squared dist(cells - 1);
  return boost::math::cdf(boost::math::complement(dist, stat));
}

}  // namespace duo::testing
