// Types shared by the diffusion and AR samplers.
#pragma once
#include <cstdint>

namespace duo {

// Probabilities and the categorical race in float64 (the reference's sampling.use_float64, default) or fp32.
enum class SamplePrecision { f64, f32 };

// Optional prompt (prefix / infill) conditioning: ids and keep are (B, L); keep[p] != 0 fixes position p to
// ids[p] for the whole run: it is fed to the model at every call and never resampled.
struct Prompt {
  const int32_t* ids = nullptr;
  const uint8_t* keep = nullptr;
};

struct SamplerStats {
  int64_t nfe = 0;  // network evaluations
};

}  // namespace duo
