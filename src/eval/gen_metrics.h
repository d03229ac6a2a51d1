// Sample entropy (docs/evaluation.md §4). Generative perplexity is in eval/gen_ppl.h.
#pragma once
#include <cstdint>

namespace duo {

// Unigram entropy in nats of one id sequence: -sum_v (c_v / L) ln(c_v / L) over the id counts c_v.
double unigram_entropy(const int32_t* ids, int64_t L);
// The reported entropy: the mean of unigram_entropy over the B sequences of ids (B, L).
double mean_unigram_entropy(const int32_t* ids, int64_t B, int64_t L);

}  // namespace duo
