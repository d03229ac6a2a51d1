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

void gen_ppl_weights(const int32_t* ids, const uint8_t* attn, int64_t N, int32_t eos_id, double* w) {
  int64_t eos_seen = 0;  // EOS count over positions 0..j
  for (int64_t j = 0; j < N; ++j) {
    const bool eos = ids[j] == eos_id;
    eos_seen += eos;
    const bool real = attn == nullptr || attn[j] != 0;
    w[j] = (j > 0 && real && (!eos || eos_seen == 1)) ? 1.0 : 0.0;
  }
}

GenPplResult generative_perplexity(NextTokenScorer& scorer, const int32_t* ids, const uint8_t* attn, int64_t n,
                                   int64_t N, const GenPplOptions& opt) {
  DUO_CHECK(n >= 1 && N >= 2, "gen_ppl", str("got ", n, " samples of ", N, " tokens"),
            "score at least one sample of two or more tokens");
  DUO_CHECK(opt.batch_size >= 1, "eval.perplexity_batch_size", str("got ", opt.batch_size),
            "use a positive batch size");
  const int64_t ctx = scorer.context_size();
  DUO_CHECK(ctx >= 2, "gen_ppl", str("the evaluator's context is ", ctx), "the scorer needs a context of >= 2 tokens");

  const int64_t batch = std::min(opt.batch_size, n);
  const int64_t rows = opt.drop_last_partial_batch ? (n / batch) * batch : n;

  GenPplResult r;
  std::vector<int32_t> chunk_ids;
  std::vector<uint8_t> chunk_attn;
  std::vector<double> logp, w;
  for (int64_t b0 = 0; b0 < rows; b0 += batch) {
    const int64_t nb = std::min(batch, rows - b0);
    // Chunks of the evaluator's context along the sequence, each scored on its own (position 0 of a chunk is
    // context only, and the EOS count restarts), as the reference does.
    for (int64_t c0 = 0; c0 < N; c0 += ctx) {
      const int64_t len = std::min(ctx, N - c0);
      if (len < 2) continue;  // no target in a one-token chunk
      chunk_ids.resize((size_t)(nb * len));
      chunk_attn.resize((size_t)(nb * len));
      for (int64_t b = 0; b < nb; ++b)
        for (int64_t j = 0; j < len; ++j) {
          const int64_t src = (b0 + b) * N + c0 + j;
          chunk_ids[(size_t)(b * len + j)] = ids[src];
          chunk_attn[(size_t)(b * len + j)] = attn ? attn[src] : 1;
        }
      logp.assign((size_t)(nb * (len - 1)), 0.0);
      scorer.next_token_log_probs(chunk_ids.data(), chunk_attn.data(), nb, len, logp.data());
      w.resize((size_t)len);
      for (int64_t b = 0; b < nb; ++b) {
        gen_ppl_weights(chunk_ids.data() + b * len, chunk_attn.data() + b * len, len, opt.eos_id, w.data());
        for (int64_t j = 1; j < len; ++j) {
          if (w[(size_t)j] == 0) continue;
          const double lp = logp[(size_t)(b * (len - 1) + j - 1)];
          DUO_CHECK(std::isfinite(lp), "gen_ppl", str("the scorer gave log-prob ", lp, " to sample ", b0 + b,
                                                      ", position ", c0 + j),
                    "the evaluator must give every token a finite log-probability");
          r.nll_sum -= lp * w[(size_t)j];
          r.weight_sum += w[(size_t)j];
        }
      }
    }
    r.samples_scored += nb;
  }
  DUO_CHECK(r.weight_sum > 0, "gen_ppl", "no token counted", "the samples contain only EOS / padding");
  r.gen_ppl = std::exp(r.nll_sum / r.weight_sum);
  return r;
}

}  // namespace duo
