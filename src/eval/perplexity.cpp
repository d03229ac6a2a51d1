#include "eval/perplexity.h"
#include <algorithm>
#include <cmath>
#include "algo/schedule.h"
#include "core/rng_streams.h"

namespace duo {

namespace {

// One time draw of a row: its loss and token weight.
struct Draw {
  double loss = 0, weight = 0;
};

// The Monte-Carlo variance of Σ y over a run of n draws in consecutive strata, one draw each, with
// y = (ℓ − nll·w)/K the draw's share of the linearised ratio estimator (docs/evaluation.md §1.1): collapsed
// strata, neighbours in groups of two (the last group of an odd run is three), each group of g contributing
// g/(g−1)·Σ(y − ȳ)², which is unbiased for the sum of its strata's variances when their means agree and
// conservative otherwise. (Second differences, which remove a linear trend, under-weight the edge strata,
// where DUO's small-t tail lives; measured at 0.52-0.68 of the spread over seeds.) A lone draw contributes nothing.
double run_variance(const std::vector<Draw>& d, size_t begin, size_t n, double nll, double K) {
  auto y = [&](size_t i) { return (d[begin + i].loss - nll * d[begin + i].weight) / K; };
  double var = 0;
  for (size_t i = 0; i + 1 < n;) {
    const size_t g = (n - i == 3) ? 3 : 2;
    double mean = 0, ss = 0;
    for (size_t j = i; j < i + g; ++j) mean += y(j) / (double)g;
    for (size_t j = i; j < i + g; ++j) ss += std::pow(y(j) - mean, 2);
    var += ss * (double)g / (double)(g - 1);
    i += g;
  }
  return var;
}

// Importance sampling of t (docs/evaluation.md §1.2): maps the stratified uniform time t_u ∈ [ε, 1] to
// t = (ε^b + u(1 − ε^b))^(1/b) with u = (t_u − ε)/(1 − ε) and b = 1 − a, whose density on [ε, 1] is
// p(t) = b·t^(−a)/(1 − ε^b), and returns the weight 1/((1 − ε)p(t)) that makes E_p[w·ℓ] the uniform mean.
double importance_time(double a, double eps, double& t) {
  const double b = 1.0 - a, eb = std::pow(eps, b), u = (t - eps) / (1.0 - eps);
  t = std::pow(eb + u * (1.0 - eb), 1.0 / b);
  return std::pow(t, a) * (1.0 - eb) / (b * (1.0 - eps));
}

}  // namespace

EvalResult evaluate(Algorithm& algo, Loader& loader, const EvalOptions& opt) {
  DUO_CHECK(opt.mc_samples >= 1, "--eval.mc_samples", "must be >= 1", "");
  DUO_CHECK(opt.time_power >= 0 && opt.time_power < 1, "--eval.time_power", str("got ", opt.time_power),
            "use a in [0, 1): 0 = uniform times, 0.5 = the measured variance reduction (docs/evaluation.md §1.2)");
  DUO_CHECK(!(opt.time_power > 0 && opt.uses_time && algo.settings().T > 0), "--eval.time_power",
            str("the ", algo.settings().name, " loss is in discrete time (T = ", algo.settings().T,
                "), where the continuous importance weight is not exact"),
            "leave --eval.time_power at 0 for discrete-time models");
  const int64_t K = opt.uses_time ? opt.mc_samples : 1;
  loader.rewind();
  std::vector<double> seq_loss, seq_weight;              // per sequence, averaged over the time samples
  std::vector<std::vector<Draw>> batches;                // each batch's draws in stratum order
  std::vector<int64_t> batch_rows;
  EvalResult r;
  Batch batch;
  while ((opt.limit_batches == 0 || r.batches < opt.limit_batches) && loader.next(batch)) {
    // Row b's k-th draw lies in stratum b·K + k of the batch's K·rows strata (docs/evaluation.md §1.1): the
    // real rows only, so a short last batch still covers [ε, 1]; padding rows get the last stratum's time.
    const int64_t S = K * batch.rows;
    std::vector<Draw> draws((size_t)S);
    std::vector<double> bl(batch.B, 0.0), bw(batch.B, 0.0);
    for (int64_t k = 0; k < K; ++k) {
      const Philox times{opt.seed, stream_id(r.batches, k, streams::kEvalTimes)};
      MicroBatch mb;
      mb.ids = batch.ids.data();
      mb.mask = batch.mask.data();
      mb.B = batch.B;
      mb.L = batch.L;
      mb.t.resize(batch.B);
      std::vector<double> weight(batch.B, 1.0);  // importance weights of the times
      for (int64_t b = 0; b < batch.B; ++b) {
        const int64_t s = std::min(b, batch.rows - 1) * K + k;
        mb.t[b] = TimeSampler::time_from_uniform(times.uniform_double(b), s, S, opt.antithetic, opt.sampling_eps);
        if (opt.uses_time && opt.time_power > 0) weight[b] = importance_time(opt.time_power, opt.sampling_eps, mb.t[b]);
      }
      mb.noise = Philox{opt.seed, stream_id(r.batches, k, streams::kEvalNoise)};
      mb.step = opt.step;
      LossSums s = algo.run(mb, /*train=*/false, /*backward=*/false, 1.0);
      for (int64_t b = 0; b < batch.B; ++b) s.seq_loss[b] *= weight[b];
      for (int64_t b = 0; b < batch.B; ++b) {
        bl[b] += s.seq_loss[b] / (double)K;
        bw[b] += s.seq_weight[b] / (double)K;
        if (b < batch.rows) draws[(size_t)(b * K + k)] = {s.seq_loss[b], s.seq_weight[b]};
      }
    }
    for (int64_t b = 0; b < batch.rows; ++b) {
      seq_loss.push_back(bl[b]);
      seq_weight.push_back(bw[b]);
    }
    batches.push_back(std::move(draws));
    batch_rows.push_back(batch.rows);
    ++r.batches;
  }
  double L = 0, W = 0;
  for (size_t i = 0; i < seq_loss.size(); ++i) { L += seq_loss[i]; W += seq_weight[i]; }
  DUO_CHECK(W > 0, "evaluation", "no tokens to evaluate", "check --data.valid and the loader's block length");
  r.sequences = (int64_t)seq_loss.size();
  r.tokens = W;
  r.nll = L / W;
  r.ppl = std::exp(r.nll);
  r.bpd = r.nll / std::log(2.0);
  if (r.sequences > 1) {  // the spread over sequences: the data's sampling error, not the estimator's
    double ss = 0;
    for (size_t i = 0; i < seq_loss.size(); ++i) ss += std::pow(seq_loss[i] - r.nll * seq_weight[i], 2);
    r.seq_std_err = std::sqrt(ss * r.sequences / (r.sequences - 1.0)) / W;
  }
  if (!opt.uses_time) return r;  // the exact likelihood: no Monte-Carlo error
  // Runs of consecutive strata: each row's K sub-strata (the same sequence) when K >= 2; with K = 1 the rows
  // of a batch, whose differences include the sequences' own differences (conservative, docs/evaluation.md §1.1).
  double var = 0;
  for (size_t i = 0; i < batches.size(); ++i) {
    if (K >= 2)
      for (int64_t b = 0; b < batch_rows[i]; ++b) var += run_variance(batches[i], (size_t)(b * K), (size_t)K, r.nll, (double)K);
    else
      var += run_variance(batches[i], 0, (size_t)batch_rows[i], r.nll, 1.0);
  }
  r.std_err = std::sqrt(var) / W;
  return r;
}

}  // namespace duo
