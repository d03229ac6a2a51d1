#include "eval/perplexity.h"
#include <cmath>
#include "core/rng_streams.h"

namespace duo {

EvalResult evaluate(Algorithm& algo, Loader& loader, const EvalOptions& opt) {
  DUO_CHECK(opt.mc_samples >= 1, "--eval.mc_samples", "must be >= 1", "");
  const int64_t mc = opt.uses_time ? opt.mc_samples : 1;
  TimeSampler sampler;
  sampler.antithetic = opt.antithetic;
  sampler.sampling_eps = opt.sampling_eps;
  loader.rewind();
  std::vector<double> seq_loss, seq_weight;  // per sequence, averaged over the time samples
  EvalResult r;
  Batch batch;
  while ((opt.limit_batches == 0 || r.batches < opt.limit_batches) && loader.next(batch)) {
    std::vector<double> bl(batch.B, 0.0), bw(batch.B, 0.0);
    for (int64_t k = 0; k < mc; ++k) {
      MicroBatch mb;
      mb.ids = batch.ids.data();
      mb.mask = batch.mask.data();
      mb.B = batch.B;
      mb.L = batch.L;
      mb.t = sampler.sample(Philox{opt.seed, stream_id(r.batches, k, streams::kEvalTimes)}, batch.B, 0, batch.B);
      mb.noise = Philox{opt.seed, stream_id(r.batches, k, streams::kEvalNoise)};
      mb.step = opt.step;
      LossSums s = algo.run(mb, /*train=*/false, /*backward=*/false, 1.0);
      for (int64_t b = 0; b < batch.B; ++b) {
        bl[b] += s.seq_loss[b] / (double)mc;
        bw[b] += s.seq_weight[b] / (double)mc;
      }
    }
    for (int64_t b = 0; b < batch.rows; ++b) {
      seq_loss.push_back(bl[b]);
      seq_weight.push_back(bw[b]);
    }
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
  if (r.sequences > 1) {  // delta-method standard error of the ratio Σℓ / Σw
    double ss = 0;
    for (size_t i = 0; i < seq_loss.size(); ++i) ss += std::pow(seq_loss[i] - r.nll * seq_weight[i], 2);
    r.std_err = std::sqrt(ss * r.sequences / (r.sequences - 1.0)) / W;
  }
  return r;
}

}  // namespace duo
