// Every Philox stream the engine draws from, by name. A stream is {seed, subsequence}; the subsequence mixes the
// ids below with the step, micro-batch, layer or batch number (stream_id). These numbers are part of every run's
// results: a resumed run reproduces the uninterrupted one bit for bit, and a seed its samples, only because the
// same draw always comes from the same stream. Changing one changes every run's numbers, so they live here, once.
#pragma once
#include <cstdint>
#include <string>
#include "core/philox.h"

namespace duo::streams {

// Training, per optimizer step (and micro-batch): stream_id(step, kTrainTimes) for the stratified diffusion times
// of the whole global batch, stream_id(step, micro, kTrainNoise) for the corruption and curriculum noise,
// stream_id(step, micro, kTrainDropout) for dropout.
inline constexpr uint64_t kTrainTimes = 0x71e;
inline constexpr uint64_t kTrainNoise = 0x4015e;
inline constexpr uint64_t kTrainDropout = 0xd70;

// Dropout sites inside a forward, mixed with the forward's dropout stream: DiT block i's two gated residuals
// (stream_id(dropout, i, site)), the distillation teacher's forward, D3PM's clean-input (reconstruction) forward.
enum class DropoutSite : uint64_t { Attention = 0, Mlp = 1 };
inline constexpr uint64_t kTeacherDropout = 0x7eac4e5;
inline constexpr uint64_t kD3pmCleanDropout = 0xc1ea9;

// Evaluation, per batch b and Monte-Carlo sample k: stream_id(b, k, kEvalTimes) and stream_id(b, k, kEvalNoise).
inline constexpr uint64_t kEvalTimes = 1;
inline constexpr uint64_t kEvalNoise = 2;

// Data order: stream_id(kLoader, epoch) shuffles the training blocks of an epoch.
inline constexpr uint64_t kLoader = 0x4c4f41444552ull;  // "LOADER"

// Sampling: stream_id(seed, kSampleBatch, k) is the seed of sampling batch k; within it the diffusion samplers draw
// the prior from stream_id(kSamplerPrior) and step s from stream_id(kSamplerStep, s) (the DUO step's choice of
// mixture component from stream_id(kSamplerMixture, s)), the AR sampler token n from stream_id(kArSampler, n).
inline constexpr uint64_t kSampleBatch = 0x53414d50ull;   // "SAMP"
inline constexpr uint64_t kSamplerPrior = 0x5052494f52ull;  // "PRIOR"
inline constexpr uint64_t kSamplerStep = 0x53544550ull;     // "STEP"
inline constexpr uint64_t kSamplerMixture = 0x4d495854ull;  // "MIXT"
inline constexpr uint64_t kArSampler = 0x4152ull;           // "AR"

// Initialisation from scratch: one stream per parameter, stream_id(FNV-1a hash of its name).
inline uint64_t param_init(const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (char ch : name) h = (h ^ (uint8_t)ch) * 1099511628211ull;
  return stream_id(h);
}

// The dropout stream of one gated residual of DiT block `block` inside a forward whose dropout stream is `rng`.
inline Philox block_dropout(const Philox& rng, int64_t block, DropoutSite site) {
  return Philox{rng.seed, stream_id(rng.subsequence, (uint64_t)block, (uint64_t)site)};
}

}  // namespace duo::streams
