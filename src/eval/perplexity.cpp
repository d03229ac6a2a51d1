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

// The per-sequence sums and per-draw values of a pass's batches, in one list of batches.
struct PassRecord {
  std::vector<int64_t> index;            // each batch's place in the pass (this rank's share: k·ranks + rank)
  std::vector<int64_t> rows;             // real rows per batch
  std::vector<double> seq_loss, seq_weight;  // per real row, batch after batch
  std::vector<std::vector<Draw>> draws;  // per batch, K·rows draws in stratum order
};

// The whole pass on every rank, batches in pass order, from each rank's share. An all-gather made of float64
// sums: each value is placed at its slot of a zeroed array and the arrays are summed over the ranks, which adds
// only zeros to it, so every value arrives bit for bit.
PassRecord gather_in_pass_order(const PassRecord& mine, int64_t K, Comm& comm) {
  if (comm.size() == 1) return mine;
  double count = (double)mine.index.size();
  comm.all_reduce_sum(&count, 1);
  const size_t nb = (size_t)count;
  std::vector<double> rows(nb, 0.0);
  for (size_t i = 0; i < mine.index.size(); ++i) {
    DUO_CHECK((size_t)mine.index[i] < nb, "evaluation", str("batch ", mine.index[i], " of a pass of ", nb),
              "every rank must read the same validation shards");
    rows[(size_t)mine.index[i]] = (double)mine.rows[i];
  }
  comm.all_reduce_sum(rows.data(), nb);
  std::vector<size_t> first(nb + 1, 0);  // the first row of each batch
  for (size_t g = 0; g < nb; ++g) first[g + 1] = first[g] + (size_t)rows[g];
  const size_t n = first[nb];
  std::vector<double> values(2 * n + 2 * n * (size_t)K, 0.0);  // seq_loss, seq_weight, then draw losses, weights
  double* loss = values.data();
  double* weight = loss + n;
  double* draw_loss = weight + n;
  double* draw_weight = draw_loss + n * (size_t)K;
  size_t row = 0;
  for (size_t i = 0; i < mine.index.size(); ++i) {
    const size_t at = first[(size_t)mine.index[i]];
    for (int64_t b = 0; b < mine.rows[i]; ++b, ++row) {
      loss[at + (size_t)b] = mine.seq_loss[row];
      weight[at + (size_t)b] = mine.seq_weight[row];
    }
    for (size_t d = 0; d < mine.draws[i].size(); ++d) {
      draw_loss[at * (size_t)K + d] = mine.draws[i][d].loss;
      draw_weight[at * (size_t)K + d] = mine.draws[i][d].weight;
    }
  }
  comm.all_reduce_sum(values.data(), values.size());
  PassRecord all;
  all.seq_loss.assign(loss, loss + n);
  all.seq_weight.assign(weight, weight + n);
  for (size_t g = 0; g < nb; ++g) {
    all.index.push_back((int64_t)g);
    all.rows.push_back((int64_t)rows[g]);
    std::vector<Draw> d((size_t)rows[g] * (size_t)K);
    for (size_t j = 0; j < d.size(); ++j) d[j] = {draw_loss[first[g] * (size_t)K + j], draw_weight[first[g] * (size_t)K + j]};
    all.draws.push_back(std::move(d));
  }
  return all;
}

}  // namespace

EvalResult evaluate(Algorithm& algo, Loader& loader, const EvalOptions& opt, Comm& comm) {
  DUO_CHECK(opt.mc_samples >= 1, "--eval.mc_samples", "must be >= 1", "");
  DUO_CHECK(opt.time_power >= 0 && opt.time_power < 1, "--eval.time_power", str("got ", opt.time_power),
            "use a in [0, 1): 0 = uniform times, 0.5 = the measured variance reduction (docs/evaluation.md §1.2)");
  DUO_CHECK(!(opt.time_power > 0 && opt.uses_time && algo.settings().T > 0), "--eval.time_power",
            str("the ", algo.settings().name, " loss is in discrete time (T = ", algo.settings().T,
                "), where the continuous importance weight is not exact"),
            "leave --eval.time_power at 0 for discrete-time models");
  const int64_t K = opt.uses_time ? opt.mc_samples : 1;
  const int64_t ranks = loader.config().world_size, rank = loader.config().rank;
  DUO_CHECK(ranks == comm.size() && rank == comm.rank(), "evaluation",
            str("the loader is rank ", rank, " of ", ranks, ", the communicator rank ", comm.rank(), " of ", comm.size()),
            "build the validation loader with the communicator's rank and size");
  loader.rewind();
  // This rank's batches: batch k of the loader is batch g = k·ranks + rank of the pass, whose times and noise are
  // keyed by g, so every batch is evaluated as one process would.
  PassRecord mine;
  Batch batch;
  for (int64_t g = rank; (opt.limit_batches == 0 || g < opt.limit_batches) && loader.next(batch); g += ranks) {
    // Row b's k-th draw lies in stratum b·K + k of the batch's K·rows strata (docs/evaluation.md §1.1): the
    // real rows only, so a short last batch still covers [ε, 1]; padding rows get the last stratum's time.
    const int64_t S = K * batch.rows;
    std::vector<Draw> draws((size_t)S);
    std::vector<double> bl(batch.B, 0.0), bw(batch.B, 0.0);
    for (int64_t k = 0; k < K; ++k) {
      const Philox times{opt.seed, stream_id(g, k, streams::kEvalTimes)};
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
      mb.noise = Philox{opt.seed, stream_id(g, k, streams::kEvalNoise)};
      mb.step = opt.step;
      LossSums s = algo.run(mb, /*train=*/false, /*backward=*/false, 1.0);
      for (int64_t b = 0; b < batch.B; ++b) s.seq_loss[b] *= weight[b];
      for (int64_t b = 0; b < batch.B; ++b) {
        bl[b] += s.seq_loss[b] / (double)K;
        bw[b] += s.seq_weight[b] / (double)K;
        if (b < batch.rows) draws[(size_t)(b * K + k)] = {s.seq_loss[b], s.seq_weight[b]};
      }
    }
    mine.index.push_back(g);
    mine.rows.push_back(batch.rows);
    for (int64_t b = 0; b < batch.rows; ++b) {
      mine.seq_loss.push_back(bl[b]);
      mine.seq_weight.push_back(bw[b]);
    }
    mine.draws.push_back(std::move(draws));
  }
  // Every rank's batches in the pass's order: the sums below run over them as one process's would.
  const PassRecord pass = gather_in_pass_order(mine, K, comm);
  const std::vector<double>& seq_loss = pass.seq_loss;
  const std::vector<double>& seq_weight = pass.seq_weight;
  const std::vector<std::vector<Draw>>& batches = pass.draws;
  const std::vector<int64_t>& batch_rows = pass.rows;
  EvalResult r;
  r.batches = (int64_t)batch_rows.size();
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
