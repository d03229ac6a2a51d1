// The AR sampler: see ar_sampler.h.
#include "sample/ar_sampler.h"

#include <vector>
#include "core/error.h"
#include "core/philox.h"
#include "core/rng_streams.h"
#include "math/categorical.h"

namespace duo {

namespace {


// Token n of every row that is not kept, from the next-token logits (B, V).
template <class T>
void draw_tokens(const ArSamplerConfig& cfg, const float* logits, int64_t B, int64_t L, int64_t V, int64_t n,
                 const Prompt& prompt, int32_t* z) {
  const Philox rng{cfg.seed, stream_id(streams::kArSampler, (uint64_t)n)};
#pragma omp parallel
  {
    std::vector<T> row((size_t)V);
    std::vector<int32_t> order;
#pragma omp for schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      const int64_t p = b * L + n;
      if (prompt.keep && prompt.keep[p]) continue;
      for (int64_t v = 0; v < V; ++v) row[(size_t)v] = (T)logits[b * V + v];
      if (cfg.mask_id >= 0) row[(size_t)cfg.mask_id] = T(-1e6);  // never sample [MASK]
      log_softmax_row(row.data(), V);
      if (cfg.top_k > 0) top_k_filter(row.data(), V, cfg.top_k, cfg.mask_id, order);
      if (cfg.p_nucleus < 1) nucleus_filter(row.data(), V, cfg.p_nucleus, order);
      for (auto& x : row) x = std::exp(x);
      // Counter of entry v: b * V + v of the step's stream (the stream is per position n).
      z[p] = sample_categorical(row.data(), V, rng, (uint64_t)b);
    }
  }
}

}  // namespace

SamplerStats sample_ar(CausalLM& net, const ArSamplerConfig& cfg, int64_t B, int64_t L, const Prompt& prompt,
                       int32_t* z) {
  const int64_t V = net.vocab_size();
  DUO_CHECK(V >= 2, "sampling", str("the model has ", V, " categories"), "vocab_size() must be >= 2");
  DUO_CHECK(B >= 1 && L >= 2, "sampling", str("asked for ", B, " sequences of length ", L),
            "AR sampling needs a batch and a length of at least 2 (BOS + one token)");
  DUO_CHECK(cfg.bos_id >= 0 && cfg.bos_id < V, "sampling.bos_id", str("BOS id ", cfg.bos_id, " not in [0, ", V, ")"),
            "set the tokenizer's BOS id");
  DUO_CHECK(cfg.mask_id < V && cfg.mask_id != cfg.bos_id, "sampling.mask_id", str("mask id ", cfg.mask_id),
            "use -1 (no mask) or the tokenizer's [MASK] id, different from BOS");
  DUO_CHECK(cfg.top_k >= 0, "sampling.top_k", str("got ", cfg.top_k), "use 0 (off) or a positive k");
  DUO_CHECK(cfg.p_nucleus > 0 && cfg.p_nucleus <= 1, "sampling.p_nucleus", str("got ", cfg.p_nucleus),
            "use a value in (0, 1]; 1 disables top-p");
  DUO_CHECK((prompt.ids == nullptr) == (prompt.keep == nullptr), "sampling prompt",
            "a prompt needs both its ids and its keep mask", "pass both or neither");

  for (int64_t p = 0; p < B * L; ++p) {
    z[p] = (p % L == 0) ? cfg.bos_id : 0;  // positions >= n are never read before they are drawn
    prompt.apply(p, V, z);
  }

  SamplerStats stats;
  std::vector<float> logits((size_t)(B * V));
  for (int64_t n = 1; n < L; ++n) {
    bool all_kept = prompt.keep != nullptr;
    for (int64_t b = 0; b < B && all_kept; ++b) all_kept = prompt.keep[b * L + n] != 0;
    if (all_kept) continue;
    net.next_logits(z, B, L, n, logits.data());
    ++stats.nfe;
    if (cfg.precision == SamplePrecision::f32) draw_tokens<float>(cfg, logits.data(), B, L, V, n, prompt, z);
    else draw_tokens<double>(cfg, logits.data(), B, L, V, n, prompt, z);
  }
  return stats;
}

}  // namespace duo
