// Forward (noising) processes on token ids (docs/diffusion.md §2 uniform-state, docs/diffusion.md §6 absorbing).
//
// One α_t per sequence, one decision per token. Token k (k = token_offset + b·L + l, its global index) uses
// Philox block k of the stream: words 0,1 give a 53-bit uniform u ∈ (0, 1) (cuRAND's uniform_double layout),
// word 2 the replacement id. So the noise is a pure function of (seed, subsequence, token index): the CPU loop
// below, a CUDA kernel calling the same per-token functions, and any split of the batch agree exactly.
#pragma once
#include <cstdint>
#include <vector>

#include "core/hd.h"
#include "core/philox.h"
#include "core/tensor.h"

namespace duo {

// A uniform id in [0, V) from 32 random bits (multiply-shift; bias ≤ V/2³², i.e. < 2e-5 for V = 50258).
DUO_HD int32_t uniform_id(uint32_t bits, int V) { return (int32_t)(((uint64_t)bits * (uint64_t)V) >> 32); }

// Uniform-state q_xt (UniformState.q_xt): with probability 1 − α replace x by an id drawn uniformly from all V
// ids (it may equal x), else keep x. This is exactly q(z_t | x) = α e_x + (1 − α)/V.
DUO_HD int32_t corrupt_uniform_token(int32_t x, double alpha, int V, double u, uint32_t id_bits) {
  return u < 1.0 - alpha ? uniform_id(id_bits, V) : x;
}

// Absorbing q_xt (AbsorbingState.q_xt): with probability 1 − α the token becomes [MASK].
DUO_HD int32_t corrupt_absorbing_token(int32_t x, double alpha, int32_t mask_id, double u) {
  return u < 1.0 - alpha ? mask_id : x;
}

// Whole batches on the CPU. x, z: I32 (B, L) contiguous CPU tensors (z may alias x); alpha: B values α_t;
// V: ids must lie in [0, V) (checked, the error names the position).
void corrupt_uniform(const Tensor& x, const Tensor& z, const std::vector<double>& alpha, int V, const Philox& rng,
                     int64_t token_offset = 0);
void corrupt_absorbing(const Tensor& x, const Tensor& z, const std::vector<double>& alpha, int V, int32_t mask_id,
                       const Philox& rng, int64_t token_offset = 0);

}  // namespace duo
