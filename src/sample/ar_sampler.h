// The AR baseline's sampler (docs/sampling.md §10): z_0 = BOS, then for n = 1 .. L-1 one forward pass over the prefix
// z[:, 0:n] (no KV cache), the mask id's logit set to -1e6, log-softmax, and one categorical draw of token n
// (the reference adds Gumbel(0,1) noise and takes the argmax; our exponential race is the same distribution).
#pragma once
#include <cstdint>
#include "sample/denoiser.h"
#include "sample/sampling_types.h"

namespace duo {

struct ArSamplerConfig {
  int32_t bos_id = 0;
  int32_t mask_id = -1;  // the [MASK] id whose logit is set to -1e6; -1 when the vocabulary has none
  // EXTENSION: top-p for AR. The reference's AR sampler has no top-p / top-k; 1 (default) reproduces it.
  double p_nucleus = 1.0;
  int64_t top_k = 0;     // EXTENSION as well: > 0 keeps the k most likely next tokens (1 = greedy decoding)
  SamplePrecision precision = SamplePrecision::f64;
  uint64_t seed = 0;
};

// Draws B sequences of length L into z (B, L). Prompt positions (keep = 1, typically a prefix) are copied
// instead of sampled; a step whose position is kept in every row makes no network call, so nfe = L - 1 minus
// the fully kept positions. A kept position 0 replaces BOS.
SamplerStats sample_ar(CausalLM& net, const ArSamplerConfig& cfg, int64_t B, int64_t L, const Prompt& prompt,
                       int32_t* z);

}  // namespace duo
